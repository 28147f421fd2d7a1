"""Operator endpoints (role "operator"): alerts, cancelled trips, skipped stops, trip-assignment overrides,
and a vehicle's day played back. Everything written here is a notice with an end time: nothing lingers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from google.transit import gtfs_realtime_pb2 as rt
from pydantic import BaseModel, Field, field_validator

from api.database import Database
from api.keys import ApiKey
from api.views import Views
from eta.network import Network
from smartbus.live.notices import (
    Alert,
    AssignmentOverride,
    NoticeKind,
    NoticeStore,
    SkippedStops,
    TripCancellation,
    notice_key,
)
from smartbus.storage.queries import vehicle_day_positions

MAX_NOTICE_S = 7 * 86400.0
Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortId = Annotated[str, Field(min_length=1, max_length=200)]


class AlertIn(BaseModel):
    alert_id: ShortId
    header: dict[Annotated[str, Field(max_length=20)], Text] = Field(min_length=1, max_length=10)
    description: dict[Annotated[str, Field(max_length=20)], Text] = Field(default_factory=dict, max_length=10)
    cause: str = "UNKNOWN_CAUSE"
    effect: str = "UNKNOWN_EFFECT"
    route_ids: list[ShortId] = Field(default_factory=list, max_length=200)
    stop_ids: list[ShortId] = Field(default_factory=list, max_length=500)
    trip_ids: list[ShortId] = Field(default_factory=list, max_length=500)
    start: float | None = None
    end: float = Field(description="UTC epoch seconds when the alert ends (at most 7 days ahead)")

    @field_validator("cause")
    @classmethod
    def _cause(cls, value: str) -> str:
        if value not in rt.Alert.Cause.keys():
            raise ValueError(f"cause must be one of {', '.join(rt.Alert.Cause.keys())}")
        return value

    @field_validator("effect")
    @classmethod
    def _effect(cls, value: str) -> str:
        if value not in rt.Alert.Effect.keys():
            raise ValueError(f"effect must be one of {', '.join(rt.Alert.Effect.keys())}")
        return value


class TripNoticeIn(BaseModel):
    trip_id: ShortId
    service_date: Annotated[str, Field(pattern=r"^\d{8}$", description="YYYYMMDD")]
    reason: Annotated[str, Field(max_length=500)] = ""


class SkipIn(TripNoticeIn):
    stop_ids: list[ShortId] = Field(min_length=1, max_length=500)


class OverrideIn(BaseModel):
    trip_id: ShortId
    service_date: Annotated[str, Field(pattern=r"^\d{8}$", description="YYYYMMDD")]
    minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 180.0


def operator_router(
    notices: NoticeStore,
    database: Database | None,
    network: Network,
    operator: Callable[..., Awaitable[ApiKey]],
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    router = APIRouter(prefix="/api/operator", tags=["operators"], dependencies=[Depends(operator)])
    views = Views(network)

    def known_trip(trip_id: str) -> None:
        if trip_id not in network.trips:
            raise HTTPException(404, "unknown trip")

    def end_of_service(service_date: str) -> float:
        """A trip notice lasts until its service day is surely over (the next day's noon, agency time)."""
        day = dt.datetime.strptime(service_date, "%Y%m%d").date()  # noqa: DTZ007  # a calendar date
        return network.service_day_origin(day) + 36 * 3600.0

    async def listed(kind: NoticeKind) -> dict[str, Any]:
        return {"notices": await notices.all(kind, clock())}

    @router.get("/alerts")
    async def list_alerts() -> dict[str, Any]:
        return await listed("alert")

    @router.put("/alerts/{alert_id}")
    async def put_alert(alert_id: str, body: AlertIn) -> dict[str, Any]:
        now = clock()
        if body.alert_id != alert_id:
            raise HTTPException(400, "alert_id in the path and the body differ")
        if not now < body.end <= now + MAX_NOTICE_S:
            raise HTTPException(400, "end must be in the future, at most 7 days ahead")
        for route_id in body.route_ids:
            if route_id not in network.routes:
                raise HTTPException(404, f"unknown route {route_id!r}")
        for stop_id in body.stop_ids:
            if stop_id not in network.stops:
                raise HTTPException(404, f"unknown stop {stop_id!r}")
        for trip_id in body.trip_ids:
            known_trip(trip_id)
        alert = Alert(**{**body.model_dump(), "route_ids": tuple(body.route_ids), "stop_ids": tuple(body.stop_ids),
                         "trip_ids": tuple(body.trip_ids), "created_at": now})
        await notices.put("alert", alert_id, dataclasses.asdict(alert), body.end)
        return dataclasses.asdict(alert)

    @router.delete("/alerts/{alert_id}")
    async def delete_alert(alert_id: str) -> dict[str, Any]:
        if not await notices.delete("alert", alert_id):
            raise HTTPException(404, "no such alert")
        return {"deleted": alert_id}

    @router.get("/cancellations")
    async def list_cancellations() -> dict[str, Any]:
        return await listed("cancellation")

    @router.post("/cancellations", status_code=201)
    async def cancel_trip(body: TripNoticeIn) -> dict[str, Any]:
        known_trip(body.trip_id)
        cancellation = TripCancellation(body.trip_id, body.service_date, body.reason, clock())
        await notices.put("cancellation", notice_key("cancellation", cancellation),
                          dataclasses.asdict(cancellation), end_of_service(body.service_date))
        return dataclasses.asdict(cancellation)

    @router.delete("/cancellations/{trip_id}/{service_date}")
    async def reinstate_trip(trip_id: str, service_date: str) -> dict[str, Any]:
        key = notice_key("cancellation", TripCancellation(trip_id, service_date))
        if not await notices.delete("cancellation", key):
            raise HTTPException(404, "that trip is not cancelled")
        return {"reinstated": trip_id, "service_date": service_date}

    @router.post("/skips", status_code=201)
    async def skip_stops(body: SkipIn) -> dict[str, Any]:
        known_trip(body.trip_id)
        trip = network.trips[body.trip_id]
        strangers = [s for s in body.stop_ids if s not in trip.stop_ids]
        if strangers:
            raise HTTPException(400, f"the trip does not serve {', '.join(strangers[:5])}")
        skipped = SkippedStops(body.trip_id, body.service_date, tuple(body.stop_ids), body.reason, clock())
        await notices.put("skip", notice_key("skip", skipped), dataclasses.asdict(skipped),
                          end_of_service(body.service_date))
        return dataclasses.asdict(skipped)

    @router.get("/skips")
    async def list_skips() -> dict[str, Any]:
        return await listed("skip")

    @router.put("/vehicles/{vehicle_id}/assignment")
    async def override_assignment(vehicle_id: str, body: OverrideIn) -> dict[str, Any]:
        """The tracker takes this trip for the vehicle (read from the notice store, kind "override")."""
        known_trip(body.trip_id)
        override = AssignmentOverride(vehicle_id, body.trip_id, body.service_date, clock())
        await notices.put("override", vehicle_id, dataclasses.asdict(override), clock() + body.minutes * 60)
        return dataclasses.asdict(override)

    @router.delete("/vehicles/{vehicle_id}/assignment")
    async def clear_override(vehicle_id: str) -> dict[str, Any]:
        if not await notices.delete("override", vehicle_id):
            raise HTTPException(404, "that vehicle has no override")
        return {"cleared": vehicle_id}

    @router.get("/overrides")
    async def list_overrides() -> dict[str, Any]:
        return await listed("override")

    @router.get("/vehicles/{vehicle_id}/playback")
    async def playback(
        vehicle_id: str,
        date: dt.date,
        limit: Annotated[int, Query(ge=1, le=50_000)] = 50_000,
    ) -> dict[str, Any]:
        """The vehicle's positions during one local day (agency time zone), oldest first."""
        if database is None:
            raise HTTPException(503, "playback needs the database, and the api runs without one")
        async with database.connection() as conn:
            states = await vehicle_day_positions(conn, vehicle_id, date, network.agency_timezone, limit=limit)
        return {
            "vehicle_id": vehicle_id,
            "date": date.isoformat(),
            "timezone": network.agency_timezone,
            "positions": [views.vehicle(s) for s in states],
        }

    return router


