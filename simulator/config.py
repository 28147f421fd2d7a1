"""Every knob of the simulator in one frozen record, with its unit and its default.

Rates are probabilities (0..1) unless the name says otherwise. Each fault has a non-zero default so a
plain run already exercises every path of the tracker downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class DeviceFaults:
    """What goes wrong between a bus's GPS fix and its delivery: rates per fix unless said otherwise."""

    dropout_rate: float = 0.02  # a single fix is never sent
    gap_rate: float = 0.2  # outages of 2-10 minutes, per vehicle-hour of service
    duplicate_rate: float = 0.01  # a fix is sent twice
    late_rate: float = 0.01  # a fix is delivered 1-10 minutes after it was taken
    out_of_order_rate: float = 0.01  # a fix is delivered just after the fix that followed it
    zero_fix_rate: float = 0.001  # latitude 0, longitude 0
    swapped_fix_rate: float = 0.001  # latitude and longitude exchanged
    jump_fix_rate: float = 0.001  # a position kilometres away
    missing_trip_rate: float = 0.1  # per trip: its pings carry no trip_id (route_id still sent)
    wrong_trip_rate: float = 0.02  # per trip: its pings carry another trip of the same route


@dataclass(frozen=True)
class DrivingFaults:
    """What drivers do that the schedule does not say: rates per stop or per trip."""

    skip_stop_rate: float = 0.15  # per intermediate stop without holding: passed without stopping
    early_departure_rate: float = 0.1  # per early arrival at a holding timepoint: leaves without waiting
    short_turn_rate: float = 0.01  # per trip: ends before its last stop


@dataclass(frozen=True)
class DelayModel:
    """Run times between stops are the schedule's times scaled by congestion and correlated noise."""

    free_flow_ratio: float = 0.9  # run time over scheduled run time outside the peaks: schedules are padded
    am_peak_hour: float = 8.0  # local hour of the morning peak
    pm_peak_hour: float = 17.0
    peak_width_h: float = 1.2  # standard deviation of each peak's bell, hours
    am_peak_slowdown: float = 0.25  # +25 % run time at the top of the morning peak
    pm_peak_slowdown: float = 0.30
    segment_sigma: float = 0.12  # log-sd of a segment's fixed speed factor (some streets are slower)
    noise_sigma: float = 0.15  # log-sd of the AR(1) traffic noise on run times
    noise_correlation: float = 0.8  # AR(1) coefficient stop to stop: lateness persists
    max_speed: float = 22.0  # m/s (79 km/h): no bus is ever faster, accelerating and braking included
    schedule_speed_floor: float = 15.0  # m/s: schedules rounded to the minute give 0 s runs; assume this speed
    dwell_base_s: float = 8.0  # door open/close
    dwell_mean_extra_s: float = 16.0  # boarding, gamma distributed (shape 2)
    min_layover_s: float = 120.0  # at a terminal between trips of a block
    start_lag_mean_s: float = 15.0  # how late after its scheduled departure a ready bus pulls away
    pull_in_s: float = 300.0  # how early the first trip's bus reaches its first stop


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    vehicles: int | None = None  # in service at the busiest moment; None = every block of the day once
    ping_interval_s: float = 30.0
    ping_jitter: float = 0.1  # relative sd of the interval between fixes
    gps_noise_m: float = 10.0  # horizontal RMS error (each axis gets gps_noise / sqrt(2))
    device: DeviceFaults = field(default_factory=DeviceFaults)
    driving: DrivingFaults = field(default_factory=DrivingFaults)
    delay: DelayModel = field(default_factory=DelayModel)


def rate_names() -> list[str]:
    """The fault-rate fields, device first, as the CLI exposes them."""
    return [f.name for f in fields(DeviceFaults)] + [f.name for f in fields(DrivingFaults)]


NO_DEVICE_FAULTS = DeviceFaults(**{f.name: 0.0 for f in fields(DeviceFaults)})
NO_DRIVING_FAULTS = DrivingFaults(**{f.name: 0.0 for f in fields(DrivingFaults)})
