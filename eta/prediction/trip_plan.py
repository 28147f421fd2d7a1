"""Per-trip facts the predictor needs on every ping, computed once per trip: segment keys, the schedule's
run times as priors, scheduled dwells, and the stops where an early bus waits for its time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from eta.network import Trip

# A timetable rounded to the minute gives 0 s between close stops; no bus covers a segment faster than this.
PRIOR_MAX_SPEED_MPS: Final = 12.0


@dataclass(frozen=True, slots=True)
class TripPlan:
    trip_id: str
    route_id: str
    stop_ids: tuple[str, ...]
    stop_sequences: tuple[int, ...]
    index_of: dict[int, int]  # stop_sequence -> index
    segments: tuple[str, ...]  # (k-1,) "from>to" stop ids
    prior_log: tuple[float, ...]  # (k-1,) log of the scheduled run seconds (floored by distance)
    scheduled_dwell: tuple[float, ...]  # (k,) seconds
    holds: tuple[bool, ...]  # (k,) an early bus waits here for its scheduled departure
    arrival: tuple[float, ...]  # (k,) scheduled, seconds since the service day's origin
    departure: tuple[float, ...]  # (k,)
    stop_dist: tuple[float, ...]  # (k,) metres along the shape


def _holding_stops(trip: Trip) -> tuple[bool, ...]:
    """The first stop always holds. Where the feed designates some timepoints, those hold (GTFS
    timepoint=1: exact times); where it gives every stop a time, stops with a scheduled dwell hold."""
    k = len(trip.stop_ids)
    if trip.timepoint.all():
        holds = [bool(trip.departure[i] > trip.arrival[i]) for i in range(k)]
    else:
        holds = [bool(x) for x in trip.timepoint]
    holds[0] = True
    if k > 1:
        holds[-1] = False
    return tuple(holds)


def plan_trip(trip: Trip) -> TripPlan:
    ids = trip.stop_ids
    k = len(ids)
    dist = [float(x) for x in trip.stop_dist]
    priors = []
    for i in range(k - 1):
        scheduled = float(trip.arrival[i + 1] - trip.departure[i])
        floor = (dist[i + 1] - dist[i]) / PRIOR_MAX_SPEED_MPS
        priors.append(math.log(max(scheduled, floor, 1.0)))
    return TripPlan(
        trip_id=trip.trip_id,
        route_id=trip.route_id,
        stop_ids=tuple(ids),
        stop_sequences=tuple(int(x) for x in trip.stop_sequences),
        index_of={int(seq): i for i, seq in enumerate(trip.stop_sequences)},
        segments=tuple(f"{ids[i]}>{ids[i + 1]}" for i in range(k - 1)),
        prior_log=tuple(priors),
        scheduled_dwell=tuple(float(trip.departure[i] - trip.arrival[i]) for i in range(k)),
        holds=_holding_stops(trip),
        arrival=tuple(float(x) for x in trip.arrival),
        departure=tuple(float(x) for x in trip.departure),
        stop_dist=tuple(dist),
    )
