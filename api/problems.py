"""Fleet problems an operator acts on: bunching, gaps, stale and off-route buses. Pure: states in, problems out.

Bunching and gaps compare consecutive buses of one route running the same shape, ordered by distance
along it. Without a timetable headway at hand, the time between two buses is estimated from the distance
between them at a typical urban bus speed; a gap is a headway well above the route's usual spacing now.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from eta.network import Network
from smartbus.messages import VehicleState

ProblemKind = Literal["bunching", "gap", "stale", "off_route"]
BUNCHING_M: Final = 250.0  # two buses of one route closer than this, both moving along it
TYPICAL_SPEED_M_S: Final = 5.5  # ~20 km/h, an urban bus including stops
GAP_FACTOR: Final = 2.0  # a spacing this many times the route's median is a gap
GAP_MIN_S: Final = 15 * 60.0  # and at least this long: riders notice
STALE_AFTER_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    route_id: str | None
    vehicle_ids: tuple[str, ...]
    detail: str
    latitude: float
    longitude: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fleet_problems(states: Iterable[VehicleState], network: Network, now: float) -> list[Problem]:
    problems: list[Problem] = []
    on_shape: dict[tuple[str, str], list[VehicleState]] = {}
    for state in states:
        age = now - state.timestamp
        if state.status == "stale" or age > STALE_AFTER_S:
            problems.append(
                Problem("stale", state.route_id, (state.vehicle_id,), f"no position for {age / 60:.0f} min",
                        state.latitude, state.longitude)
            )
            continue
        if state.status == "off_route":
            offset = f"{state.offset_m:.0f} m from its route" if state.offset_m is not None else "off its route"
            problems.append(
                Problem("off_route", state.route_id, (state.vehicle_id,), offset, state.latitude, state.longitude)
            )
            continue
        trip = network.trips.get(state.trip_id or "")
        if trip is not None and state.shape_dist is not None and state.status in ("in_transit", "at_stop"):
            on_shape.setdefault((trip.route_id, trip.shape_id), []).append(state)
    for (route_id, _), group in sorted(on_shape.items()):
        problems += _spacing_problems(route_id, group)
    return problems


def _spacing_problems(route_id: str, group: list[VehicleState]) -> list[Problem]:
    ordered = sorted(group, key=lambda s: (s.shape_dist or 0.0, s.vehicle_id))
    pairs = list(zip(ordered, ordered[1:], strict=False))
    spacings = [(ahead.shape_dist or 0.0) - (behind.shape_dist or 0.0) for behind, ahead in pairs]
    found: list[Problem] = []
    usual = statistics.median(spacings) if len(spacings) >= 2 else None
    for (behind, ahead), spacing in zip(pairs, spacings, strict=True):
        middle = ((behind.latitude + ahead.latitude) / 2, (behind.longitude + ahead.longitude) / 2)
        ids = (behind.vehicle_id, ahead.vehicle_id)
        if spacing < BUNCHING_M:
            found.append(Problem("bunching", route_id, ids, f"{spacing:.0f} m apart", *middle))
        elif usual is not None and spacing > GAP_FACTOR * usual and spacing / TYPICAL_SPEED_M_S >= GAP_MIN_S:
            minutes = spacing / TYPICAL_SPEED_M_S / 60
            found.append(Problem("gap", route_id, ids, f"about {minutes:.0f} min between buses", *middle))
    return found
