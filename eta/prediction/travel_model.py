"""What the predictor learns from observed stop events: run times of stop-to-stop segments, dwell times, the
turnaround at terminals, and how well each source of estimate has been doing.

Run times are kept in log seconds: a slow street is slow by a factor, and errors are relative.
Three sources estimate a segment's run time, each with a variance learned from its own past errors:
- prior: the schedule's run time (what "schedule + current delay" assumes);
- history: the mean run on this segment in this half hour of the service day, over past days and today;
- recent: what the last vehicle on this segment took, its variance growing with its age.
They are fused with inverse-variance weights (a Kalman update with learned noise, as TheTransitClock's
filter does for one source pair), so a source that has been wrong lately counts for less.
On top, each vehicle's own pace (its last residual against the fused estimate) carries forward to the
segments ahead, decaying with the learned stop-to-stop correlation: a bus running slow keeps running slow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from eta.prediction.estimate import Running

TOD_BIN_S: Final = 1800  # history profiles per half hour of the service day
RECENT_AGE_BUCKETS_S = (300.0, 900.0, 1800.0, 3600.0, 7200.0)  # a recent run older than the last is ignored
HISTORY_SHRINK: Final = 2.0  # a half hour seen a few times leans on the segment's all-day mean
HISTORY_TRUSTED_N: Final = 3  # from this many runs on, the schedule's prior is left out of the fusion
LEARN_RATE: Final = 0.05  # exponential weight once enough runs are seen: about the last 20
ERROR_LEARN_RATE: Final = 0.01
PACE_DEFAULT_CORRELATION: Final = 0.5
PRIOR_BIAS_SHRINK: Final = 20.0  # runs seen count for n / (n + this) of the network-wide bias: half at 20 runs
PACE_MIN_PAIRS: Final = 30
# Starting error variances (log seconds squared) before any error is measured: the schedule is known
# to be rough, history and a fresh recent run better.
_INITIAL_ERRORS: Final = {"prior": 0.09, "segment": 0.06, "history_few": 0.05, "history": 0.04}

Source = Literal["prior", "history", "recent", "blend"]
# the history source's error key (None: no history) and its log run, whether the schedule's prior counts, and the
# last recent run (seen at, log run)
_Fixed = tuple["str | None", float, bool, "tuple[float, float] | None"]


@dataclass(frozen=True, slots=True)
class RunEstimate:
    log_run: float  # expected log seconds
    log_var: float  # variance of its error, log seconds squared
    source: Source


def tod_bin(seconds_since_origin: float) -> int:
    return int(seconds_since_origin // TOD_BIN_S)


def _recent_key(age_s: float) -> str | None:
    for i, limit in enumerate(RECENT_AGE_BUCKETS_S):
        if age_s < limit:
            return f"recent{i}"
    return None


@dataclass
class TravelModel:
    history: dict[str, Running] = field(default_factory=dict)  # "a>b@bin" -> log run
    segment: dict[str, Running] = field(default_factory=dict)  # "a>b" -> log run, all day
    recent: dict[str, tuple[float, float]] = field(default_factory=dict)  # "a>b" -> (seen at, log run)
    errors: dict[str, Running] = field(default_factory=dict)  # source -> squared log error
    # how far real runs are from the schedule's, network-wide, per half hour ("" = all day): schedules are
    # padded off-peak and short in the peaks, and the whole network says so long before each segment does
    prior_bias: dict[str, Running] = field(default_factory=dict)
    dwell: dict[str, Running] = field(default_factory=dict)  # stop_id -> seconds at the stop
    turnaround: Running = field(default_factory=Running)  # seconds from arrival to leaving, when late
    start_lag: Running = field(default_factory=Running)  # seconds after the scheduled start, when early
    pace_xy: Running = field(default_factory=Running)  # consecutive residual products (correlation)
    pace_xx: Running = field(default_factory=Running)
    # `estimate`'s parts (a cache, not state: never saved or compared). A learned run clears its segment's parts
    # (segment -> bin -> parts), and every weight and shift, which each learned run moves
    _fixed: dict[str, dict[int, _Fixed]] = field(default_factory=dict, repr=False, compare=False)
    _weights: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    _recent_w: list[float] = field(default_factory=list, repr=False, compare=False)
    _shifts: dict[int, float] = field(default_factory=dict, repr=False, compare=False)  # bin -> prior_shift

    # --- estimates -------------------------------------------------------------------------------------
    def error_var(self, key: str) -> float:
        found = self.errors.get(key)
        if found is not None and found.n >= 5:
            return max(found.mean, 1e-4)
        if key.startswith("recent"):
            return 0.03 + 0.01 * int(key[6:])
        return _INITIAL_ERRORS[key]

    def prior_shift(self, bin_: int) -> float:
        """How far this half hour's runs are from the schedule's, network-wide (log seconds): the half hour's
        own mean, shrunk towards the all-day one, itself shrunk towards none. It grows as runs are seen rather
        than switching on at some count: a switch moves every board in the network at once (at a cold start,
        every bus would publish again in the same second)."""
        whole = self.prior_bias.get("")
        if whole is None:
            return 0.0
        day = whole.n * whole.mean / (whole.n + PRIOR_BIAS_SHRINK)
        part = self.prior_bias.get(str(bin_))
        if part is None:
            return day
        return (part.n * part.mean + PRIOR_BIAS_SHRINK * day) / (part.n + PRIOR_BIAS_SHRINK)

    def _sources(self, seg: str, bin_: int, prior_log: float, at: float) -> list[tuple[str, float]]:
        """(error key, log run) of every source that has something to say about `seg` at time `at`."""
        found: list[tuple[str, float]] = []
        prior_log += self.prior_shift(bin_)
        whole = self.segment.get(seg)
        part = self.history.get(f"{seg}@{bin_}")
        if part is not None and whole is not None:
            mean = (part.n * part.mean + HISTORY_SHRINK * whole.mean) / (part.n + HISTORY_SHRINK)
            found.append(("history" if part.n >= HISTORY_TRUSTED_N else "history_few", mean))
        elif whole is not None:
            found.append(("segment", whole.mean))
        if part is None or part.n < HISTORY_TRUSTED_N:
            found.append(("prior", prior_log))
        last = self.recent.get(seg)
        if last is not None:
            key = _recent_key(max(at - last[0], 0.0))
            if key is not None:
                found.append((key, last[1]))
        return found

    def run_estimate(self, seg: str, bin_: int, prior_log: float, at: float) -> RunEstimate:
        log_run, log_var, source = self.estimate(seg, bin_, prior_log, at)
        return RunEstimate(log_run, log_var, source)

    def estimate(self, seg: str, bin_: int, prior_log: float, at: float) -> tuple[float, float, Source]:
        """`run_estimate` as a plain tuple, from what is cached since the model last learned from this segment and
        from any (a walk asks this for every stop ahead, so each source's weight is worked out once, not per stop).
        The same sums in the same order as `_sources` and the fusion: the same floats to the last bit."""
        by_bin = self._fixed.get(seg)
        if by_bin is None:
            by_bin = self._fixed[seg] = {}
        fixed = by_bin.get(bin_)
        if fixed is None:
            fixed = by_bin[bin_] = self._fixed_part(seg, bin_)
        history_key, history_value, uses_prior, last = fixed
        total_w = 0.0
        total = 0.0
        weights = self._weights
        if history_key is not None:
            history_w = weights.get(history_key) or self._weight(history_key)
            total_w += history_w
            total += history_w * history_value
        if uses_prior:
            prior_w = weights.get("prior") or self._weight("prior")
            shift = self._shifts.get(bin_)
            if shift is None:
                shift = self._shifts[bin_] = self.prior_shift(bin_)
            total_w += prior_w
            total += prior_w * (prior_log + shift)
        learned_recent = False
        if last is not None:
            age = at - last[0]
            if age < 0.0:
                age = 0.0
            recent_w = self._recent_w or self._recent_weights()
            for i, limit in enumerate(RECENT_AGE_BUCKETS_S):
                if age < limit:
                    w = recent_w[i]
                    total_w += w
                    total += w * last[1]
                    learned_recent = True
                    break
        source: Source = (
            "blend" if history_key is not None and learned_recent
            else "history" if history_key is not None
            else "recent" if learned_recent
            else "prior"
        )
        return total / total_w, 1.0 / total_w, source

    def _fixed_part(self, seg: str, bin_: int) -> _Fixed:
        """What `estimate` needs of `seg` in `bin_` alone: which history source speaks for it and its value, whether
        the schedule's prior does, and the last recent run. It changes only when a run of `seg` is learned; the
        weights and the network-wide shift, which every learned run moves, are looked up apart."""
        history_key: str | None = None
        history_value = 0.0
        whole = self.segment.get(seg)
        part = self.history.get(f"{seg}@{bin_}")
        if part is not None and whole is not None:
            history_value = (part.n * part.mean + HISTORY_SHRINK * whole.mean) / (part.n + HISTORY_SHRINK)
            history_key = "history" if part.n >= HISTORY_TRUSTED_N else "history_few"
        elif whole is not None:
            history_value = whole.mean
            history_key = "segment"
        uses_prior = part is None or part.n < HISTORY_TRUSTED_N
        return history_key, history_value, uses_prior, self.recent.get(seg)

    def _weight(self, key: str) -> float:
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = 1.0 / self.error_var(key)
        return w

    def _recent_weights(self) -> list[float]:
        if not self._recent_w:
            self._recent_w.extend(self._weight(f"recent{i}") for i in range(len(RECENT_AGE_BUCKETS_S)))
        return self._recent_w

    def pace_correlation(self) -> float:
        if self.pace_xx.n < PACE_MIN_PAIRS or self.pace_xx.mean <= 0.0:
            return PACE_DEFAULT_CORRELATION
        return min(max(self.pace_xy.mean / self.pace_xx.mean, 0.0), 0.95)

    def dwell_s(self, stop_id: str, scheduled_s: float) -> float:
        found = self.dwell.get(stop_id)
        return found.mean if found is not None else scheduled_s

    def turnaround_s(self) -> float:
        return self.turnaround.mean if self.turnaround.n else 60.0

    def start_lag_s(self) -> float:
        return self.start_lag.mean if self.start_lag.n else 0.0

    # --- learning --------------------------------------------------------------------------------------
    def observe_run(self, seg: str, bin_: int, prior_log: float, started: float, run_s: float) -> float:
        """Learn one observed run (departure at `started`, `run_s` seconds to the next stop); return its
        residual against the fused estimate made before learning it (the vehicle's pace)."""
        value = math.log(max(run_s, 1.0))
        before = self.run_estimate(seg, bin_, prior_log, started)
        for key, estimate in self._sources(seg, bin_, prior_log, started):
            self.errors.setdefault(key, Running()).add((value - estimate) ** 2, ERROR_LEARN_RATE)
        self.prior_bias.setdefault(str(bin_), Running()).add(value - prior_log, LEARN_RATE)
        self.prior_bias.setdefault("", Running()).add(value - prior_log, LEARN_RATE)
        self.history.setdefault(f"{seg}@{bin_}", Running()).add(value, LEARN_RATE)
        self.segment.setdefault(seg, Running()).add(value, LEARN_RATE)
        self.recent[seg] = (started + run_s, value)
        # this segment's cached parts are stale now, and every weight and shift: the errors and the bias moved
        self._fixed.pop(seg, None)
        self._weights.clear()
        self._recent_w.clear()
        self._shifts.clear()
        return value - before.log_run

    def observe_pace(self, previous: float, current: float) -> None:
        self.pace_xy.add(previous * current, ERROR_LEARN_RATE)
        self.pace_xx.add(previous * previous, ERROR_LEARN_RATE)

    def observe_dwell(self, stop_id: str, dwell_s: float) -> None:
        self.dwell.setdefault(stop_id, Running()).add(max(dwell_s, 0.0), LEARN_RATE)

    # --- persistence (eta/prediction/learned_state.py writes the same structure a slice at a time) -------
    def to_json(self) -> dict[str, Any]:
        def table(d: dict[str, Running]) -> dict[str, list[float]]:
            return {k: d[k].to_list() for k in sorted(d)}

        return {
            "history": table(self.history),
            "segment": table(self.segment),
            "recent": {k: [self.recent[k][0], self.recent[k][1]] for k in sorted(self.recent)},
            "errors": table(self.errors),
            "prior_bias": table(self.prior_bias),
            "dwell": table(self.dwell),
            "turnaround": self.turnaround.to_list(),
            "start_lag": self.start_lag.to_list(),
            "pace_xy": self.pace_xy.to_list(),
            "pace_xx": self.pace_xx.to_list(),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TravelModel:
        def table(d: dict[str, list[float]]) -> dict[str, Running]:
            return {k: Running.from_list(v) for k, v in d.items()}

        return cls(
            history=table(body["history"]),
            segment=table(body["segment"]),
            recent={k: (float(v[0]), float(v[1])) for k, v in body["recent"].items()},
            errors=table(body["errors"]),
            prior_bias=table(body["prior_bias"]),
            dwell=table(body["dwell"]),
            turnaround=Running.from_list(body["turnaround"]),
            start_lag=Running.from_list(body["start_lag"]),
            pace_xy=Running.from_list(body["pace_xy"]),
            pace_xx=Running.from_list(body["pace_xx"]),
        )
