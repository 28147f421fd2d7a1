"""Analyst queries: every grouping and filter answered from the rollups equals counting the arrivals themselves."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

import psycopg
import pytest

from smartbus.messages import StopEvent
from smartbus.storage import analytics
from smartbus.storage.migrate import Flavour, migrate
from smartbus.storage.queries import punctuality_by_route_hour, refresh_punctuality
from smartbus.storage.writer import StorageWriter
from tests.storage.factories import T0, event

ZONE = "Australia/Brisbane"  # UTC+10: 14:00 UTC is midnight
FIRST, LAST = date(2014, 6, 2), date(2014, 6, 3)
DAY = 86400.0
BYS: tuple[analytics.GroupBy, ...] = ("route", "stop", "hour", "day")


def arrival(
    sequence: int, at: float, delay: float | None, *, route: str | None = "route-1", stop: str = "stop-a",
    trip: str = "trip-1", day: str = "20140602",
) -> StopEvent:
    scheduled = None if delay is None else at - delay
    return dataclasses.replace(
        event(sequence, at, trip=trip, scheduled=scheduled, route=route, stop=stop), service_date=day
    )


# Two routes share stop-a; the arrivals straddle local midnight and the window's edges (-60 s and +300 s
# are on time, -61 s and +301 s are not); one arrival has no schedule, one no route.
DAY_ONE = [
    arrival(1, T0, -61),
    arrival(2, T0 + 600, -60, stop="stop-b"),
    arrival(3, T0 + 6 * 3600 - 30, 300),  # 23:59:30 local
    arrival(4, T0 + 6 * 3600 + 30, 301, stop="stop-b"),  # 00:00:30 local, same service day
    arrival(5, T0 + 6 * 3600 + 90, None, stop="stop-c"),
    arrival(1, T0 + 120, 0, route="route-2", trip="trip-2"),
    arrival(2, T0 + 3600, 900, route="route-2", trip="trip-2", stop="stop-c"),
    arrival(1, T0 + 300, 12, route=None, trip="trip-3", stop="stop-b"),
]
DAY_TWO = [
    arrival(1, T0 + DAY, 45, day="20140603"),
    arrival(2, T0 + DAY + 700, -200, stop="stop-b", day="20140603"),
    arrival(1, T0 + DAY + 60, 301, route="route-2", trip="trip-2", day="20140603"),
]
LATE_FOR_DAY_ONE = [
    arrival(6, T0 + 7200, 30, stop="stop-b"),
    arrival(3, T0 + 4000, -90, route="route-2", trip="trip-2"),
]


async def _every_answer(conn: psycopg.AsyncConnection, *, use_rollup: bool) -> list[list[analytics.OnTime]]:
    return [
        await analytics.on_time(conn, FIRST, LAST, by, ZONE, route_id=route, stop_id=stop, use_rollup=use_rollup)
        for by, route, stop in itertools.product(BYS, (None, "route-1", "route-2"), (None, "stop-a", "stop-b"))
    ]


async def test_every_grouping_and_filter_from_the_rollups_equals_the_arrivals_own_counts(
    conn: psycopg.AsyncConnection,
) -> None:
    assert await migrate(conn, force_plain=True) is Flavour.PLAIN
    writer = StorageWriter(conn)
    await writer.write([], DAY_ONE, [])
    await refresh_punctuality(conn)
    await writer.write([], DAY_TWO + LATE_FOR_DAY_ONE, [])  # a new day, and late rows into a day rolled up

    stale = await _every_answer(conn, use_rollup=True)
    await refresh_punctuality(conn)
    rollup = await _every_answer(conn, use_rollup=True)
    raw = await _every_answer(conn, use_rollup=False)

    assert rollup == raw
    assert stale != raw, "the second batch must change the answers, or a rollup left out of the refresh goes unseen"
    assert sum(1 for rows in raw if rows) == 32  # all 36 but the 4 of route-2 at stop-b, which it never serves
    by_route = raw[0]
    assert [(r.key, r.arrivals, r.scheduled, r.early, r.on_time, r.late) for r in by_route] == [
        ("route-1", 8, 7, 2, 4, 1),
        ("route-2", 4, 4, 1, 1, 2),
        (None, 1, 1, 0, 1, 0),
    ]
    by_hour = await analytics.on_time(conn, FIRST, LAST, "hour", ZONE, route_id="route-1")
    assert [(r.key, r.arrivals) for r in by_hour] == [(0, 2), (18, 4), (20, 1), (23, 1)]


async def test_punctuality_by_route_hour_sums_over_days(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    await StorageWriter(conn).write([], DAY_ONE + DAY_TWO, [])
    await refresh_punctuality(conn)

    rows = await punctuality_by_route_hour(conn, FIRST, LAST, route_id="route-2")

    assert [(r.route_id, r.hour_utc, r.arrivals, r.on_time, r.late) for r in rows] == [
        ("route-2", 8, 2, 1, 1), ("route-2", 9, 1, 0, 1),
    ]
    assert rows[0].mean_delay_s == (0 + 301) / 2
    assert rows[0].stddev_delay_s == 150.5


async def test_delays_to_the_millisecond_at_the_windows_edges_count_alike_both_ways(
    conn: psycopg.AsyncConnection,
) -> None:
    """The rollups take delays as extract(epoch ...) and the arrivals' own counts as date_part: the same value."""
    await migrate(conn, force_plain=True)
    delays = [-60.001, -60.0, -59.999, 299.999, 300.0, 300.001, 12.345]
    await StorageWriter(conn).write(
        [], [arrival(i, T0 + 0.25 + i, d, stop=f"stop-{i}") for i, d in enumerate(delays, 1)], []
    )
    await refresh_punctuality(conn)

    rollup = await analytics.on_time(conn, FIRST, FIRST, "stop", ZONE, use_rollup=True)
    raw = await analytics.on_time(conn, FIRST, FIRST, "stop", ZONE, use_rollup=False)

    assert rollup == raw
    assert [(r.early, r.on_time, r.late) for r in raw] == [
        (1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0),
    ]
    assert [r.mean_delay_s for r in raw] == pytest.approx(delays)
