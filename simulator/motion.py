"""How a bus really runs one trip: true stop times from the schedule, the delay model and the driver.

Pure: a trip, a random generator and the model's parameters in; a `TripRun` out. A `TripRun` then gives
the bus's distance along the shape and its speed at any instants (vectorised).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from eta.network import Trip
from simulator.config import DelayModel, DrivingFaults

SECONDS_PER_HOUR = 3600.0
PEAK_OVER_MEAN_SPEED = 1.5  # a segment run from rest to rest (smoothstep) peaks at 1.5 x its mean speed


def congestion_factor(hour: float, model: DelayModel) -> float:
    """Expected run time over scheduled run time at local hour `hour` (may exceed 24): below 1 off-peak
    (schedules are padded, so buses run early and wait at timepoints), above 1 in the peaks."""
    h = hour % 24.0
    am = model.am_peak_slowdown * math.exp(-0.5 * ((h - model.am_peak_hour) / model.peak_width_h) ** 2)
    pm = model.pm_peak_slowdown * math.exp(-0.5 * ((h - model.pm_peak_hour) / model.peak_width_h) ** 2)
    return model.free_flow_ratio * (1.0 + am + pm)


def congestion_factors(hours: np.ndarray, model: DelayModel) -> np.ndarray:
    """`congestion_factor` for many hours at once."""
    h = hours % 24.0
    am = model.am_peak_slowdown * np.exp(-0.5 * ((h - model.am_peak_hour) / model.peak_width_h) ** 2)
    pm = model.pm_peak_slowdown * np.exp(-0.5 * ((h - model.pm_peak_hour) / model.peak_width_h) ** 2)
    result: np.ndarray = model.free_flow_ratio * (1.0 + am + pm)
    return result


def segment_factor(seed: int, from_stop: str, to_stop: str, sigma: float) -> float:
    """A street's fixed speed factor, the same for every bus that drives it (mean 1, log-sd sigma).

    Derived from a hash rather than a generator so it does not depend on which bus drives it first.
    """
    key = f"{seed}|{from_stop}|{to_stop}".encode()
    u1 = (zlib.crc32(key) + 0.5) / 2**32
    u2 = (zlib.crc32(key[::-1]) + 0.5) / 2**32
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return math.exp(sigma * z - 0.5 * sigma * sigma)


def nominal_run_times(trip: Trip, model: DelayModel) -> np.ndarray:
    """Driving time the schedule allows on each stop-to-stop segment.

    Schedules that give no dwell (arrival == departure) hide the average dwell inside the run time, so
    that share is taken out; runs that the schedule's rounding makes ~0 s get a plausible floor.
    """
    scheduled = trip.arrival[1:] - trip.departure[:-1]
    hidden_dwell = np.maximum(model.dwell_base_s + model.dwell_mean_extra_s - (trip.departure - trip.arrival), 0.0)
    hidden_dwell[-1] = 0.0  # nobody boards at the last stop
    length = np.diff(trip.stop_dist)
    floored: np.ndarray = np.maximum(scheduled - hidden_dwell[1:], length / model.schedule_speed_floor)
    return floored


def holding_stops(trip: Trip) -> np.ndarray:
    """Stops where an early bus waits for its scheduled departure.

    Designated timepoints hold. A feed that gives every stop a time designates none, so there buses hold
    only where the schedule shows a dwell (departure after arrival), and always at the first stop.
    """
    holds = trip.timepoint.copy() if not trip.timepoint.all() else trip.departure > trip.arrival
    holds[0] = True
    return np.asarray(holds, dtype=bool)


@dataclass(frozen=True)
class TripRun:
    """A trip as it really ran. Times are seconds since the service day's origin; index i is the trip's
    i-th stop; only the first `passed` stops were reached (fewer than all after a short turn)."""

    trip: Trip
    offset_s: float  # the schedule shift of a replicated vehicle (0 for the feed's own vehicles)
    arrival: np.ndarray  # (passed,)
    departure: np.ndarray  # (passed,)
    served: np.ndarray  # (passed,) bool: stopped (True) or drove past (False)
    early_at_holding: np.ndarray  # (passed,) bool: arrived early enough at a holding stop to wait
    noise_out: float  # the AR(1) traffic state after the trip, carried to the next trip

    @property
    def passed(self) -> int:
        return len(self.arrival)

    @property
    def stop_dist(self) -> np.ndarray:
        return self.trip.stop_dist[: self.passed]

    @property
    def ready_at(self) -> float:
        """When the bus reached its first stop."""
        return float(self.arrival[0])

    @property
    def finished_at(self) -> float:
        """When the bus left its last reached stop (the trip's passengers are off)."""
        return float(self.departure[-1])

    def progress(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance along the shape (metres) and speed (m/s) at times `t` (seconds since origin)."""
        dist = self.stop_dist
        arr, dep = self.arrival, self.departure
        last = self.passed - 1
        # the last stop left at or before t; -1 = not yet left the first stop
        left = np.searchsorted(dep, t, side="right") - 1
        moving = (left >= 0) & (left < last)
        seg = np.clip(left, 0, max(last - 1, 0))
        nxt = np.minimum(seg + 1, last)
        in_segment = moving & (t < arr[nxt])
        s = np.where(left < 0, dist[0], np.where(left >= last, dist[last], dist[nxt]))
        speed = np.zeros_like(t)
        if last == 0 or not in_segment.any():
            return s, speed
        i = seg[in_segment]
        start, end = dep[i], arr[i + 1]
        span = np.maximum(end - start, 1e-9)
        u = np.clip((t[in_segment] - start) / span, 0.0, 1.0)
        from_rest = self.served[i] | (i == 0)
        to_rest = self.served[i + 1] | (i + 1 == last)
        f, df = _easing(u, from_rest, to_rest)
        length = dist[i + 1] - dist[i]
        s[in_segment] = dist[i] + length * f
        speed[in_segment] = length * df / span
        return s, speed


def _easing(u: np.ndarray, from_rest: np.ndarray, to_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a segment covered at fraction u of its time, and its derivative: a bus accelerates away
    from a stop it served and brakes into the next one it serves; it keeps speed past a skipped stop."""
    both = u * u * (3.0 - 2.0 * u), 6.0 * u * (1.0 - u)
    accel = u * u * (2.0 - u), u * (4.0 - 3.0 * u)
    w = 1.0 - u
    brake = 1.0 - w * w * (2.0 - w), w * (4.0 - 3.0 * w)
    f = np.where(from_rest, np.where(to_rest, both[0], accel[0]), np.where(to_rest, brake[0], u))
    df = np.where(from_rest, np.where(to_rest, both[1], accel[1]), np.where(to_rest, brake[1], 1.0))
    return f, df


@dataclass(frozen=True)
class TripStatics:
    """What every run of a trip shares, computed once per trip: nominal driving times, the fastest
    possible run of each segment, the street factors, and where buses hold."""

    nominal: np.ndarray  # (k-1,) seconds
    fastest: np.ndarray  # (k-1,) seconds
    street: np.ndarray  # (k-1,) factor
    holds: list[bool]

    @classmethod
    def of(cls, trip: Trip, seed: int, model: DelayModel) -> TripStatics:
        ids = trip.stop_ids
        street = [segment_factor(seed, a, b, model.segment_sigma) for a, b in zip(ids, ids[1:], strict=False)]
        return cls(
            nominal_run_times(trip, model),
            np.diff(trip.stop_dist) / (model.max_speed / PEAK_OVER_MEAN_SPEED),
            np.array(street),
            holding_stops(trip).tolist(),
        )


def drive_trip(
    trip: Trip,
    ready_at: float,
    rng: np.random.Generator,
    *,
    seed: int,
    model: DelayModel,
    driving: DrivingFaults,
    noise_in: float,
    origin_hour: float,
    offset_s: float = 0.0,
    layover_s: float = 0.0,
    statics: TripStatics | None = None,
) -> TripRun:
    """Run `trip` for a bus that reaches its first stop at `ready_at` (seconds since origin).

    `origin_hour` is the local clock hour at the service day's origin (0 except on DST days) so peaks
    land on local time; `offset_s` shifts the whole schedule for a replicated vehicle; `layover_s` is the
    minimum rest at the first stop before leaving (terminal layover between trips); `statics` is
    `TripStatics.of(trip, seed, model)`, passed in when the caller caches it.
    The number of random draws depends only on the trip, so other options never reshuffle a bus's day.
    """
    k = len(trip.stop_ids)
    st = statics or TripStatics.of(trip, seed, model)
    sched_dep = (trip.departure + offset_s).tolist()
    z = rng.standard_normal(max(k - 1, 0)).tolist()
    u_skip = rng.random(k).tolist()
    u_early = rng.random(k).tolist()
    dwell = (model.dwell_base_s + rng.gamma(2.0, model.dwell_mean_extra_s / 2.0, k)).tolist()
    start_lag = float(rng.exponential(model.start_lag_mean_s))
    u_short, u_short_at = rng.random(2).tolist()

    passed = k
    if k >= 4 and u_short < driving.short_turn_rate:
        passed = k // 2 + 1 + int(u_short_at * (k - 2 - k // 2))  # ends somewhere in the second half
    arrival = [ready_at] * passed
    departure = [0.0] * passed
    served = [True] * passed
    early = [False] * passed
    departure[0] = max(sched_dep[0], ready_at + layover_s) + start_lag
    rho, sigma = model.noise_correlation, model.noise_sigma
    innovation = sigma * math.sqrt(1.0 - rho * rho)
    skip_rate, early_rate = driving.skip_stop_rate, driving.early_departure_rate
    noise = [0.0] * k
    level = noise_in
    for j in range(k - 1):
        level = rho * level + innovation * z[j]
        noise[j] = level
    # Congestion at the scheduled departure shifted by the delay the bus starts with: the delay gained
    # within one trip moves a segment by minutes on a bell hours wide, which does not matter.
    start_delay = departure[0] - sched_dep[0]
    hours = origin_hour + (np.asarray(sched_dep[: k - 1]) + start_delay) / SECONDS_PER_HOUR
    runs = np.maximum(
        st.nominal * congestion_factors(hours, model) * st.street
        * np.exp(np.asarray(noise[: k - 1]) - 0.5 * sigma * sigma),
        st.fastest,
    ).tolist()
    for j in range(1, passed):
        run = runs[j - 1]
        arrival[j] = arrive = departure[j - 1] + run
        if j == passed - 1:
            departure[j] = arrive + 0.5 * dwell[j]  # passengers alight; nobody boards
        elif st.holds[j]:
            leave = arrive + dwell[j]
            if leave < sched_dep[j]:
                early[j] = True
                if u_early[j] >= early_rate:
                    leave = sched_dep[j]
            departure[j] = leave
        elif u_skip[j] < skip_rate:
            served[j] = False
            departure[j] = arrive
        else:
            departure[j] = arrive + dwell[j]
    return TripRun(
        trip, offset_s, np.array(arrival), np.array(departure), np.array(served, dtype=bool),
        np.array(early, dtype=bool), noise[passed - 2] if passed >= 2 else noise_in,
    )
