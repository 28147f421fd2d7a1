"""Analyst queries over observed arrivals: on-time performance, delay distributions, headway regularity, and
the trips of one route on one day (for a time-space chart).

Delay = actual arrival - scheduled arrival, seconds, positive = late. A day is a GTFS service day; an hour
of day is in the agency's time zone. Answers come from the punctuality rollups where one holds the grouping
and filters asked for, else from the arrivals themselves (exact, slower):
- on time, the default window (60 s early to 300 s late): the coarsest of 003/007's counts of that window;
- on time, any other window whose edges are whole delay buckets (10 s: 120/600, 90/420, ...) by route or
  day, or by hour for every route, without a stop: 009's delay buckets, exactly; other windows, a stop, by
  stop, or by hour for one route: the arrivals;
- a delay distribution without a stop, in bins on whole buckets: 009's buckets, the bins exactly and the
  percentiles to within a bucket (delay_buckets says how); with a stop or other bins: the arrivals, exactly;
- headway regularity: 009's headway sums per stop and day, the same answer.
Rollup hours are UTC hours shifted to local time, exact for zones whose offset is whole hours (both the
bundled feed's and Vietnam's).

Delays from the arrivals are `date_part('epoch', ...)`: double precision, the very value the rollups'
`extract(epoch ...)::float8` gives for any delay under a day, without numeric arithmetic (half the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from smartbus.storage.delay_buckets import BUCKET_S, Bucket, histogram, on_bucket_edges, percentiles

GroupBy = Literal["route", "stop", "hour", "day"]
DEFAULT_EARLY_S: Final = 60.0
DEFAULT_LATE_S: Final = 300.0

# The rollups (migrations 003 and 007) by grain. Each request reads the coarsest one holding its grouping
# and filters: on a month of a real network the finest has nearly a row per arrival, the others ~1/50.
_ROUTE_HOURLY: Final = "punctuality_route_hourly"  # (service_date, route_id, hour_utc)
_STOP_DAILY: Final = "punctuality_stop_daily"  # (service_date, route_id, stop_id)
_STOP_HOURLY: Final = "punctuality_hourly"  # (service_date, route_id, stop_id, hour_utc)
# Delay buckets (migration 009), for other windows and for distributions; neither has a stop.
_DELAYS_DAILY: Final = "punctuality_delays_route_daily"  # (service_date, route_id, delay_from_s)
_DELAYS_HOURLY: Final = "punctuality_delays_hourly"  # (service_date, hour_utc, delay_from_s): no route
PERCENTILES: Final = (0.05, 0.25, 0.5, 0.75, 0.95)

# What a group is made of, in rollup columns; the rollup is summed to that grain first, so the key below
# (the local hour's time zone arithmetic) is worked out once per group instead of once per rollup row.
_ROLLUP_GRAINS: Final[dict[GroupBy, str]] = {
    "route": "route_id",
    "stop": "stop_id",
    "day": "service_date",
    "hour": "service_date, hour_utc",
}
_ROLLUP_KEYS: Final[dict[GroupBy, str]] = {
    "route": "route_id",
    "stop": "stop_id",
    "day": "to_char(service_date, 'YYYY-MM-DD')",
    "hour": "extract(hour FROM (service_date + make_interval(hours => hour_utc))"
    " AT TIME ZONE 'UTC' AT TIME ZONE %(tz)s)::int",
}
_RAW_KEYS: Final[dict[GroupBy, str]] = {
    "route": "route_id",
    "stop": "stop_id",
    "day": "to_char(service_date, 'YYYY-MM-DD')",
    "hour": "extract(hour FROM arrival_time AT TIME ZONE %(tz)s)::int",
}

_ON_TIME_ROLLUP: Final = """
WITH g AS (
  SELECT {grain}, sum(arrivals) AS arrivals, sum(scheduled) AS scheduled, sum(early) AS early,
         sum(on_time) AS on_time, sum(late) AS late, sum(delay_sum_s) AS delay_sum_s
    FROM {rollup}
   WHERE {filters}
   GROUP BY {grain}
)
SELECT {key} AS key, sum(arrivals)::int8, sum(scheduled)::int8, sum(early)::int8, sum(on_time)::int8,
       sum(late)::int8, sum(delay_sum_s) / nullif(sum(scheduled), 0)
  FROM g
 GROUP BY 1 ORDER BY 1 NULLS LAST
