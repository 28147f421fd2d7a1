from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from eta.network import Trip
from simulator.config import DelayModel, DrivingFaults
from simulator.motion import TripRun, congestion_factor, drive_trip, holding_stops, nominal_run_times
from tests.simulator.helpers import street_trip

NO_FAULTS = DrivingFaults(0.0, 0.0, 0.0)
DEFAULT_MODEL = DelayModel()


def _drive(
    trip: Trip,
    seed: int = 0,
    driving: DrivingFaults = NO_FAULTS,
    model: DelayModel = DEFAULT_MODEL,
    ready: float | None = None,
    noise: float = 0.0,
) -> TripRun:
    rng = np.random.default_rng(seed)
    ready_at = trip.start_time - 120.0 if ready is None else ready
    return drive_trip(trip, ready_at, rng, seed=1, model=model, driving=driving, noise_in=noise, origin_hour=0.0)


def test_progress_moves_forward_along_the_trip_and_rests_at_served_stops() -> None:
    run = _drive(street_trip())
    t = np.linspace(run.ready_at - 60.0, run.finished_at + 60.0, 5000)
    s, speed = run.progress(t)
    assert np.all(np.diff(s) >= -1e-9)
    assert s[0] == 0.0 and s[-1] == 4000.0
    assert np.all(speed >= 0.0)
    assert speed.max() <= DEFAULT_MODEL.max_speed + 1e-6
    stopped, _ = run.progress(run.arrival)
    assert np.allclose(stopped, run.stop_dist)
    _, at_stop_speed = run.progress((run.arrival + run.departure) / 2.0)
    assert np.all(at_stop_speed[run.served] == 0.0)


def test_stop_times_are_ordered_and_never_faster_than_the_speed_limit() -> None:
    model = DelayModel()
    for seed in range(50):
        run = _drive(street_trip(run_s=10.0), seed=seed, driving=DrivingFaults(0.3, 0.5, 0.0))  # a rushed schedule
        _, speed = run.progress(np.linspace(run.ready_at, run.finished_at, 3000))
        assert speed.max() <= model.max_speed + 1e-6
        assert np.all(run.departure >= run.arrival)
        assert np.all(run.arrival[1:] >= run.departure[:-1])
        runs = run.arrival[1:] - run.departure[:-1]
        assert np.all(np.diff(run.stop_dist) / runs <= model.max_speed + 1e-6)
        assert np.all(run.departure[~run.served] == run.arrival[~run.served])


def test_a_ready_bus_never_leaves_its_first_stop_before_the_schedule() -> None:
    for seed in range(30):
        run = _drive(street_trip(), seed=seed)
        assert run.departure[0] >= street_trip().start_time


def test_late_arrival_at_the_terminal_is_absorbed_only_down_to_the_minimum_layover() -> None:
    trip = street_trip()
    run = _drive(trip, ready=trip.start_time + 300.0)  # came in 5 min late from the previous trip
    rng = np.random.default_rng(0)
    with_layover = drive_trip(
        trip, trip.start_time + 300.0, rng, seed=1, model=DelayModel(), driving=NO_FAULTS,
        noise_in=0.0, origin_hour=0.0, layover_s=120.0,
    )
    assert run.departure[0] >= trip.start_time + 300.0
    assert with_layover.departure[0] >= trip.start_time + 420.0


def test_run_times_follow_the_congestion_curve_on_average() -> None:
    model = replace(DelayModel(), segment_sigma=0.0)
    for hour in (3.0, 8.0, 12.0, 17.0):
        trip = street_trip(start_s=hour * 3600.0, run_s=120.0, stops=6, length_m=1000.0)
        ratios = []
        for seed in range(400):
            run = _drive(trip, seed=seed, model=model, noise=0.0)
            ratios.extend(((run.arrival[1:] - run.departure[:-1]) / nominal_run_times(trip, model)).tolist())
        assert abs(np.mean(ratios) / congestion_factor(hour, model) - 1.0) < 0.03, hour
    assert congestion_factor(8.0, model) > 1.1 > 0.95 > congestion_factor(12.0, model)


def test_traffic_noise_persists_from_stop_to_stop() -> None:
    model = replace(DelayModel(), segment_sigma=0.0, am_peak_slowdown=0.0, pm_peak_slowdown=0.0)
    trip = street_trip(stops=41, run_s=120.0, start_s=12 * 3600.0)
    pairs: list[tuple[float, float]] = []
    for seed in range(100):
        run = _drive(trip, seed=seed, model=model)
        log_ratio = np.log((run.arrival[1:] - run.departure[:-1]) / nominal_run_times(trip, model))
        pairs.extend(zip(log_ratio[:-1].tolist(), log_ratio[1:].tolist(), strict=True))
    a, b = np.array(pairs).T
    assert abs(np.corrcoef(a, b)[0, 1] - model.noise_correlation) < 0.08


def test_skipped_stops_match_the_rate_and_never_hold() -> None:
    trip = street_trip(timepoint_every=5)
    holds = holding_stops(trip)
    skipped = eligible = 0
    for seed in range(300):
        run = _drive(trip, seed=seed, driving=DrivingFaults(0.25, 0.0, 0.0))
        intermediate = np.arange(1, run.passed - 1)
        eligible += int((~holds[intermediate]).sum())
        skipped += int((~run.served[intermediate]).sum())
        assert run.served[holds[: run.passed]].all()
    assert abs(skipped / eligible / 0.25 - 1.0) < 0.2


def test_early_buses_wait_at_timepoints_unless_they_leave_early_at_the_set_rate() -> None:
    trip = street_trip(timepoint_every=4, start_s=12 * 3600.0)  # off-peak: buses run early
    early = left_early = 0
    for seed in range(300):
        run = _drive(trip, seed=seed, driving=DrivingFaults(0.0, 0.3, 0.0))
        held = run.early_at_holding
        early += int(held.sum())
        left_early += int((run.departure[held] < trip.departure[: run.passed][held]).sum())
    assert early > 500
    assert abs(left_early / early / 0.3 - 1.0) < 0.2
    strict = _drive(trip, seed=1)
    assert np.all(strict.departure[strict.early_at_holding] >= trip.departure[strict.early_at_holding])


def test_short_turns_end_in_the_second_half_at_the_set_rate() -> None:
    trip = street_trip()
    short = 0
    for seed in range(2000):
        run = _drive(trip, seed=seed, driving=DrivingFaults(0.0, 0.0, 0.1))
        if run.passed < len(trip.stop_ids):
            short += 1
            assert run.passed - 1 >= len(trip.stop_ids) // 2
    assert abs(short / 2000 / 0.1 - 1.0) < 0.2
    assert math.isfinite(short)
