"""Which trip a vehicle runs after the one it is on: the feed's block, or when the feed gives none, the
trips chained as a terminal dispatches them: each departure goes to the bus of the same route that has
waited longest at that terminal (first in, first out), once it has had its minimum layover; a bus idle
for longer than `MAX_LAYOVER_S` has gone back to the depot. Computed from the network alone, so
prediction does not depend on the tracker's internals."""

from __future__ import annotations

import datetime as dt
import heapq
import math
from typing import Final

from eta.network import Network

TERMINAL_RADIUS_M: Final = 300.0  # the stands of one terminal
MIN_LAYOVER_S: Final = 120.0  # the usual minimum recovery time at a terminal
MAX_LAYOVER_S: Final = 5400.0


def parse_service_date(service_date: str) -> dt.date:
    return dt.date(int(service_date[:4]), int(service_date[4:6]), int(service_date[6:8]))


class BlockChains:
    def __init__(self, network: Network) -> None:
        self._network = network
        self._next: dict[str, dict[str, str | None]] = {}  # service_date -> trip -> next trip
        self._previous: dict[str, dict[str, str]] = {}  # service_date -> trip -> the trip before it

    def next_trip(self, service_date: str, trip_id: str) -> str | None:
        return self._chain_of(service_date).get(trip_id)

    def previous_trip(self, service_date: str, trip_id: str) -> str | None:
        """The trip the same vehicle runs before this one; None for a first trip."""
        self._chain_of(service_date)
        return self._previous[service_date].get(trip_id)

    def _chain_of(self, service_date: str) -> dict[str, str | None]:
        chain = self._next.get(service_date)
        if chain is None:
            chain = self._chain(service_date)
            self._next[service_date] = chain
            self._previous[service_date] = {after: before for before, after in chain.items() if after is not None}
        return chain

    def _chain(self, service_date: str) -> dict[str, str | None]:
        network = self._network
        feed_day, _ = network.service_day_for(parse_service_date(service_date))
        trips = [network.trips[t] for t in network.trips_on(feed_day)]  # by scheduled start
        chain: dict[str, str | None] = {}
        by_block: dict[str, list[str]] = {}
        by_route: dict[str, list[str]] = {}
        for trip in trips:
            if trip.block_id:
                by_block.setdefault(trip.block_id, []).append(trip.trip_id)
            else:
                by_route.setdefault(trip.route_id, []).append(trip.trip_id)
        for ids in by_block.values():
            chain.update(zip(ids, ids[1:], strict=False))
        waiting: dict[tuple[str, int], list[tuple[float, str]]] = {}  # FIFO per route and terminal
        terminal = self._terminals([t for ids in by_route.values() for t in ids])
        for ids in by_route.values():
            for trip_id in ids:
                trip = network.trips[trip_id]
                queue = waiting.setdefault((trip.route_id, terminal[trip.stop_ids[0]]), [])
                while queue and queue[0][0] + MAX_LAYOVER_S < trip.start_time:
                    heapq.heappop(queue)
                if queue and queue[0][0] + MIN_LAYOVER_S <= trip.start_time:
                    _, before = heapq.heappop(queue)
                    chain[before] = trip_id
                heapq.heappush(
                    waiting.setdefault((trip.route_id, terminal[trip.stop_ids[-1]]), []),
                    (trip.end_time, trip_id),
                )
        return chain

    def _terminals(self, trips: list[str]) -> dict[str, int]:
        """First and last stops of these trips numbered by terminal: a stop within `TERMINAL_RADIUS_M` of
        an earlier terminal's first stop joins it (stands around one bus station)."""
        network = self._network
        stop_ids = sorted({s for t in trips for s in (network.trips[t].stop_ids[0], network.trips[t].stop_ids[-1])})
        centres: list[tuple[float, float]] = []
        found: dict[str, int] = {}
        for stop_id in stop_ids:
            stop = network.stops[stop_id]
            x, y = network.projection.point_xy(stop.lat, stop.lon)
            near = next((i for i, (cx, cy) in enumerate(centres) if math.hypot(x - cx, y - cy) <= TERMINAL_RADIUS_M),
                        None)
            if near is None:
                near = len(centres)
                centres.append((x, y))
            found[stop_id] = near
        return found
