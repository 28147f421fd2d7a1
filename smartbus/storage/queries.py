"""Read queries the api needs: vehicle playback, a trip's stop events, punctuality history.

Each takes a connection and returns message types (epoch seconds, 'YYYYMMDD' service dates), so the
api never sees database types. Every query uses an index or the rollup; none scans a whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from smartbus.messages import StopEvent, VehicleState

_POSITIONS = """
SELECT vehicle_id, extract(epoch FROM ts)::float8, latitude, longitude, status, trip_id, route_id,
       to_char(service_date, 'YYYYMMDD'), shape_dist, offset_m, delay_s, speed, bearing, feed_version
  FROM positions
 WHERE vehicle_id = %s AND ts >= to_timestamp(%s) AND ts < to_timestamp(%s)
 ORDER BY ts
 LIMIT %s
"""

_TRIP_EVENTS = """
SELECT vehicle_id, trip_id, to_char(service_date, 'YYYYMMDD'), stop_id, stop_sequence,
       extract(epoch FROM arrival_time)::float8, extract(epoch FROM departure_time)::float8, interpolated,
       route_id, extract(epoch FROM scheduled_arrival)::float8, feed_version
  FROM stop_events
 WHERE trip_id = %s AND service_date = to_date(%s, 'YYYYMMDD')
 ORDER BY stop_sequence
"""

# Means and standard deviations are recombined from the rollup's sums, so any date range is exact.
# The route-hour rollup (migration 007) has just the grain asked for: a row per route and hour a day.
_PUNCTUALITY = """
SELECT route_id, hour_utc,
       sum(arrivals)::int8, sum(scheduled)::int8, sum(early)::int8, sum(on_time)::int8, sum(late)::int8,
       sum(delay_sum_s) / nullif(sum(scheduled), 0),
       sqrt(greatest(sum(delay_sq_sum_s) / nullif(sum(scheduled), 0)
                     - (sum(delay_sum_s) / nullif(sum(scheduled), 0)) ^ 2, 0))
  FROM punctuality_route_hourly
 WHERE service_date BETWEEN %(first)s AND %(last)s
   AND (%(route)s::text IS NULL OR route_id = %(route)s::text)
 GROUP BY route_id, hour_utc
 ORDER BY route_id NULLS LAST, hour_utc
"""


@dataclass(frozen=True, slots=True)
class Punctuality:
    """Arrivals of one route in one UTC hour of day over a date range. Delays in seconds, + = late."""

    route_id: str | None
    hour_utc: int
    arrivals: int  # every observed arrival
    scheduled: int  # those with a scheduled time: the base of the counts and delays below
    early: int  # more than 60 s early
    on_time: int  # from 60 s early to 300 s late
    late: int  # more than 300 s late
    mean_delay_s: float | None
    stddev_delay_s: float | None

    @property
    def on_time_ratio(self) -> float | None:
        return self.on_time / self.scheduled if self.scheduled else None


async def vehicle_positions(
    conn: psycopg.AsyncConnection, vehicle_id: str, start: float, end: float, *, limit: int = 50_000
) -> list[VehicleState]:
    """A vehicle's stored positions with start <= timestamp < end (epoch seconds), oldest first."""
    cur = await conn.execute(_POSITIONS, (vehicle_id, start, end, limit))
    return [
        VehicleState(
            vehicle_id=r[0], timestamp=r[1], latitude=r[2], longitude=r[3], status=r[4], trip_id=r[5],
            route_id=r[6], service_date=r[7], shape_dist=r[8], offset_m=r[9], delay_s=r[10], speed=r[11],
            bearing=r[12], feed_version=r[13],
        )
        for r in await cur.fetchall()
    ]


async def vehicle_day_positions(
    conn: psycopg.AsyncConnection, vehicle_id: str, day: date, timezone: str, *, limit: int = 50_000
) -> list[VehicleState]:
    """Playback: a vehicle's positions during one local calendar day in `timezone` (the agency's)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(), zone).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(), zone).timestamp()
    return await vehicle_positions(conn, vehicle_id, start, end, limit=limit)


async def trip_stop_events(conn: psycopg.AsyncConnection, trip_id: str, service_date: str) -> list[StopEvent]:
    """The arrivals (and departures) of one trip on one service day ('YYYYMMDD'), in stop order."""
    cur = await conn.execute(_TRIP_EVENTS, (trip_id, service_date))
    return [
        StopEvent(
            vehicle_id=r[0], trip_id=r[1], service_date=r[2], stop_id=r[3], stop_sequence=r[4],
            arrival_time=r[5], departure_time=r[6], interpolated=r[7], route_id=r[8],
            scheduled_arrival=r[9], feed_version=r[10],
        )
        for r in await cur.fetchall()
    ]


async def punctuality_by_route_hour(
    conn: psycopg.AsyncConnection, first_day: date, last_day: date, *, route_id: str | None = None
) -> list[Punctuality]:
    """Punctuality per (route, UTC hour) over service days first_day..last_day inclusive, from the rollup.

    On plain PostgreSQL the rollup is as fresh as the last `refresh_punctuality()`; on TimescaleDB
    real-time aggregation makes it current.
    """
    cur = await conn.execute(_PUNCTUALITY, {"first": first_day, "last": last_day, "route": route_id})
    return [
        Punctuality(
            route_id=r[0], hour_utc=r[1], arrivals=r[2], scheduled=r[3], early=r[4], on_time=r[5], late=r[6],
            mean_delay_s=r[7], stddev_delay_s=r[8],
        )
        for r in await cur.fetchall()
    ]


async def refresh_punctuality(conn: psycopg.AsyncConnection) -> None:
    """Bring the punctuality rollup up to date now (plain: refresh the view; TimescaleDB: materialize).

    Needs an autocommit connection on TimescaleDB (refresh_continuous_aggregate refuses transactions).
    """
    from smartbus.storage.migrate import PUNCTUALITY_ROLLUPS, Flavour, current_flavour

    if await current_flavour(conn) is Flavour.TIMESCALE:
        for rollup in PUNCTUALITY_ROLLUPS:
            await conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(sql.Literal(rollup))
            )
    else:
        await conn.execute("SELECT refresh_punctuality()")
        if not conn.autocommit:
            await conn.commit()