"""

# Early: every bucket below -early_s. Late: every bucket from late_s up, less the delays of exactly late_s
# (on time). Both edges are bucket edges (delay_buckets.on_bucket_edges). NULL buckets: unscheduled arrivals.
_ON_TIME_BUCKETS: Final = """
WITH g AS (
  SELECT {grain}, sum(arrivals) AS arrivals,
         coalesce(sum(arrivals) FILTER (WHERE delay_from_s IS NOT NULL), 0) AS scheduled,
         coalesce(sum(arrivals) FILTER (WHERE delay_from_s < -%(early)s), 0) AS early,
         coalesce(sum(arrivals) FILTER (WHERE delay_from_s >= %(late)s), 0)
           - coalesce(sum(on_edge) FILTER (WHERE delay_from_s = %(late)s), 0) AS late,
         sum(delay_sum_s) AS delay_sum_s
    FROM {rollup}
   WHERE {filters}
   GROUP BY {grain}
)
SELECT {key} AS key, sum(arrivals)::int8, sum(scheduled)::int8, sum(early)::int8,
       (sum(scheduled) - sum(early) - sum(late))::int8, sum(late)::int8, sum(delay_sum_s) / nullif(sum(scheduled), 0)
  FROM g
 GROUP BY 1 ORDER BY 1 NULLS LAST
"""

_ON_TIME_RAW: Final = """
WITH e AS (
  SELECT {key} AS key, date_part('epoch', arrival_time - scheduled_arrival) AS delay
    FROM stop_events
   WHERE {filters}
)
SELECT key, count(*), count(delay), count(*) FILTER (WHERE delay < -%(early)s),
       count(*) FILTER (WHERE delay BETWEEN -%(early)s AND %(late)s), count(*) FILTER (WHERE delay > %(late)s),
       avg(delay)
  FROM e GROUP BY 1 ORDER BY 1 NULLS LAST
"""

_DELAYS: Final = """
WITH e AS (
  SELECT date_part('epoch', arrival_time - scheduled_arrival) AS delay
    FROM stop_events
   WHERE {filters} AND scheduled_arrival IS NOT NULL
)
SELECT floor(greatest(least(delay, %(hi)s), %(lo)s) / %(bin)s) * %(bin)s, count(*)
  FROM e GROUP BY 1 ORDER BY 1
"""

_DELAY_PERCENTILES: Final = """
SELECT count(*), percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY delay)
  FROM (SELECT date_part('epoch', arrival_time - scheduled_arrival) AS delay
          FROM stop_events WHERE {filters} AND scheduled_arrival IS NOT NULL) e
"""

_DELAY_BUCKETS: Final = f"""
SELECT delay_from_s, sum(arrivals)::int8, sum(on_edge)::int8
  FROM {_DELAYS_DAILY}
 WHERE {{filters}} AND delay_from_s IS NOT NULL
 GROUP BY 1 ORDER BY 1
