"""What a learning predictor has learned, as bytes to keep across restarts (a database row, a replay's file).

The bytes are gzip of one JSON object: {"version": 2, "feed_version": the feed's hash, "segment_m": metres of
each segment the model knows, on that feed, "model": TravelModel.to_json()}. Floats are written exactly, so a
restarted worker estimates exactly as before. Version 1 (plain JSON, rounded, no feed version: the replays'
files before this module) is still read; anything else is refused with `LearnedStateError`.

A state belongs to the feed version it was learned on. On that version it is applied as it is. On another one
(a new timetable: agencies publish one every few weeks, and a learner that forgot at each would rarely reach
a trusted history) what it knows of the streets carries over, where that is still the same street:
- a segment's run times (all day, per half hour, the latest run) where a trip of the new version still runs
  from the same stop to the same stop over the same length, within `SAME_LENGTH_M` or `SAME_LENGTH_SHARE`
  (a stop moved or a new path between them: dropped, learned afresh);
- a stop's dwell where the stop still exists; the turnarounds, start lags and the buses' pace correlation;
- how wrong each learned source has been.
Left behind, because they describe the old timetable rather than the streets: how far runs were from the
schedule's (the prior bias) and how wrong the schedule was (the prior's error). Both are relearned within
some twenty runs. A version-1 state has no lengths: its segments carry over wherever they still exist.
"""

from __future__ import annotations

import gzip
import json
import statistics
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eta.network import Network
from eta.prediction.travel_model import TravelModel
from smartbus.errors import SmartbusError

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
SAME_LENGTH_M = 20.0
SAME_LENGTH_SHARE = 0.10
_SCHEDULE_ERROR_KEYS = ("prior",)


class LearnedStateError(SmartbusError):
    """Bytes that are not a learned state this version of smartbus reads (corrupt, or from a newer one)."""


def segment_lengths(network: Network) -> dict[str, float]:
    """Metres from stop to stop of every segment ("from>to" stop ids) the network's trips run: the median over
    the trips that run it (trips of one route may follow slightly different shapes)."""
    found: dict[str, list[float]] = {}
    for trip in network.trips.values():
        ids = trip.stop_ids
        dist = trip.stop_dist.tolist()
        for i in range(len(ids) - 1):
            found.setdefault(f"{ids[i]}>{ids[i + 1]}", []).append(dist[i + 1] - dist[i])
    return {seg: statistics.median(lengths) for seg, lengths in found.items()}


def _segment_of(history_key: str) -> str:
    return history_key.rpartition("@")[0]


@dataclass(frozen=True)
class LearnedState:
    """A detached copy of what a model learned: plain values, so it can be encoded in another thread while
    the model goes on learning."""

    feed_version: str | None  # None: a version-1 state, learned on a feed nobody wrote down
    model: dict[str, Any]  # TravelModel.to_json()
    segment_m: dict[str, float]  # length of each segment the model knows, on `feed_version`

    @classmethod
    def of(cls, model: TravelModel, feed_version: str, lengths: Mapping[str, float]) -> LearnedState:
        body = model.to_json()
        known = set(body["segment"]) | set(body["recent"]) | {_segment_of(k) for k in body["history"]}
        return cls(feed_version, body, {seg: lengths[seg] for seg in sorted(known) if seg in lengths})

    def to_bytes(self) -> bytes:
        body = {
            "version": STATE_VERSION,
            "feed_version": self.feed_version,
            "segment_m": self.segment_m,
            "model": self.model,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
        return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)  # mtime 0: same state, same bytes

    @classmethod
    def from_bytes(cls, blob: bytes) -> LearnedState:
        try:
            raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            body = json.loads(raw.decode("utf-8"))
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise LearnedStateError(f"not a learned state: {exc}") from exc
        if not isinstance(body, dict):
            raise LearnedStateError("not a learned state: not a JSON object")
        version = body.get("version")
        if version not in READABLE_VERSIONS:
            raise LearnedStateError(f"learned state version {version!r}; this smartbus reads {READABLE_VERSIONS}")
        model = body.get("model")
        if not isinstance(model, dict):
            raise LearnedStateError("learned state without a model")
        if version == 1:
            return cls(None, model, {})
        feed_version, lengths = body.get("feed_version"), body.get("segment_m")
        if not isinstance(feed_version, str) or not isinstance(lengths, dict):
            raise LearnedStateError("learned state without its feed version or segment lengths")
        return cls(feed_version, model, {str(k): float(v) for k, v in lengths.items()})

    def travel_model(self) -> TravelModel:
        try:
            return TravelModel.from_json(self.model)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise LearnedStateError(f"learned state with a malformed model: {exc!r}") from exc


@dataclass(frozen=True)
class Adopted:
    """A learned state made fit for a network, and what was left out on the way."""

    model: TravelModel
    learned_on: str | None  # the feed version it was learned on
    feed_version: str  # the one it is for now
    segments_kept: int = 0
    segments_dropped: int = 0  # gone from the new version, or no longer the same length
    dwells_dropped: int = 0

    @property
    def same_version(self) -> bool:
        return self.learned_on == self.feed_version

    def describe(self) -> str:
        if self.same_version:
            return f"learned on this feed version ({self.feed_version[:12]}): applied as it is"
        learned_on = self.learned_on[:12] if self.learned_on is not None else "an unrecorded feed version"
        return (
            f"learned on {learned_on}, carried over to feed version {self.feed_version[:12]}: "
            f"{self.segments_kept} segments kept, {self.segments_dropped} dropped (gone or changed length), "
            f"{self.dwells_dropped} stops' dwell dropped; the schedule bias is relearned"
        )


def _same_street(old_m: float | None, new_m: float | None) -> bool:
    if new_m is None:
        return False
    if old_m is None:  # a version-1 state: no length to compare
        return True
    return abs(new_m - old_m) <= max(SAME_LENGTH_M, SAME_LENGTH_SHARE * old_m)


def adopt(state: LearnedState, network: Network, lengths: Mapping[str, float]) -> Adopted:
    """`state` as a model for `network` (whose `segment_lengths` are `lengths`): as it is on the version it
    was learned on, carried over (see the module's notes) on another."""
    model = state.travel_model()
    if state.feed_version == network.feed_hash:
        return Adopted(model, state.feed_version, network.feed_hash)
    segments = set(model.segment) | set(model.recent) | {_segment_of(k) for k in model.history}
    kept = {
        seg for seg in segments
        if _same_street(state.segment_m.get(seg) if state.feed_version is not None else None, lengths.get(seg))
    }
    dwell = {stop: value for stop, value in model.dwell.items() if stop in network.stops}
    carried = TravelModel(
        history={k: v for k, v in model.history.items() if _segment_of(k) in kept},
        segment={k: v for k, v in model.segment.items() if k in kept},
        recent={k: v for k, v in model.recent.items() if k in kept},
        errors={k: v for k, v in model.errors.items() if k not in _SCHEDULE_ERROR_KEYS},
        prior_bias={},
        dwell=dwell,
        turnaround=model.turnaround,
        start_lag=model.start_lag,
        pace_xy=model.pace_xy,
        pace_xx=model.pace_xx,
    )
    return Adopted(
        carried, state.feed_version, network.feed_hash, len(kept), len(segments) - len(kept),
        len(model.dwell) - len(dwell),
    )
