"""The GPS device on a bus: when it takes fixes, how wrong they are, and what goes wrong on the way.

Pure and vectorised per window of fixes. The number of random draws depends only on the fix times, never
on the fault rates, so a run with faults off has exactly the fixes and noise of the run with faults on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.config import DeviceFaults

GAP_MIN_S, GAP_MAX_S = 120.0, 600.0
LATE_MIN_S, LATE_MAX_S = 60.0, 600.0
JUMP_MIN_M, JUMP_MAX_M = 2_000.0, 20_000.0
BASE_LATENCY_S = 0.3  # network latency floor; an exponential part with mean 1.5 s is added


@dataclass
class DeviceClock:
    """When the next fix will be taken (seconds since the service day's origin) and any outage running."""

    next_fix: float
    gap_until: float = -math.inf


def fix_times(
    clock: DeviceClock, start: float, end: float, rng: np.random.Generator, interval: float, jitter: float
) -> np.ndarray:
    """Fix times in [start, end), continuing the device's own rhythm (jittered intervals)."""
    if clock.next_fix < start:  # the device was off (deadhead): skip whole intervals, no draws
        clock.next_fix += math.ceil((start - clock.next_fix) / interval) * interval
    pieces: list[np.ndarray] = []
    t = clock.next_fix
    while t < end:
        count = int((end - t) / interval * 1.2) + 4
        steps = interval * np.maximum(1.0 + jitter * rng.standard_normal(count), 0.2)
        times = t + np.concatenate(([0.0], np.cumsum(steps)))
        inside = int(np.searchsorted(times, end))
        if inside < len(times):
            pieces.append(times[:inside])
            t = float(times[inside])
        else:
            pieces.append(times[:-1])
            t = float(times[-1])
    clock.next_fix = t
    return np.concatenate(pieces) if pieces else np.empty(0)


@dataclass(frozen=True)
class FixFaults:
    """Per fix: whether it was sent and how it was damaged; delivery times in the same clock as the fixes."""

    sent: np.ndarray  # bool
    in_gap: np.ndarray  # bool: lost to an outage (else, when not sent, a single dropout)
    duplicate: np.ndarray  # bool: sent twice
    late: np.ndarray
    out_of_order: np.ndarray
    zero: np.ndarray
    swapped: np.ndarray
    jump: np.ndarray
    deliver_at: np.ndarray  # first copy
    duplicate_at: np.ndarray  # second copy (when duplicate)
    noise_xy: np.ndarray  # (n, 2) metres
    jump_xy: np.ndarray  # (n, 2) metres


def draw_faults(
    times: np.ndarray,
    clock: DeviceClock,
    rng: np.random.Generator,
    faults: DeviceFaults,
    interval: float,
    gps_noise_m: float,
) -> FixFaults:
    n = len(times)
    u = rng.random((n, 7))
    gap_length = rng.uniform(GAP_MIN_S, GAP_MAX_S, n)
    late_by = rng.uniform(LATE_MIN_S, LATE_MAX_S, n)
    latency = BASE_LATENCY_S + rng.exponential(1.5, n)
    again_after = 0.2 + rng.exponential(2.0, n)
    noise_xy = rng.standard_normal((n, 2)) * (gps_noise_m / math.sqrt(2.0))
    jump_m = rng.uniform(JUMP_MIN_M, JUMP_MAX_M, n)
    jump_angle = rng.uniform(0.0, 2.0 * math.pi, n)

    in_gap = times < clock.gap_until
    gap_start_p = faults.gap_rate * interval / 3600.0
    for i in np.flatnonzero(u[:, 1] < gap_start_p).tolist():
        if times[i] >= clock.gap_until:
            clock.gap_until = float(times[i] + gap_length[i])
            in_gap |= (times >= times[i]) & (times < clock.gap_until)
    sent = ~in_gap & (u[:, 0] >= faults.dropout_rate)
    duplicate = sent & (u[:, 2] < faults.duplicate_rate)
    late = sent & (u[:, 3] < faults.late_rate)
    deliver_at = times + latency + np.where(late, late_by, 0.0)
    out_of_order = np.zeros(n, dtype=bool)
    sent_index = np.flatnonzero(sent)
    candidates = sent & ~late & (u[:, 4] < faults.out_of_order_rate)
    for i in reversed(np.flatnonzero(candidates).tolist()):
        after = np.searchsorted(sent_index, i, side="right")
        if after < len(sent_index):  # delivered just behind the next fix that gets out
            out_of_order[i] = True
            deliver_at[i] = max(deliver_at[i], deliver_at[sent_index[after]] + 0.001)
        else:  # the window's last fix: held back past where the next one will land
            out_of_order[i] = True
            deliver_at[i] += 2.0 * interval + 5.0
    z, s, j = faults.zero_fix_rate, faults.swapped_fix_rate, faults.jump_fix_rate
    zero = sent & (u[:, 5] < z)
    swapped = sent & (u[:, 5] >= z) & (u[:, 5] < z + s)
    jump = sent & (u[:, 5] >= z + s) & (u[:, 5] < z + s + j)
    jump_xy = np.column_stack((jump_m * np.sin(jump_angle), jump_m * np.cos(jump_angle)))
    return FixFaults(
        sent, in_gap, duplicate, late, out_of_order, zero, swapped, jump,
        deliver_at, deliver_at + again_after, noise_xy, jump_xy,
    )
