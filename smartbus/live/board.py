"""The pure rules of a stop's arrivals board, shared by every LiveStore implementation.

A board holds, per stop, one entry per (trip_id, service_date): the latest prediction of that trip's
arrival there. Times are UTC epoch seconds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from smartbus.messages import PredictionSet

# An arrival predicted more than this long ago is gone from the board (the bus has surely come).
PAST_GRACE_S: Final = 120.0
# An entry nobody has refreshed for this long is no longer believed (the vehicle went silent).
REFRESH_LIMIT_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Arrival:
    """One trip's predicted arrival at one stop, as a rider's board shows it."""

    stop_id: str
    trip_id: str
    service_date: str  # YYYYMMDD
    route_id: str | None
    vehicle_id: str
    stop_sequence: int
    scheduled_arrival: float | None  # UTC epoch seconds
    predicted_arrival: float  # UTC epoch seconds
    method: str  # smartbus.messages.PredictionMethod
    uncertainty_s: float  # one standard deviation, seconds
    updated_at: float  # UTC epoch seconds: made_at of the prediction set it came from

    @property
    def trip_key(self) -> str:
        return trip_key(self.trip_id, self.service_date)

    def to_dict(self) -> dict[str, Any]:
        # Shallow: every field is a scalar. dataclasses.asdict's recursive deep copy was 80% of the live
        # writer's time (it runs for every stop of every prediction set).
        return {name: getattr(self, name) for name in _ARRIVAL_FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Arrival:
        return cls(**json.loads(raw))


_ARRIVAL_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Arrival))


def trip_key(trip_id: str, service_date: str) -> str:
    """The board's key for one trip on one service day: unambiguous whatever the trip id contains (the date
    is always eight digits), and the same string the Redis store's scripts build."""
    return f"{service_date}:{trip_id}"


def arrivals_of(prediction_set: PredictionSet) -> list[Arrival]:
    return [
        Arrival(
            stop_id=p.stop_id,
            trip_id=p.trip_id,
            service_date=p.service_date,
            route_id=p.route_id,
            vehicle_id=prediction_set.vehicle_id,
            stop_sequence=p.stop_sequence,
            scheduled_arrival=p.scheduled_arrival,
            predicted_arrival=p.predicted_arrival,
            method=p.method,
            uncertainty_s=p.uncertainty_s,
            updated_at=prediction_set.made_at,
        )
        for p in prediction_set.stops
    ]


def is_expired(arrival: Arrival, now: float) -> bool:
    return arrival.predicted_arrival < now - PAST_GRACE_S or arrival.updated_at < now - REFRESH_LIMIT_S


def visible_board(entries: Iterable[Arrival], now: float) -> list[Arrival]:
    """What a rider sees at `now`: live entries, soonest first (ties broken by trip for stable output)."""
    live = [a for a in entries if not is_expired(a, now)]
    live.sort(key=lambda a: (a.predicted_arrival, a.trip_id, a.service_date))
    return live
