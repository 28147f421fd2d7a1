"""The static network, for anyone: agencies, one route and its stops, a day's trips, one trip's stop times, shapes.

Names come in the client's languages (api.parameters.Languages). Dates are service days in the agency's time zone;
outside the feed's calendar they map onto a feed day as everywhere else (Network.service_day_for), and the answer
says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from api.parameters import MAX_ID_CHARS, Languages
from api.views import Views
from eta.network import Network

Id = Annotated[str, Path(max_length=MAX_ID_CHARS)]
ServiceDay = Annotated[
    dt.date | None, Query(description="service day, YYYY-MM-DD, in the agency's time zone (default: today)")
]


def network_router(network: Network, views: Views, clock: Callable[[], float]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["network"])
    zone = ZoneInfo(network.agency_timezone)

    def day_or_today(day: dt.date | None) -> dt.date:
        return day if day is not None else dt.datetime.fromtimestamp(clock(), zone).date()

    def service_day(day: dt.date) -> dict[str, Any]:
        feed_day, mapped = network.service_day_for(day)
        return {"date": day.isoformat(), "feed_day": feed_day.isoformat(), "mapped": mapped}

    @router.get("/agencies")
    async def agencies(languages: Languages) -> dict[str, Any]:
        ordered = sorted(network.agencies.values(), key=lambda a: a.agency_id)
        return {"agencies": [views.agency(a, languages) for a in ordered]}

    @router.get("/routes/{route_id}")
    async def route(route_id: Id, languages: Languages) -> dict[str, Any]:
        """The route, and per direction the stops most of its trips call at, in order."""
        found = network.routes.get(route_id)
        if found is None:
            raise HTTPException(404, "unknown route")
        return {**views.route(found, languages), "directions": views.route_patterns(route_id, languages)}

    @router.get("/routes/{route_id}/trips")
    async def route_trips(route_id: Id, languages: Languages, date: ServiceDay = None) -> dict[str, Any]:
        """The route's trips that run on a service day, by scheduled start."""
        if route_id not in network.routes:
            raise HTTPException(404, "unknown route")
        day = day_or_today(date)
        feed_day, _ = network.service_day_for(day)
        origin = network.service_day_origin(day)
        trips = []
        for trip_id in network.trips_on(feed_day):
            trip = network.trips[trip_id]
            if trip.route_id == route_id:
                trips.append(
                    {
                        **views.trip(trip, languages),
                        "scheduled_start": origin + float(trip.departure[0]),
                        "scheduled_end": origin + float(trip.arrival[-1]),
                    }
                )
        return {"route_id": route_id, **service_day(day), "trips": trips}

    @router.get("/trips/{trip_id}")
    async def trip(trip_id: Id, languages: Languages, date: ServiceDay = None) -> dict[str, Any]:
        """The trip and its stop times; with `date`, their UTC epoch times on that day and whether it runs then."""
        found = network.trips.get(trip_id)
        if found is None:
            raise HTTPException(404, "unknown trip")
        body = views.trip(found, languages)
        if date is None:
            return {**body, "stop_times": views.stop_times(found, languages)}
        feed_day, _ = network.service_day_for(date)
        return {
            **body,
            **service_day(date),
            "runs": trip_id in set(network.trips_on(feed_day)),
            "stop_times": views.stop_times(found, languages, network.service_day_origin(date)),
        }

    @router.get("/shapes/{shape_id}")
    async def shape(shape_id: Id) -> Response:
        """The shape as a GeoJSON LineString at the feed's full resolution, with its length in metres."""
        found = network.shapes.get(shape_id)
        if found is None:
            raise HTTPException(404, "unknown shape")
        body = json.dumps(views.shape_geojson(found), separators=(",", ":"))
        return Response(body, media_type="application/geo+json")

    return router
