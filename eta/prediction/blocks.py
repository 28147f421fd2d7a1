"""Which trip a vehicle runs after the one it is on: the feed's block, or when the feed gives none, the
next departure of the same route from the stop where the trip ends (how the simulator and most agencies
chain trips). The same rule as the tracker's, computed here from the network alone so prediction stays
independent of the tracker's internals."""

from __future__ import annotations

import datetime as dt

from eta.network import Network

# A trip's end and the next one's start count as one terminal when this close (degrees, about 50 m).
SAME_TERMINAL_DEG = 0.0005


def parse_service_date(service_date: str) -> dt.date:
    return dt.date(int(service_date[:4]), int(service_date[4:6]), int(service_date[6:8]))


class BlockChains:
    def __init__(self, network: Network) -> None:
        self._network = network
        self._next: dict[str, dict[str, str | None]] = {}  # service_date -> trip -> next trip

    def next_trip(self, service_date: str, trip_id: str) -> str | None:
        chain = self._next.get(service_date)
        if chain is None:
            chain = self._chain(service_date)
            self._next[service_date] = chain
        return chain.get(trip_id)

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
        for ids in by_route.values():
            taken: set[str] = set()
            for position, trip_id in enumerate(ids):
                chain[trip_id] = self._follower(trip_id, ids[position + 1 :], taken)
        return chain

    def _follower(self, trip_id: str, later: list[str], taken: set[str]) -> str | None:
        network = self._network
        trip = network.trips[trip_id]
        end = network.stops[trip.stop_ids[-1]]
        for other_id in later:
            other = network.trips[other_id]
            if other_id in taken or other.start_time < trip.end_time:
                continue
            first = network.stops[other.stop_ids[0]]
            if other.stop_ids[0] == trip.stop_ids[-1] or (
                abs(first.lat - end.lat) <= SAME_TERMINAL_DEG and abs(first.lon - end.lon) <= SAME_TERMINAL_DEG
            ):
                taken.add(other_id)
                return other_id
        return None
