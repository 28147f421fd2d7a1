from __future__ import annotations

from datetime import date

import psycopg
import pytest

from smartbus.storage.migrate import Flavour, migrate
from smartbus.storage.queries import (
    Punctuality,
    punctuality_by_route_hour,
    refresh_punctuality,
    vehicle_day_positions,
)
from smartbus.storage.writer import StorageWriter
from tests.storage.factories import T0, event, state

HOUR = 3600.0


async def _write_punctuality_sample(conn: psycopg.AsyncConnection) -> None:
    """Route 1 at 08 UTC: early (-120 s), on time (0, +300), late (+301); at 09 UTC: one on time
    and one without a schedule. Route 2 at 08 UTC: late (+600)."""
    events = [
        event(1, T0 + 60, scheduled=T0 + 180),
        event(2, T0 + 60, scheduled=T0 + 60),
        event(3, T0 + 900, scheduled=T0 + 600),
        event(4, T0 + 1501, scheduled=T0 + 1200),
        event(5, T0 + HOUR + 30, scheduled=T0 + HOUR),
        event(6, T0 + HOUR + 60, scheduled=None),
        event(1, T0 + 1200, scheduled=T0 + 600, trip="trip-9", route="route-2"),
    ]
    await StorageWriter(conn).write([], events, [])


async def test_punctuality_counts_early_on_time_and_late_by_route_and_hour(
    conn: psycopg.AsyncConnection,
) -> None:
    await migrate(conn, force_plain=True)
    await _write_punctuality_sample(conn)
    await refresh_punctuality(conn)

    rows = await punctuality_by_route_hour(conn, date(2014, 6, 1), date(2014, 6, 30))

    assert [(r.route_id, r.hour_utc, r.arrivals, r.scheduled, r.early, r.on_time, r.late) for r in rows] == [
        ("route-1", 8, 4, 4, 1, 2, 1),
        ("route-1", 9, 2, 1, 0, 1, 0),
        ("route-2", 8, 1, 1, 0, 0, 1),
    ]
    first = rows[0]
    assert first.mean_delay_s == pytest.approx((-120 + 0 + 300 + 301) / 4)
    assert first.stddev_delay_s == pytest.approx(_population_stddev([-120, 0, 300, 301]))
    assert rows[1].on_time_ratio == 1.0


async def test_punctuality_filters_by_route_and_date_range(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    await _write_punctuality_sample(conn)
    await refresh_punctuality(conn)

    only_route_2 = await punctuality_by_route_hour(conn, date(2014, 6, 2), date(2014, 6, 2), route_id="route-2")
    another_month = await punctuality_by_route_hour(conn, date(2014, 7, 1), date(2014, 7, 31))

    assert [(r.route_id, r.late) for r in only_route_2] == [("route-2", 1)]
    assert another_month == []


async def test_the_plain_rollup_shows_new_arrivals_after_a_refresh(conn: psycopg.AsyncConnection) -> None:
    assert await migrate(conn, force_plain=True) is Flavour.PLAIN
    await refresh_punctuality(conn)
    await _write_punctuality_sample(conn)

    before = await punctuality_by_route_hour(conn, date(2014, 6, 2), date(2014, 6, 2))
    await refresh_punctuality(conn)
    after = await punctuality_by_route_hour(conn, date(2014, 6, 2), date(2014, 6, 2))

    assert before == []
    assert sum(r.arrivals for r in after) == 7


async def test_day_playback_uses_the_agencys_local_day(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    # T0 is 18:00 in Brisbane (UTC+10); 6 h later is already the next local day.
    await StorageWriter(conn).write([state("bus-1", T0), state("bus-1", T0 + 6 * HOUR), state("bus-2", T0)], [], [])

    local_day = await vehicle_day_positions(conn, "bus-1", date(2014, 6, 2), "Australia/Brisbane")
    utc_day = await vehicle_day_positions(conn, "bus-1", date(2014, 6, 2), "UTC")

    assert [s.timestamp for s in local_day] == [T0]
    assert [s.timestamp for s in utc_day] == [T0, T0 + 6 * HOUR]


def _population_stddev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return float((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)


def test_on_time_ratio_is_none_without_scheduled_arrivals() -> None:
    row = Punctuality("r", 8, arrivals=3, scheduled=0, early=0, on_time=0, late=0, mean_delay_s=None,
                      stddev_delay_s=None)
    assert row.on_time_ratio is None
