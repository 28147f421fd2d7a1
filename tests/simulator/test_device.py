from __future__ import annotations

import math
from dataclasses import fields

import numpy as np

from simulator.config import NO_DEVICE_FAULTS, DeviceFaults
from simulator.device import DeviceClock, draw_faults, fix_times

RATES = DeviceFaults(
    dropout_rate=0.05, gap_rate=0.5, duplicate_rate=0.03, late_rate=0.02, out_of_order_rate=0.02,
    zero_fix_rate=0.01, swapped_fix_rate=0.01, jump_fix_rate=0.01,
)


def test_fixes_keep_their_rhythm_across_windows() -> None:
    rng = np.random.default_rng(0)
    clock = DeviceClock(next_fix=0.0)
    first = fix_times(clock, 0.0, 3600.0, rng, 30.0, 0.1)
    second = fix_times(clock, 3600.0, 7200.0, rng, 30.0, 0.1)
    times = np.concatenate((first, second))
    assert np.all(np.diff(times) > 0)
    assert first.max() < 3600.0 <= second.min()
    assert abs(np.diff(times).mean() - 30.0) < 1.0


def test_a_device_switched_off_resumes_without_a_backlog() -> None:
    clock = DeviceClock(next_fix=0.0)
    rng = np.random.default_rng(0)
    fix_times(clock, 0.0, 600.0, rng, 10.0, 0.0)
    later = fix_times(clock, 5000.0, 5100.0, rng, 10.0, 0.0)
    assert later.min() >= 5000.0 and len(later) == 10


def test_gps_noise_has_the_configured_horizontal_rms() -> None:
    times = np.arange(0.0, 200_000.0, 1.0)
    faults = draw_faults(times, DeviceClock(0.0), np.random.default_rng(3), NO_DEVICE_FAULTS, 1.0, 10.0)
    rms = math.sqrt(np.mean(np.sum(faults.noise_xy**2, axis=1)))
    assert abs(rms - 10.0) < 0.2
    assert abs(faults.noise_xy[:, 0].std() - 10.0 / math.sqrt(2.0)) < 0.2


def test_no_faults_means_every_fix_goes_out_once_and_in_order() -> None:
    times = np.arange(0.0, 36_000.0, 30.0)
    faults = draw_faults(times, DeviceClock(0.0), np.random.default_rng(1), NO_DEVICE_FAULTS, 30.0, 10.0)
    assert faults.sent.all()
    for name in ("duplicate", "late", "out_of_order", "zero", "swapped", "jump"):
        assert not getattr(faults, name).any()
    assert np.all(np.diff(faults.deliver_at) > 0)


def test_each_device_fault_happens_at_its_rate() -> None:
    interval = 10.0
    times = np.arange(0.0, 1_000 * 3600.0, interval)  # a thousand device-hours
    clock = DeviceClock(0.0)
    faults = draw_faults(times, clock, np.random.default_rng(7), RATES, interval, 10.0)
    n_out_of_gaps = int((~faults.in_gap).sum())
    gaps = int(np.sum(faults.in_gap[1:] & ~faults.in_gap[:-1]) + faults.in_gap[0])
    sent = faults.sent
    measured = {
        "dropout_rate": ((~sent) & ~faults.in_gap).sum() / n_out_of_gaps,
        "gap_rate": gaps / (n_out_of_gaps * interval / 3600.0),
        "duplicate_rate": faults.duplicate.sum() / sent.sum(),
        "late_rate": faults.late.sum() / sent.sum(),
        "out_of_order_rate": faults.out_of_order.sum() / (sent & ~faults.late).sum(),
        "zero_fix_rate": faults.zero.sum() / sent.sum(),
        "swapped_fix_rate": faults.swapped.sum() / sent.sum(),
        "jump_fix_rate": faults.jump.sum() / sent.sum(),
    }
    for name, value in measured.items():
        assert abs(value / getattr(RATES, name) - 1.0) < 0.2, (name, value)
    assert len(measured) == len([f for f in fields(DeviceFaults) if "trip" not in f.name])


def test_out_of_order_fixes_arrive_after_their_successor_and_late_ones_minutes_late() -> None:
    times = np.arange(0.0, 100 * 3600.0, 30.0)
    faults = draw_faults(times, DeviceClock(0.0), np.random.default_rng(2), RATES, 30.0, 10.0)
    sent = np.flatnonzero(faults.sent)
    deliver = faults.deliver_at[sent]
    later_delivered_first = np.array([deliver[i] > deliver[i + 1] for i in range(len(sent) - 1)] + [True])
    ooo = faults.out_of_order[sent]
    assert later_delivered_first[ooo].all()
    lateness = (faults.deliver_at - times)[faults.late]
    assert lateness.min() >= 60.0 and lateness.max() <= 610.0


def test_the_draws_do_not_depend_on_the_rates() -> None:
    times = np.arange(0.0, 7200.0, 30.0)
    quiet = draw_faults(times, DeviceClock(0.0), np.random.default_rng(5), NO_DEVICE_FAULTS, 30.0, 10.0)
    noisy = draw_faults(times, DeviceClock(0.0), np.random.default_rng(5), RATES, 30.0, 10.0)
    assert np.array_equal(quiet.noise_xy, noisy.noise_xy)
