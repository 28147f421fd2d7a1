"""What a learning predictor has learned, as bytes to keep across restarts (a database row, a replay's file).

The bytes are gzip of one JSON object: {"version": 2, "feed_version": the feed's hash, "model":
TravelModel.to_json(), "segment_m": metres of each segment the model knows, on that feed}. Floats are written
exactly, so a restarted worker estimates exactly as before. Version 1 (plain JSON, rounded, no feed version:
the replays' files before this module) is still read; anything else is refused with `LearnedStateError`.

`encode_pieces` writes the JSON a slice of `SLICE_ENTRIES` entries at a time, reading the model only as each
piece is asked for, so a worker can let its batches run between pieces: a city's model is some 10,000
entries, a big city's tens of times more, and one `json.dumps` of it all would hold the event loop (and,
in a thread, the GIL) for as long. `pack` gzips the text (zlib lets other threads run meanwhile).

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from eta.network import Network
from eta.prediction.estimate import Running
from eta.prediction.travel_model import TravelModel
from smartbus.errors import SmartbusError

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
SLICE_ENTRIES = 500  # entries encoded at a time: a few milliseconds
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


_V = TypeVar("_V")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _running(value: Running) -> list[float]:
    return value.to_list()


def _pair(value: tuple[float, float]) -> list[float]:
    return [value[0], value[1]]


def _table_pieces(table: dict[str, _V], row: Callable[[_V], list[float]], keys: set[str]) -> Iterator[str]:
    """A JSON object of `table`'s entries, `SLICE_ENTRIES` at a time; each key goes into `keys`. The keys are
    taken when the table's turn comes; each entry is read whole when its slice's turn comes."""
    items = list(table.items())
    yield "{"
    for start in range(0, len(items), SLICE_ENTRIES):
        chunk = {key: row(value) for key, value in items[start : start + SLICE_ENTRIES]}
        keys.update(chunk)
        yield ("," if start else "") + _dumps(chunk)[1:-1]
    yield "}"


def encode_pieces(model: TravelModel, feed_version: str, lengths: Mapping[str, float]) -> Iterator[str]:
    """The JSON text of what `model` has learned, in pieces made as they are asked for (see the module's notes).
    Between pieces the model may go on learning: the state is then the model's over those moments, each
    entry as it was at one of them (an exponential average a run older or newer: a state all the same)."""
    yield f'{{"version":{STATE_VERSION},"feed_version":{_dumps(feed_version)},"model":{{'
    segments: set[str] = set()
    history: set[str] = set()
    yield '"history":'
    yield from _table_pieces(model.history, _running, history)
    for name, table in (("segment", model.segment), ("errors", model.errors), ("prior_bias", model.prior_bias),
                        ("dwell", model.dwell)):
        yield f',"{name}":'
        yield from _table_pieces(table, _running, segments if name == "segment" else set())
    yield ',"recent":'
    yield from _table_pieces(model.recent, _pair, segments)
    scalars = {name: getattr(model, name).to_list() for name in ("turnaround", "start_lag", "pace_xy", "pace_xx")}
    yield "," + _dumps(scalars)[1:-1] + "}"
    segments.update(_segment_of(key) for key in history)
    yield ',"segment_m":' + _dumps({seg: lengths[seg] for seg in sorted(segments) if seg in lengths}) + "}\n"


def pack(pieces: Iterable[str]) -> bytes:
    """The bytes of a state: gzip of its JSON text (mtime 0: the same state gives the same bytes)."""
    return gzip.compress("".join(pieces).encode("utf-8"), compresslevel=6, mtime=0)


@dataclass(frozen=True)
class LearnedState:
    """A state as read back (`from_bytes`), or a model's, copied in memory (`of`: a feed version switch)."""

    feed_version: str | None  # None: a version-1 state, learned on a feed nobody wrote down
    model: dict[str, Any]  # TravelModel.to_json()
    segment_m: dict[str, float]  # length of each segment the model knows, on `feed_version`

    @classmethod
    def of(cls, model: TravelModel, feed_version: str, lengths: Mapping[str, float]) -> LearnedState:
        body = model.to_json()
        known = set(body["segment"]) | set(body["recent"]) | {_segment_of(k) for k in body["history"]}
        return cls(feed_version, body, {seg: lengths[seg] for seg in sorted(known) if seg in lengths})

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
