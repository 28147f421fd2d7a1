"""Invariants of a simulated day on the Cairns feed and on the small edge-case feeds."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from eta.network import Network
from simulator.config import NO_DEVICE_FAULTS, NO_DRIVING_FAULTS, DeviceFaults, DrivingFaults, SimConfig
from simulator.generator import plan_day
from tests.simulator.conftest import A_WEDNESDAY, EDGE_FEEDS, Day, edge_network, run_day

CAIRNS_DAY = dt.date(2026, 11, 25)  # the feed is from 2014: this date is mapped onto a 2014 Wednesday
RAISED = DeviceFaults(
    dropout_rate=0.05, gap_rate=0.5, duplicate_rate=0.02, late_rate=0.02, out_of_order_rate=0.02,
    zero_fix_rate=0.01, swapped_fix_rate=0.01, jump_fix_rate=0.01, missing_trip_rate=0.3, wrong_trip_rate=0.2,
)
RAISED_DRIVING = DrivingFaults(skip_stop_rate=0.2, early_departure_rate=0.1, short_turn_rate=0.2)


@pytest.fixture(scope="module")
def cairns_day(cairns: Network) -> Day:
    return run_day(cairns, CAIRNS_DAY, SimConfig(seed=3, ping_interval_s=15.0, device=RAISED, driving=RAISED_DRIVING))


@pytest.fixture(scope="module")
def cairns_quiet_day(cairns: Network) -> Day:
    config = SimConfig(seed=3, ping_interval_s=15.0, device=NO_DEVICE_FAULTS, driving=RAISED_DRIVING)
    return run_day(cairns, CAIRNS_DAY, config)


def assert_truth_on_shapes(day: Day) -> None:
    net = day.plan.network
    lines: dict[str, LineString] = {}
    worst = 0.0
    for d in day.deliveries[:: max(1, len(day.deliveries) // 5000)]:
        if d.truth is None:
            continue
        shape_id = net.trips[d.truth.trip_id].shape_id
        line = lines.setdefault(shape_id, LineString(net.shapes[shape_id].xy))
        x, y = net.projection.to_xy(d.truth.latitude, d.truth.longitude)
        worst = max(worst, line.distance(Point(float(x), float(y))))
        at = line.interpolate(d.truth.shape_dist)
        assert math.hypot(at.x - float(x), at.y - float(y)) < 0.5
    assert worst < 0.5


def assert_stops_in_sequence(day: Day) -> None:
    net = day.plan.network
    by_trip = defaultdict(list)
    for s in day.stops:
        by_trip[(s.vehicle_id, s.trip_id)].append(s)
    assert by_trip
    for (_, trip_id), stops in by_trip.items():
        stops.sort(key=lambda s: (s.arrival_time, s.stop_sequence))
        sequences = [s.stop_sequence for s in stops]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        trip = net.trips[trip_id]
        assert sequences == trip.stop_sequences[: len(sequences)].tolist()  # first stop included, none skipped
        assert all(s.arrival_time <= s.departure_time for s in stops)
        assert all(a.departure_time <= b.arrival_time for a, b in zip(stops, stops[1:], strict=False))
        assert stops[0].served and stops[-1].served


def test_cairns_truth_positions_lie_on_the_shapes(cairns_day: Day) -> None:
    assert_truth_on_shapes(cairns_day)


def test_cairns_trips_reach_their_stops_in_stop_sequence_order(cairns_day: Day) -> None:
    assert_stops_in_sequence(cairns_day)


def test_cairns_day_is_mapped_and_carries_the_real_date(cairns_day: Day) -> None:
    plan = cairns_day.plan
    assert plan.mapped and plan.feed_day.year == 2014 and plan.feed_day.weekday() == CAIRNS_DAY.weekday()
    assert {d.ping.start_date for d in cairns_day.deliveries} == {"20261125", None}
    assert {s.service_date for s in cairns_day.stops} == {"20261125"}
    stamps = np.array([d.ping.timestamp for d in cairns_day.deliveries])
    assert plan.origin <= stamps.min() and stamps.max() <= plan.origin + 30 * 3600


def test_pings_come_in_delivery_order_and_the_run_is_deterministic(cairns: Network, cairns_day: Day) -> None:
    delivered = [d.deliver_at for d in cairns_day.deliveries]
    assert delivered == sorted(delivered)
    stamps = [d.ping.timestamp for d in cairns_day.deliveries]
    assert stamps != sorted(stamps)  # late and out-of-order pings exist
    config = SimConfig(seed=3, ping_interval_s=15.0, device=RAISED, driving=RAISED_DRIVING, vehicles=5)
    again = run_day(cairns, CAIRNS_DAY, config)
    assert again.deliveries == run_day(cairns, CAIRNS_DAY, config).deliveries
    other = run_day(cairns, CAIRNS_DAY, replace(config, seed=4))
    assert other.deliveries != again.deliveries


def test_each_fault_is_measured_in_the_output_at_its_rate(cairns_day: Day, cairns_quiet_day: Day) -> None:
    interval = 15.0
    noisy, quiet = cairns_day, cairns_quiet_day
    # the same fixes are taken with faults on or off; faults only decide what is sent and how
    all_fixes: dict[str, list[float]] = defaultdict(list)
    for d in quiet.deliveries:
        all_fixes[d.ping.vehicle_id].append(d.ping.timestamp)
    sent = {(d.ping.vehicle_id, d.ping.timestamp) for d in noisy.deliveries}
    dropped = gaps = fixes_outside_gaps = 0
    for vehicle, times in all_fixes.items():
        times.sort()
        missing = [(vehicle, t) not in sent for t in times]
        run_start = None
        for i, m in enumerate([*missing, False]):
            if m and run_start is None:
                run_start = i
            elif not m and run_start is not None:
                span = times[min(i, len(times) - 1)] - times[max(run_start - 1, 0)]
                if span >= 120.0:  # an outage (at least 2 min without a fix)
                    gaps += 1
                else:
                    dropped += i - run_start
                    fixes_outside_gaps += i - run_start
                run_start = None
            elif not m:
                fixes_outside_gaps += 1
    firsts = [d for d in noisy.deliveries if d.truth is not None]
    copies = len(noisy.deliveries) - len(firsts)
    labels = [set(d.truth.faults.split(";")) for d in firsts if d.truth is not None]
    max_seen: dict[str, float] = defaultdict(lambda: -math.inf)
    behind = 0
    on_time = 0
    for d in noisy.deliveries:
        if d.truth is None or d.deliver_at - d.ping.timestamp > 60.0:
            continue
        on_time += 1
        if d.ping.timestamp < max_seen[d.ping.vehicle_id]:
            behind += 1
        max_seen[d.ping.vehicle_id] = max(max_seen[d.ping.vehicle_id], d.ping.timestamp)
    n = len(firsts)
    truth_of = {(d.ping.vehicle_id, d.ping.timestamp): d.truth for d in firsts}
    zero = sum(1 for d in firsts if d.ping.latitude == 0.0 and d.ping.longitude == 0.0)
    swapped = sum(1 for d in firsts if d.truth and abs(d.ping.latitude - d.truth.longitude) < 0.01)
    jump = sum(
        1 for d in firsts
        if d.truth and d.ping.latitude and abs(d.ping.latitude - d.truth.latitude) < 1
        and _metres(d.ping.latitude, d.ping.longitude, d.truth.latitude, d.truth.longitude) > 1000.0
    )
    trips_reported: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for d in firsts:
        truth = truth_of[(d.ping.vehicle_id, d.ping.timestamp)]
        assert truth is not None
        trips_reported[(d.ping.vehicle_id, truth.trip_id)].add(d.ping.trip_id)
    missing_trip = sum(1 for reported in trips_reported.values() if reported == {None})
    wrong_trip = sum(
        1 for (_, trip), reported in trips_reported.items() if None not in reported and trip not in reported
    )
    vehicle_hours = sum(len(t) for t in all_fixes.values()) * interval / 3600.0
    short: dict[tuple[str, str], int] = defaultdict(int)
    for s in noisy.stops:
        short[(s.vehicle_id, s.trip_id)] += 1
    net = noisy.plan.network
    short_turned = sum(1 for (_, trip), count in short.items() if count < len(net.trips[trip].stop_ids))
    measured = {
        "dropout_rate": (dropped / fixes_outside_gaps, RAISED.dropout_rate),
        "gap_rate": (gaps / vehicle_hours, RAISED.gap_rate),
        "duplicate_rate": (copies / n, RAISED.duplicate_rate),
        "late_rate": (sum("late" in lab for lab in labels) / n, RAISED.late_rate),
        "out_of_order_rate": (behind / on_time, RAISED.out_of_order_rate),
        "zero_fix_rate": (zero / n, RAISED.zero_fix_rate),
        "swapped_fix_rate": (swapped / n, RAISED.swapped_fix_rate),
        "jump_fix_rate": (jump / n, RAISED.jump_fix_rate),
        "missing_trip_rate": (missing_trip / len(trips_reported), RAISED.missing_trip_rate),
        "wrong_trip_rate": (wrong_trip / (len(trips_reported) - missing_trip), RAISED.wrong_trip_rate),
        "short_turn_rate": (short_turned / len(short), RAISED_DRIVING.short_turn_rate),
    }
    off = {name: (round(m, 4), want) for name, (m, want) in measured.items() if abs(m / want - 1.0) > 0.2}
    assert not off


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat1 - lat2) * 111_000.0
    dx = (lon1 - lon2) * 111_000.0 * math.cos(math.radians(lat2))
    return math.hypot(dx, dy)


def test_gps_noise_has_the_configured_spread(cairns: Network) -> None:
    config = SimConfig(seed=1, vehicles=10, gps_noise_m=25.0, device=NO_DEVICE_FAULTS)
    day = run_day(cairns, CAIRNS_DAY, config)
    errors = [
        _metres(d.ping.latitude, d.ping.longitude, d.truth.latitude, d.truth.longitude)
        for d in day.deliveries if d.truth is not None
    ]
    assert len(errors) > 5000
    assert abs(math.sqrt(np.mean(np.square(errors))) / 25.0 - 1.0) < 0.05


def test_skipped_stops_follow_the_rate(cairns_quiet_day: Day) -> None:
    net = cairns_quiet_day.plan.network
    by_trip: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for s in cairns_quiet_day.stops:
        by_trip[(s.vehicle_id, s.trip_id)].append(s.served)
    intermediate = [served for (_, t), flags in by_trip.items() for served in flags[1:-1]]
    assert all(flags[0] for flags in by_trip.values())
    rate = 1.0 - np.mean(intermediate)
    assert net.trips  # Cairns designates no timepoints: every intermediate stop may be skipped
    assert abs(rate / RAISED_DRIVING.skip_stop_rate - 1.0) < 0.2


def test_peak_hours_are_slower_than_midday(cairns_quiet_day: Day) -> None:
    net, origin = cairns_quiet_day.plan.network, cairns_quiet_day.plan.origin
    ratio_by_hour: dict[int, list[float]] = defaultdict(list)
    by_trip = defaultdict(list)
    for s in cairns_quiet_day.stops:
        by_trip[(s.vehicle_id, s.trip_id)].append(s)
    for (_, trip_id), stops in by_trip.items():
        trip = net.trips[trip_id]
        scheduled = trip.arrival[-1] - trip.departure[0]
        if len(stops) == len(trip.stop_ids) and scheduled > 600:
            hour = int((stops[0].departure_time - origin) // 3600)
            ratio_by_hour[hour].append((stops[-1].arrival_time - stops[0].departure_time) / scheduled)
    peak = np.median(ratio_by_hour[8])
    midday = np.median(ratio_by_hour[11] + ratio_by_hour[12] + ratio_by_hour[13])
    assert peak > midday * 1.1


def test_peak_fleet_is_the_requested_number_of_vehicles(cairns: Network) -> None:
    for wanted in (1, 20, 400):  # 400 is several times the feed's own peak: replicas fill the rest
        plan = plan_day(cairns, CAIRNS_DAY, SimConfig(vehicles=wanted))
        minutes = np.zeros(40 * 60, dtype=int)
        for duty in plan.duties:
            first, last = cairns.trips[duty.trip_ids[0]], cairns.trips[duty.trip_ids[-1]]
            a = int((first.start_time + duty.offset_s - 300.0) // 60) + 30
            z = int((last.end_time + duty.offset_s) // 60) + 30
            minutes[a : z + 1] += 1
        assert minutes.max() == wanted
        assert len({d.vehicle_id for d in plan.duties}) == len(plan.duties)


def test_chained_blocks_turn_at_the_same_terminal_after_a_layover(cairns: Network) -> None:
    plan = plan_day(cairns, CAIRNS_DAY, SimConfig())
    assert any(len(d.trip_ids) > 3 for d in plan.duties)
    for duty in plan.duties:
        for a_id, b_id in zip(duty.trip_ids, duty.trip_ids[1:], strict=False):
            a, b = cairns.trips[a_id], cairns.trips[b_id]
            assert a.route_id == b.route_id
            assert b.start_time >= a.end_time + plan.config.delay.min_layover_s
            end, start = cairns.stops[a.stop_ids[-1]], cairns.stops[b.stop_ids[0]]
            assert _metres(end.lat, end.lon, start.lat, start.lon) < 700.0


@pytest.mark.parametrize("feed", EDGE_FEEDS)
def test_edge_feeds_keep_every_invariant(feed: str) -> None:
    day = run_day(edge_network(feed), A_WEDNESDAY, SimConfig(seed=2, ping_interval_s=5.0))
    assert day.deliveries and day.stops
    assert_truth_on_shapes(day)
    assert_stops_in_sequence(day)
    progress: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for d in day.deliveries:
        if d.truth is not None:
            progress[(d.truth.vehicle_id, d.truth.trip_id)].append((d.truth.timestamp, d.truth.shape_dist))
    for points in progress.values():  # loops and out-and-back lines: progress only grows
        points.sort()
        dists = [p[1] for p in points]
        assert dists == sorted(dists)


def test_a_trip_past_midnight_runs_into_the_next_calendar_day() -> None:
    day = run_day(edge_network("no_shapes"), A_WEDNESDAY, SimConfig(driving=NO_DRIVING_FAULTS))
    night = [s for s in day.stops if s.trip_id == "ell-night"]
    assert night and max(s.arrival_time for s in night) > day.plan.origin + 86_400.0
    assert {s.service_date for s in night} == {"20250903"}


def test_holidays_and_frequencies_are_honoured() -> None:
    net = edge_network("holiday_frequencies")
    holiday = run_day(net, dt.date(2025, 9, 2), SimConfig())
    assert not holiday.deliveries and not holiday.stops
    extra_sunday = run_day(net, dt.date(2025, 8, 31), SimConfig())
    assert extra_sunday.deliveries
    weekday = run_day(net, A_WEDNESDAY, SimConfig(driving=NO_DRIVING_FAULTS))
    frequency_trips = {s.trip_id for s in weekday.stops if net.trips[s.trip_id].route_id == "FREQ"}
    assert len(frequency_trips) == 6
