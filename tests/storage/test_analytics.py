"""Analyst queries: every grouping and filter answered from the rollups equals counting the arrivals themselves."""

from __future__ import annotations

import dataclasses
import functools
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


# Delays on and around the edges of 10 s buckets and of the windows asked for below: -120/600 s, 0/0 s, 30/180 s.
EDGES = [-600.0, -120.001, -120.0, -119.999, -30.0, -0.001, 0.0, 0.001, 9.999, 10.0, 179.999, 180.0, 180.001,
         599.999, 600.0, 600.001, 1799.999, 1800.0, 2500.5]
WINDOWS = [(120.0, 600.0), (0.0, 0.0), (30.0, 180.0), (3600.0, 7200.0)]
ROUTE_GROUPINGS: tuple[analytics.GroupBy, ...] = ("route", "hour", "day")


def edge_arrivals(day: str, at: float, route: str) -> list[StopEvent]:
    return [
        arrival(i, at + 0.25 + 97 * i, d, route=route, stop=f"stop-{i % 3}", trip=f"{route}-{day}", day=day)
        for i, d in enumerate(EDGES, 1)
    ]


def counts(rows: list[analytics.OnTime]) -> list[tuple[object, ...]]:
    """Everything but the mean delay, which a sum of per-bucket sums gives only to the last bits."""
    return [(r.key, r.arrivals, r.scheduled, r.early, r.on_time, r.late) for r in rows]


async def _windows(conn: psycopg.AsyncConnection, *, use_rollup: bool) -> list[list[analytics.OnTime]]:
    return [
        await analytics.on_time(
            conn, FIRST, LAST, by, ZONE, early_s=early, late_s=late, route_id=route, use_rollup=use_rollup
        )
        for (early, late), by, route in itertools.product(WINDOWS, ROUTE_GROUPINGS, (None, "route-1", "route-2"))
        if not (by == "hour" and route is not None)  # the hourly buckets have no route
    ]


async def test_windows_on_bucket_edges_from_the_delay_rollups_equal_the_arrivals_own_counts(
    conn: psycopg.AsyncConnection,
) -> None:
    await migrate(conn, force_plain=True)
    writer = StorageWriter(conn)
    await writer.write([], DAY_ONE + edge_arrivals("20140602", T0 + 3000, "route-1"), [])
    await refresh_punctuality(conn)
    await writer.write([], DAY_TWO + LATE_FOR_DAY_ONE + edge_arrivals("20140602", T0 + 9000, "route-2"), [])

    stale = await _windows(conn, use_rollup=True)
    await refresh_punctuality(conn)
    rollup = await _windows(conn, use_rollup=True)
    raw = await _windows(conn, use_rollup=False)

    assert [counts(rows) for rows in rollup] == [counts(rows) for rows in raw]
    assert [r.mean_delay_s for rows in rollup for r in rows] == pytest.approx(
        [r.mean_delay_s for rows in raw for r in rows]
    )
    assert [counts(rows) for rows in stale] != [counts(rows) for rows in raw], "late rows must change the answers"
    by_route = raw[0]  # -120/600 s
    assert counts(by_route) == [("route-1", 27, 26, 3, 19, 4), ("route-2", 23, 23, 2, 16, 5), (None, 1, 1, 0, 1, 0)]
    # Asked without saying: the rollup for windows on bucket edges, the arrivals for others and for stops.
    assert await analytics.on_time(conn, FIRST, LAST, "route", ZONE, early_s=120, late_s=600) == rollup[0]
    cases: list[tuple[analytics.GroupBy, float, float, str | None, str | None]] = [
        ("route", 125.0, 600.0, None, None), ("route", 120.0, 600.5, None, None),
        ("route", 120.0, 600.0, None, "stop-a"), ("stop", 120.0, 600.0, None, None),
        ("hour", 120.0, 600.0, "route-1", None),
    ]
    for by, early, late, route, stop in cases:
        ask = functools.partial(
            analytics.on_time, conn, FIRST, LAST, by, ZONE, early_s=early, late_s=late, route_id=route, stop_id=stop
        )
        found = await ask()
        assert found and found == await ask(use_rollup=False)
        with pytest.raises(ValueError, match="no rollup"):
            await ask(use_rollup=True)