"""

# Wait times from headways h: a rider arriving at random waits sum(h^2) / (2 sum(h)) on average. Excess
# wait time = actual - scheduled, over the same buses. Only stop-days whose mean scheduled headway is
# at most %(max_headway)s count: on infrequent routes riders time their arrival and EWT means little.
# From the rollup (migration 009): per stop and day, n + 1 arrivals, sum(h) = last - first, and sum(h^2).
_HEADWAYS_ROLLUP: Final = """
WITH p AS (
  SELECT route_id, arrivals - 1 AS n,
         date_part('epoch', last_arrival - first_arrival) AS sa, arrival_gaps_sq_sum_s AS sa2,
         date_part('epoch', last_scheduled - first_scheduled) AS sp, scheduled_gaps_sq_sum_s AS sp2
    FROM punctuality_headways_stop_daily
   WHERE {filters} AND arrivals > 1
)
SELECT route_id, sum(n)::int8, sum(sp) / nullif(sum(n), 0), sum(sp2) / nullif(2 * sum(sp), 0),
       sum(sa2) / nullif(2 * sum(sa), 0)
  FROM p
 WHERE sp / nullif(n, 0) <= %(max_headway)s
 GROUP BY route_id ORDER BY route_id NULLS LAST
"""

# The same from the arrivals (the reference the rollup is tested against): each stop-day's headways in
# order, sorting a month of arrivals twice (by arrival and by schedule) on every request.
_HEADWAYS_RAW: Final = """
WITH e AS (
  SELECT route_id, stop_id, service_date,
         date_part('epoch', arrival_time - lag(arrival_time) OVER (
             PARTITION BY route_id, stop_id, service_date ORDER BY arrival_time)) AS actual,
         date_part('epoch', scheduled_arrival - lag(scheduled_arrival) OVER (
             PARTITION BY route_id, stop_id, service_date ORDER BY scheduled_arrival)) AS planned
    FROM stop_events
   WHERE {filters} AND scheduled_arrival IS NOT NULL
), p AS (
  SELECT route_id, count(actual) AS n, sum(actual) AS sa, sum(actual ^ 2) AS sa2,
         sum(planned) AS sp, sum(planned ^ 2) AS sp2
    FROM e
   GROUP BY route_id, stop_id, service_date
  HAVING count(actual) > 0 AND sum(planned) / count(planned) <= %(max_headway)s
)
SELECT route_id, sum(n)::int8, sum(sp) / nullif(sum(n), 0), sum(sp2) / nullif(2 * sum(sp), 0),
       sum(sa2) / nullif(2 * sum(sa), 0)
  FROM p GROUP BY route_id ORDER BY route_id NULLS LAST
"""

_ROUTE_DAY: Final = """
SELECT trip_id, stop_sequence, stop_id, vehicle_id, extract(epoch FROM arrival_time)::float8,
       extract(epoch FROM departure_time)::float8, extract(epoch FROM scheduled_arrival)::float8
  FROM stop_events
 WHERE service_date = %(day)s AND route_id = %(route)s
 ORDER BY trip_id, stop_sequence
