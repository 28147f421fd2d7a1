"""Which bus runs which trips: the feed's blocks, or blocks chained by us when the feed has none, and the
set of vehicles (possibly replicated with time offsets) that gives the requested fleet size at the peak."""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eta.network import Network

TERMINAL_RADIUS_M = 300.0  # stops this close count as the same terminal
MAX_LAYOVER_S = 5400.0  # a bus idle longer than this goes back to the depot: a new block
REPLICA_SPREAD_S = 900.0  # replicated vehicles run their block up to 15 min earlier or later


@dataclass(frozen=True)
class Duty:
    """One vehicle's day: trips in running order, shifted by `offset_s` (0 unless replicated)."""

    vehicle_id: str
    index: int  # the vehicle's number: seeds its random generators
    trip_ids: tuple[str, ...]
    offset_s: float


def chain_blocks(net: Network, trip_ids: list[str], min_layover_s: float = 120.0) -> list[tuple[str, ...]]:
    """Trips grouped into blocks, each in running order.

    Trips with a block_id keep the feed's blocks. Trips without one are chained: a trip goes to the bus
    that has waited longest at its first stop's terminal (same route, within TERMINAL_RADIUS_M), if that
    bus arrived at least `min_layover_s` before and at most MAX_LAYOVER_S before; otherwise a new bus.
    """
    trips = sorted(trip_ids, key=lambda t: (net.trips[t].start_time, t))
    by_block: dict[str, list[str]] = defaultdict(list)
    unblocked: list[str] = []
    for trip_id in trips:
        block = net.trips[trip_id].block_id
        (by_block[block] if block else unblocked).append(trip_id)
    chains: list[list[str]] = list(by_block.values())
    terminal = _terminal_clusters(net, unblocked)
    waiting: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)  # (route, terminal) -> heap
    for trip_id in unblocked:
        trip = net.trips[trip_id]
        pool = waiting[(trip.route_id, terminal[trip.stop_ids[0]])]
        while pool and pool[0][0] + MAX_LAYOVER_S < trip.start_time:
            heapq.heappop(pool)  # that bus went back to the depot
        if pool and pool[0][0] + min_layover_s <= trip.start_time:
            _, chain = heapq.heappop(pool)
            chains[chain].append(trip_id)
        else:
            chain = len(chains)
            chains.append([trip_id])
        heapq.heappush(waiting[(trip.route_id, terminal[trip.stop_ids[-1]])], (trip.end_time, chain))
    return [tuple(c) for c in chains]


def _terminal_clusters(net: Network, trip_ids: list[str]) -> dict[str, int]:
    """Each first or last stop of these trips mapped to a terminal number; nearby stops share one."""
    stop_ids = sorted({s for t in trip_ids for s in (net.trips[t].stop_ids[0], net.trips[t].stop_ids[-1])})
    if not stop_ids:
        return {}
    lat = np.array([net.stops[s].lat for s in stop_ids])
    lon = np.array([net.stops[s].lon for s in stop_ids])
    x, y = net.projection.to_xy(lat, lon)
    cluster: dict[str, int] = {}
    grid: dict[tuple[int, int], list[tuple[float, float, int]]] = defaultdict(list)  # cell -> centres
    count = 0
    for stop_id, sx, sy in zip(stop_ids, x.tolist(), y.tolist(), strict=True):
        cx, cy = int(sx // TERMINAL_RADIUS_M), int(sy // TERMINAL_RADIUS_M)
        near = [
            number for i in (-1, 0, 1) for j in (-1, 0, 1) for (px, py, number) in grid.get((cx + i, cy + j), ())
            if math.hypot(sx - px, sy - py) <= TERMINAL_RADIUS_M
        ]
        if near:
            cluster[stop_id] = min(near)
        else:
            cluster[stop_id] = count
            grid[(cx, cy)].append((sx, sy, count))
            count += 1
    return cluster


def select_duties(
    net: Network, blocks: list[tuple[str, ...]], vehicles: int | None, seed: int, pull_in_s: float = 300.0
) -> list[Duty]:
    """Vehicles for the day. `vehicles=None`: every block once. Otherwise blocks (and, when the feed has
    too few, time-shifted replicas of them) are added in a seeded random order, skipping any that would
    put more than `vehicles` buses in service at once, so the busiest moment has exactly that many
    when the feed allows it."""
    spans = [(net.trips[b[0]].start_time - pull_in_s, net.trips[b[-1]].end_time) for b in blocks]
    chosen: list[tuple[tuple[str, ...], float, float]] = []  # (block, offset, first departure)
    if vehicles is None:
        chosen = [(b, 0.0, s[0]) for b, s in zip(blocks, spans, strict=True)]
    elif blocks:
        rng = np.random.default_rng([seed, 0x5E1EC7])
        lo = min(s[0] for s in spans) - REPLICA_SPREAD_S
        hi = max(s[1] for s in spans) + REPLICA_SPREAD_S
        in_service = np.zeros(int((hi - lo) // 60) + 2, dtype=np.int64)  # per minute
        peak = _peak(spans, lo, len(in_service))
        replicas = max(1, math.ceil(vehicles / max(peak, 1))) + 1
        for replica in range(replicas):
            order = rng.permutation(len(blocks))
            offsets = rng.uniform(-REPLICA_SPREAD_S, REPLICA_SPREAD_S, len(blocks)) if replica else None
            for b in order.tolist():
                offset = float(offsets[b]) if offsets is not None else 0.0
                a = int((spans[b][0] + offset - lo) // 60)
                z = int((spans[b][1] + offset - lo) // 60) + 1
                if in_service[a:z].max() < vehicles:
                    in_service[a:z] += 1
                    chosen.append((blocks[b], offset, spans[b][0] + offset))
            if in_service.max() >= vehicles and replica > 0:
                break
    chosen.sort(key=lambda c: (c[2], c[0][0], c[1]))
    width = max(4, len(str(len(chosen))))
    return [
        Duty(f"bus-{i + 1:0{width}d}", i, block, offset) for i, (block, offset, _) in enumerate(chosen)
    ]


def _peak(spans: list[tuple[float, float]], lo: float, size: int) -> int:
    counts = np.zeros(size + 1, dtype=np.int64)
    for a, z in spans:
        counts[int((a - lo) // 60)] += 1
        counts[int((z - lo) // 60) + 1] -= 1
    return int(np.cumsum(counts).max()) if spans else 0