async def test_delay_distributions_from_the_rollup_have_the_arrivals_bins_and_percentiles_within_a_bucket(
    conn: psycopg.AsyncConnection,
) -> None:
    await migrate(conn, force_plain=True)
    writer = StorageWriter(conn)
    await writer.write([], DAY_ONE + edge_arrivals("20140602", T0 + 3000, "route-1"), [])
    await refresh_punctuality(conn)
    await writer.write([], DAY_TWO + LATE_FOR_DAY_ONE + edge_arrivals("20140603", T0 + DAY, "route-2"), [])

    async def every(use_rollup: bool) -> list[analytics.DelayDistribution]:
        return [
            await analytics.delay_distribution(conn, FIRST, last, ZONE, bin_s=bin_s, route_id=route,
                                               use_rollup=use_rollup)
            for last, bin_s, route in itertools.product(
                (FIRST, LAST), (10.0, 60.0, 70.0, 300.0), (None, "route-1", "route-2")
            )
        ]

    stale = await every(True)
    await refresh_punctuality(conn)
    rollup, raw = await every(True), await every(False)

    assert [(d.bins, d.count) for d in rollup] == [(d.bins, d.count) for d in raw]
    assert [(d.bins, d.count) for d in stale] != [(d.bins, d.count) for d in raw]
    for estimated, exact in zip(rollup, raw, strict=True):
        assert (estimated.percentiles_within_s, exact.percentiles_within_s) == (10.0, 0.0)
        for name, value in exact.percentiles.items():
            assert value is not None and abs(estimated.percentiles[name] - value) < 10  # type: ignore[operator]
    whole = raw[-9]  # both days, 60 s bins, every route
    assert whole.count == 12 + 19 + 19 and whole.bins[0] == (-600.0, 2) and whole.bins[-1] == (1800.0, 4)
    # Asked without saying: the rollup when it serves, the arrivals with a stop or bins off the buckets.
    assert await analytics.delay_distribution(conn, FIRST, LAST, ZONE) == rollup[-9]
    for bin_s, stop in [(15.0, None), (60.0, "stop-1")]:
        found = await analytics.delay_distribution(conn, FIRST, LAST, ZONE, bin_s=bin_s, stop_id=stop)
        assert found.percentiles_within_s == 0.0
        assert found == await analytics.delay_distribution(
            conn, FIRST, LAST, ZONE, bin_s=bin_s, stop_id=stop, use_rollup=False
        )


def frequent(day: str, at: float, *, minutes: list[float], late_by: list[float], route: str = "F") -> list[StopEvent]:
    """Buses due every 10 min at stops x and y (y two minutes on), `late_by` seconds late, as trips t0, t1, ..."""
    return [
        arrival(seq, at + 600 * i + 120 * (seq - 1) + late + minute, late + minute, route=route, stop=stop,
                trip=f"{route}-{day}-t{i}", day=day)
        for i, (minute, late) in enumerate(zip(minutes, late_by, strict=True))
        for seq, stop in ((1, "x"), (2, "y"))
    ]


async def test_headways_from_the_rollup_equal_the_arrivals_own(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    writer = StorageWriter(conn)
    # Bunching on day one (buses overtaking each other), a regular route G, an unscheduled arrival, day two.
    await writer.write([], [
        *frequent("20140602", T0, minutes=[0] * 6, late_by=[0, 400, 410, 0, 900, 30]),
        *frequent("20140602", T0, minutes=[0] * 4, late_by=[5, 5, 5, 5], route="G"),
        arrival(3, T0 + 700, None, route="F", stop="x", trip="F-extra"),
    ], [])
    await refresh_punctuality(conn)
    await writer.write([], [
        *frequent("20140603", T0 + DAY, minutes=[0] * 5, late_by=[60, 0, 0, 300, 0]),
        arrival(1, T0 + 6 * 600 + 30, 30, route="F", stop="x", trip="F-20140602-t6"),  # late, into day one
    ], [])

    async def every(use_rollup: bool) -> list[list[analytics.Headways]]:
        return [
            await analytics.headway_regularity(conn, FIRST, last, ZONE, route_id=route,
                                               max_scheduled_headway_s=most, use_rollup=use_rollup)
            for last, route, most in itertools.product((FIRST, LAST), (None, "F"), (599.0, 600.0, 3600.0))
        ]

    stale = await every(True)
    await refresh_punctuality(conn)
    rollup, raw = await every(True), await every(False)

    def rows(found: list[list[analytics.Headways]]) -> list[tuple[object, ...]]:
        return [(h.route_id, h.headways) for hs in found for h in hs]

    def waits(found: list[list[analytics.Headways]]) -> list[float | None]:
        return [w for hs in found for h in hs for w in (h.mean_scheduled_headway_s, h.scheduled_wait_s,
                                                         h.actual_wait_s, h.excess_wait_s)]

    assert rows(rollup) == rows(raw) and waits(rollup) == pytest.approx(waits(raw))
    assert rows(stale) != rows(raw)
    both_days = raw[8]  # up to 3600 s, every route
    assert [(h.route_id, h.headways) for h in both_days] == [("F", 6 + 5 + 4 + 4), ("G", 3 + 3)]
    assert both_days[0].excess_wait_s is not None and both_days[0].excess_wait_s > 60  # bunched
    assert both_days[1].excess_wait_s == pytest.approx(0)  # regular, if late
    assert raw[0] == []  # day one: the 600 s headways are more than 599 s
