"""Analyst endpoints (role "analyst"): punctuality, delay distributions, headway regularity, a route's day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from api.database import Database
from api.export import TableFormat, table_response
from api.keys import ApiKey
from eta.network import Network
from smartbus.storage import analytics

MAX_RANGE_DAYS = 366


def date_range(
    first: Annotated[dt.date, Query(alias="from", description="first service day, YYYY-MM-DD")],
    last: Annotated[dt.date, Query(alias="to", description="last service day, inclusive")],
) -> tuple[dt.date, dt.date]:
    if last < first:
        raise HTTPException(400, "'to' is before 'from'")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise HTTPException(400, f"a range is at most {MAX_RANGE_DAYS} days")
    return first, last


Range = Annotated[tuple[dt.date, dt.date], Depends(date_range)]
Id = Annotated[str | None, Query(max_length=200)]
Format = Annotated[TableFormat, Query(description="json, csv or parquet")]


def analytics_router(
    database: Database | None, network: Network, analyst: Callable[..., Awaitable[ApiKey]]
) -> APIRouter:
    router = APIRouter(prefix="/api/analytics", tags=["analysts"], dependencies=[Depends(analyst)])
    zone = network.agency_timezone

    def db() -> Database:
        assert database is not None  # the role guard answered 503 already
        return database

    @router.get("/on-time")
    async def on_time(
        days: Range,
        by: analytics.GroupBy = "route",
        early_s: Annotated[float, Query(ge=0, le=3600, description="seconds early still on time")] = 60.0,
        late_s: Annotated[float, Query(ge=0, le=7200, description="seconds late still on time")] = 300.0,
        route_id: Id = None,
        stop_id: Id = None,
        format: Format = "json",
    ) -> Response:
        """Arrivals early, on time and late per route, stop, local hour or service day; counts are exact.

        The default window, and any other on whole 10 s (such as 120/600 or 90/420) unless asked by hour for
        one route, are counted from the rollups when there is no stop filter and `by` is not `stop`; the
        rest from the arrivals, more slowly. On plain PostgreSQL a rollup lags the arrivals by up to the
        api's refresh interval (5 minutes by default).
        """
        async with db().connection() as conn:
            rows = await analytics.on_time(
                conn, days[0], days[1], by, zone, early_s=early_s, late_s=late_s, route_id=route_id, stop_id=stop_id
            )
        meta = {"from": days[0], "to": days[1], "by": by, "early_s": early_s, "late_s": late_s, "timezone": zone}
        return table_response([r.as_row() for r in rows], format, f"on-time-by-{by}", **meta)

    @router.get("/delays")
    async def delays(
        days: Range,
        bin_s: Annotated[float, Query(ge=10, le=3600, description="bin width, seconds")] = 60.0,
        route_id: Id = None,
        stop_id: Id = None,
        format: Format = "json",
    ) -> Response:
        """Histogram of delays (arrival - scheduled, seconds, + = late) from -600 to 1,800 s; the end bins
        collect everything beyond. The counts are always exact.

        The JSON body also has `count` (arrivals with a schedule) and `percentiles_s` (p5, p25, p50, p75,
        p95 of all their delays), and `percentiles_within_s`: 0 when the percentiles are exact, else how far
        from the exact value they may be (less than that). Without a stop filter and with `bin_s` a multiple
        of 10, the answer comes from 10 s delay buckets and the percentiles are within 10 s; otherwise it
        is counted from the arrivals, exactly and more slowly.
        """
        async with db().connection() as conn:
            found = await analytics.delay_distribution(
                conn, days[0], days[1], zone, bin_s=bin_s, route_id=route_id, stop_id=stop_id
            )
        rows = [{"delay_from_s": edge, "delay_to_s": edge + bin_s, "arrivals": n} for edge, n in found.bins]
        meta = {
            "from": days[0], "to": days[1], "count": found.count, "percentiles_s": found.percentiles,
            "percentiles_within_s": found.percentiles_within_s,
        }
        return table_response(rows, format, "delays", **meta)

    @router.get("/headways")
    async def headways(
        days: Range,
        route_id: Id = None,
        max_scheduled_headway_s: Annotated[float, Query(ge=60, le=7200)] = 900.0,
        format: Format = "json",
    ) -> Response:
        """Scheduled and actual wait of a rider turning up at random, and excess wait time, per route, over
        the stop-days whose mean scheduled headway is at most `max_scheduled_headway_s`."""
        async with db().connection() as conn:
            rows = await analytics.headway_regularity(
                conn, days[0], days[1], zone, route_id=route_id, max_scheduled_headway_s=max_scheduled_headway_s
            )
        meta = {"from": days[0], "to": days[1], "max_scheduled_headway_s": max_scheduled_headway_s}
        return table_response([r.as_row() for r in rows], format, "headways", **meta)

    @router.get("/routes/{route_id}/day")
    async def route_day(route_id: str, date: dt.date, direction_id: int | None = None) -> dict[str, Any]:
        """A time-space (Marey) chart's data: each trip's scheduled and observed times by distance."""
        if route_id not in network.routes:
            raise HTTPException(404, "unknown route")
        async with db().connection() as conn:
            observed = await analytics.route_day(conn, route_id, date)
        return marey(network, route_id, date, direction_id, observed)

    return router


def marey(
    network: Network, route_id: str, day: dt.date, direction_id: int | None, observed: list[analytics.ObservedStop]
) -> dict[str, Any]:
    """Stops of the route's longest pattern as the distance axis; every trip that day, scheduled and actual."""
    feed_day, _ = network.service_day_for(day)
    trip_ids = [
        t for t in network.trips_on(feed_day)
        if network.trips[t].route_id == route_id
        and (direction_id is None or network.trips[t].direction_id in (direction_id, None))
    ]
    if direction_id is None and trip_ids:
        direction_id = network.trips[trip_ids[0]].direction_id
        trip_ids = [t for t in trip_ids if network.trips[t].direction_id == direction_id]
    if not trip_ids:
        return {"route_id": route_id, "date": day.isoformat(), "stops": [], "trips": []}
    axis_trip = network.trips[max(trip_ids, key=lambda t: (len(network.trips[t].stop_ids), t))]
    axis = {s: float(d) for s, d in zip(axis_trip.stop_ids, axis_trip.stop_dist.tolist(), strict=True)}
    origin = network.service_day_origin(day)
    actual_of: dict[str, list[list[float]]] = {}
    for row in observed:
        if row.stop_id in axis:
            actual_of.setdefault(row.trip_id, []).append([axis[row.stop_id], row.arrival])
    trips = []
    for trip_id in trip_ids:
        trip = network.trips[trip_id]
        scheduled = [
            [axis[s], origin + float(t)] for s, t in zip(trip.stop_ids, trip.arrival.tolist(), strict=True) if s in axis
        ]
        trips.append({"trip_id": trip_id, "scheduled": scheduled, "actual": actual_of.get(trip_id, [])})
    stops = [
        {"stop_id": s, "name": network.stops[s].name if s in network.stops else s, "distance_m": d}
        for s, d in axis.items()
    ]
    return {
        "route_id": route_id, "date": day.isoformat(), "direction_id": direction_id,
        "timezone": network.agency_timezone, "stops": stops, "trips": trips,
    }