"""


@dataclass(frozen=True, slots=True)
class OnTime:
    """Arrivals in one group (a route, a stop, a local hour 0-23, or a day 'YYYY-MM-DD')."""

    key: str | int | None
    arrivals: int  # every observed arrival
    scheduled: int  # those with a scheduled time: the base of the counts below
    early: int
    on_time: int
    late: int
    mean_delay_s: float | None

    @property
    def on_time_ratio(self) -> float | None:
        return self.on_time / self.scheduled if self.scheduled else None

    def as_row(self) -> dict[str, Any]:
        return {
            "key": self.key, "arrivals": self.arrivals, "scheduled": self.scheduled, "early": self.early,
            "on_time": self.on_time, "late": self.late, "on_time_ratio": self.on_time_ratio,
            "mean_delay_s": self.mean_delay_s,
        }


@dataclass(frozen=True, slots=True)
class DelayDistribution:
    bin_s: float
    bins: list[tuple[float, int]]  # (lower edge in seconds, count); the end bins collect everything beyond
    count: int
    percentiles: dict[str, float | None]  # "p5", "p25", "p50", "p75", "p95"
    percentiles_within_s: float  # each percentile is less than this far from the exact one; 0: exact


@dataclass(frozen=True, slots=True)
class Headways:
    """Headway regularity of one route: wait times a rider turning up at random can expect (seconds)."""

    route_id: str | None
    headways: int
    mean_scheduled_headway_s: float | None
    scheduled_wait_s: float | None
    actual_wait_s: float | None

    @property
    def excess_wait_s(self) -> float | None:
        if self.scheduled_wait_s is None or self.actual_wait_s is None:
            return None
        return self.actual_wait_s - self.scheduled_wait_s

    def as_row(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id, "headways": self.headways,
            "mean_scheduled_headway_s": self.mean_scheduled_headway_s, "scheduled_wait_s": self.scheduled_wait_s,
            "actual_wait_s": self.actual_wait_s, "excess_wait_s": self.excess_wait_s,
        }


@dataclass(frozen=True, slots=True)
class ObservedStop:
    trip_id: str
    stop_sequence: int
    stop_id: str
    vehicle_id: str
    arrival: float  # UTC epoch seconds
    departure: float | None
    scheduled_arrival: float | None


def _params(
    first: date, last: date, timezone: str, route_id: str | None, stop_id: str | None, **extra: object
) -> dict[str, object]:
    return {"first": first, "last": last, "tz": timezone, "route": route_id, "stop": stop_id, **extra}


def _filters(route_id: str | None, stop_id: str | None) -> str:
    """The WHERE clause, with only the conditions asked for: a statement psycopg prepares then has a plan
    fit for its own filters (a generic `(%s IS NULL OR stop_id = %s)` plan could use no index)."""
    return " AND ".join([
        "service_date BETWEEN %(first)s AND %(last)s",
        *(["route_id = %(route)s::text"] if route_id is not None else []),
        *(["stop_id = %(stop)s::text"] if stop_id is not None else []),
    ])


def _rollup_for(by: GroupBy, stop_id: str | None) -> str:
    if stop_id is None and by != "stop":
        return _ROUTE_HOURLY
    return _STOP_HOURLY if by == "hour" else _STOP_DAILY


def _buckets_serve(by: GroupBy, route_id: str | None, stop_id: str | None, *edges: float) -> bool:
    """Whether the delay buckets hold this grouping and these filters, with edges on whole buckets."""
    held = stop_id is None and by != "stop" and not (by == "hour" and route_id is not None)
    return held and on_bucket_edges(*edges)


async def on_time(
    conn: psycopg.AsyncConnection,
    first: date,
    last: date,
    by: GroupBy,
    timezone: str,
    *,
    early_s: float = DEFAULT_EARLY_S,
    late_s: float = DEFAULT_LATE_S,
    route_id: str | None = None,
    stop_id: str | None = None,
    use_rollup: bool | None = None,
) -> list[OnTime]:
    """On-time performance over service days first..last, grouped `by`; on time = from early_s early to late_s late.

    `use_rollup` None: a rollup when one serves the request (see the module's docstring), else the arrivals;
    True: a rollup (ValueError when none can); False: the arrivals.
    """
    default_window = (early_s, late_s) == (DEFAULT_EARLY_S, DEFAULT_LATE_S)
    buckets = not default_window and _buckets_serve(by, route_id, stop_id, early_s, late_s)
    if use_rollup is None:
        use_rollup = default_window or buckets
    elif use_rollup and not (default_window or buckets):
        raise ValueError(f"no rollup counts a {early_s}/{late_s} s window by {by} (route {route_id}, stop {stop_id})")
    filters = _filters(route_id, stop_id)
    if use_rollup and default_window:
        text = _ON_TIME_ROLLUP.format(
            grain=_ROLLUP_GRAINS[by], rollup=_rollup_for(by, stop_id), key=_ROLLUP_KEYS[by], filters=filters
        )
    elif use_rollup:
        rollup = _DELAYS_HOURLY if by == "hour" else _DELAYS_DAILY
        text = _ON_TIME_BUCKETS.format(grain=_ROLLUP_GRAINS[by], rollup=rollup, key=_ROLLUP_KEYS[by], filters=filters)
    else:
        text = _ON_TIME_RAW.format(key=_RAW_KEYS[by], filters=filters)
    query = sql.SQL(text)  # built only from the constants above
    params = _params(first, last, timezone, route_id, stop_id, early=early_s, late=late_s)
    cur = await conn.execute(query, params)
    return [OnTime(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in await cur.fetchall()]


async def delay_distribution(
    conn: psycopg.AsyncConnection,
    first: date,
    last: date,
    timezone: str,
    *,
    bin_s: float = 60.0,
    low_s: float = -600.0,
    high_s: float = 1800.0,
    route_id: str | None = None,
    stop_id: str | None = None,
    use_rollup: bool | None = None,
) -> DelayDistribution:
    """Histogram of delays in `bin_s` bins from low_s to high_s (delays beyond fall in the end bins).

    `use_rollup` None: the delay buckets when they serve (no stop, bins on whole buckets), else the arrivals;
    True: the buckets (ValueError when they cannot); False: the arrivals. From the buckets the bins are exact
    and the percentiles within a bucket's width (`percentiles_within_s`); from the arrivals both are exact.
    """
    names = [f"p{round(f * 100)}" for f in PERCENTILES]
    params = _params(
        first, last, timezone, route_id, stop_id, bin=bin_s, lo=low_s, hi=high_s, fractions=list(PERCENTILES)
    )
    filters = _filters(route_id, stop_id)
    served = _buckets_serve("route", route_id, stop_id, bin_s, low_s, high_s)
    if use_rollup is None:
        use_rollup = served
    elif use_rollup and not served:
        raise ValueError(f"no rollup holds {bin_s} s bins from {low_s} to {high_s} s (stop {stop_id})")
    if use_rollup:
        cur = await conn.execute(sql.SQL(_DELAY_BUCKETS.format(filters=filters)), params)
        buckets = [Bucket(r[0], r[1], r[2]) for r in await cur.fetchall()]
        estimated = percentiles(buckets, PERCENTILES)
        return DelayDistribution(
            bin_s, histogram(buckets, bin_s, low_s, high_s), sum(b.count for b in buckets),
            dict(zip(names, estimated, strict=True)), float(BUCKET_S),
        )
    cur = await conn.execute(sql.SQL(_DELAYS.format(filters=filters)), params)
    bins = [(float(r[0]), int(r[1])) for r in await cur.fetchall()]
    cur = await conn.execute(sql.SQL(_DELAY_PERCENTILES.format(filters=filters)), params)
    row = await cur.fetchone()
    count, values = (row[0], row[1]) if row is not None else (0, None)
    exact = dict(zip(names, values or [None] * len(names), strict=True))
    return DelayDistribution(bin_s, bins, int(count), exact, 0.0)


async def headway_regularity(
    conn: psycopg.AsyncConnection,
    first: date,
    last: date,
    timezone: str,
    *,
    route_id: str | None = None,
    max_scheduled_headway_s: float = 900.0,
    use_rollup: bool = True,
) -> list[Headways]:
    """Scheduled vs actual wait and excess wait time per route, on frequent service only.

    From the headway rollup, or with `use_rollup` False from the arrivals (the same answer, slowly).
    """
    params = _params(first, last, timezone, route_id, None, max_headway=max_scheduled_headway_s)
    text = (_HEADWAYS_ROLLUP if use_rollup else _HEADWAYS_RAW).format(filters=_filters(route_id, None))
    cur = await conn.execute(sql.SQL(text), params)
    return [Headways(r[0], r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]


async def route_day(conn: psycopg.AsyncConnection, route_id: str, day: date) -> list[ObservedStop]:
    """Every observed arrival of the route's trips on one service day, by trip then stop order."""
    cur = await conn.execute(_ROUTE_DAY, {"day": day, "route": route_id})
    return [ObservedStop(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in await cur.fetchall()]
