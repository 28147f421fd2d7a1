"""The FastAPI app: REST, websockets and pages over a LiveStore and a compiled network.

It holds no state of its own beyond the shared live subscription, so any number of api processes can
serve behind a load balancer, all fed from the same store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, HTTPException, Query, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from api import gtfs_rt
from api.access import RateLimitMiddleware, role_guard
from api.analytics_routes import analytics_router
from api.clients import CLOSE_TOO_SLOW, Client, FleetClient, SlowClient, StopClient
from api.database import Database
from api.errors import install_error_handlers
from api.frames import ServerSendMiddleware, frame_writer
from api.hub import Hub
from api.keys import KeyChecker
from api.languages import Preference
from api.network_routes import network_router
from api.operator_routes import operator_router
from api.parameters import MAX_BBOX_CHARS, MAX_ID_CHARS, MAX_LANG_CHARS, Languages, languages_for, parse_bbox
from api.problems import fleet_problems
from api.ratelimit import RateLimiter
from api.search import StopIndex, StopLocator
from api.stop_boards import StopBoards
from api.timetable import StopTimetable
from api.views import Views
from eta.network import Network
from smartbus.live import Arrival, LiveStore
from smartbus.live.board import trip_key
from smartbus.live.notices import (
    MemoryNoticeStore,
    NoticeStore,
    TripCancellation,
    alert_from_dict,
    skipped_from_dict,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)
CLOSE_NOT_FOUND = 4404
CLOSE_FULL = 1013  # "try again later": this process has as many websockets as it may hold
CLOSE_BAD_LANGUAGE = 4422  # a ?lang= that is not a language tag (a 422 over HTTP)
CLOSE_BAD_REQUEST = 4400  # a query parameter that makes no sense (a 400 over HTTP)
MAX_RADIUS_M = 5_000.0  # stops "near" a point: a long walk at most
_HELD_TRIPS_S = 5.0  # how old a reading of the trips vehicles run a board may use


def create_app(
    live: LiveStore,
    network: Network,
    *,
    tile_url: str | None = None,
    tile_attribution: str = "",
    clock: Callable[[], float] = time.time,
    min_interval_s: float = 1.0,
    send_timeout_s: float = 10.0,
    notices: NoticeStore | None = None,
    database: Database | None = None,
    rate_per_s: float = 20.0,
    rate_burst: float = 100.0,
    expiry_sweep_s: float = 15.0,
    max_websockets: int = 20_000,
    rollup_refresh_s: float | None = 300.0,
    timetable: bool = True,
) -> FastAPI:
    """`clock` gives "now" in UTC epoch seconds for boards and server_time (a replay may pass its own).

    `notices` holds operators' alerts, cancellations, skipped stops and overrides (default: in memory,
    for one process; pass a RedisNoticeStore when several api processes serve together). `database` serves the
    analyst and operator endpoints; without it they answer 503 and everything riders use still works.
    Each client address may make `rate_per_s` requests a second, in bursts of up to `rate_burst`.
    At most `max_websockets` live sockets are served; more are closed at once with 1013 (try again later).
    With a database, the punctuality rollup is refreshed every `rollup_refresh_s` (plain PostgreSQL needs it;
    one api process at a time does it, under an advisory lock).
    With `timetable`, a stop's board also shows, by the timetable (marked "schedule", not live), the trips due
    within the hour that no vehicle tells riders about: none runs them yet, none has reached the stop.
    """
    notice_store: NoticeStore = notices if notices is not None else MemoryNoticeStore()
    views = Views(network)

    stop_timetable = StopTimetable(network) if timetable else None
    held: list[tuple[float, set[str]]] = []  # (read at, board keys of the trips vehicles run): one reading

    async def trips_run_by_vehicles(now: float) -> set[str]:
        """Board keys of the trips live vehicles are on, read at most every `_HELD_TRIPS_S` (every vehicle's
        state is one read of the whole fleet; a board is asked for many times a second)."""
        if not held or not 0.0 <= now - held[0][0] < _HELD_TRIPS_S:
            keys = {trip_key(v.trip_id, v.service_date) for v in await live.vehicles() if v.trip_id and v.service_date}
            held[:] = [(now, keys)]
        return held[0][1]

    async def with_timetable(stop_id: str, arrivals: list[Arrival], now: float) -> list[Arrival]:
        if stop_timetable is None:
            return arrivals
        scheduled = stop_timetable.arrivals(stop_id, now)
        if not scheduled:
            return arrivals
        told = {a.trip_key for a in arrivals} | await live.arrived_trips(stop_id, now)
        told |= await trips_run_by_vehicles(now)
        extra = [a for a in scheduled if a.trip_key not in told]
        if not extra:
            return arrivals
        return sorted([*arrivals, *extra], key=lambda a: (a.predicted_arrival, a.trip_id))

    async def board(stop_id: str, kind: str, languages: Preference) -> dict[str, Any]:
        now = clock()
        arrivals = await with_timetable(stop_id, await live.stop_arrivals(stop_id, now), now)
        cancelled = [TripCancellation(**c) for c in await notice_store.all("cancellation", now)]
        skipped = [skipped_from_dict(s) for s in await notice_store.all("skip", now)]
        return {
            "type": kind,
            "stop_id": stop_id,
            "arrivals": views.board(stop_id, arrivals, cancelled, skipped, now, languages),
            "server_time": now,
        }

    async def board_update(stop_id: str, languages: Preference) -> str:
        return json.dumps(await board(stop_id, "update", languages), separators=(",", ":"), ensure_ascii=False)

    boards = StopBoards(board_update, max_renderings=4 * max(1, len(network.stops)))
    hub = Hub(live, views.vehicle, boards, expiry_sweep_s=expiry_sweep_s)
    stop_locator = StopLocator((s.stop_id, s.lat, s.lon) for s in network.stops.values())
    stop_index = StopIndex(
        (s.stop_id, (s.name, *(name for _, name in s.name_translations))) for s in network.stops.values()
    )

    # Static for the life of the process: computed once per choice of languages, served as bytes. The choices
    # are orderings of the feed's few translation languages; the cache is bounded all the same.
    @functools.lru_cache(maxsize=32)
    def routes_geojson(languages: Preference) -> bytes:
        return json.dumps(views.routes_geojson(languages), separators=(",", ":"), ensure_ascii=False).encode()

    @functools.lru_cache(maxsize=32)
    def stops_geojson(languages: Preference) -> bytes:
        return json.dumps(views.stops_geojson(languages), separators=(",", ":"), ensure_ascii=False).encode()

    routes_geojson(())
    stops_geojson(())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresher = None
        if database is not None:
            await database.open()
            if rollup_refresh_s:
                refresher = asyncio.create_task(refresh_rollup_forever(database, rollup_refresh_s))
        hub.start()
        yield
        await hub.stop()
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        if database is not None:
            await database.close()

    app = FastAPI(
        title="smartbus",
        description="Live bus positions and arrivals, GTFS-realtime feeds, punctuality history and fleet operations.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RateLimitMiddleware, limiter=RateLimiter(rate_per_s, rate_burst))
    app.add_middleware(ServerSendMiddleware)  # outermost of ours: it sees the server's own send
    require = role_guard(database, KeyChecker())
    app.include_router(analytics_router(database, network, require("analyst")))
    app.include_router(network_router(network, views, clock))
    app.include_router(operator_router(notice_store, database, network, require("operator"), clock))
    app.state.hub = hub
    app.state.network = network  # for client_languages
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def known_stop(stop_id: str) -> None:
        if stop_id not in network.stops:
            raise HTTPException(404, "unknown stop")

    def protobuf_or_json(feed: Any, fmt: str) -> Response:
        if fmt == "pb":
            return Response(feed.SerializeToString(), media_type="application/x-protobuf")
        body = json.dumps(gtfs_rt.to_json(feed), separators=(",", ":"), ensure_ascii=False)
        return Response(body, media_type="application/json")

    def feed_format(fmt: str) -> str:
        if fmt not in ("pb", "json"):
            raise HTTPException(404, "GTFS-realtime feeds are served as .pb (protobuf) or .json")
        return fmt

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if await live.ping():
            return Response(b'{"status":"ready"}', media_type="application/json")
        return Response(b'{"status":"live store not answering"}', status_code=503, media_type="application/json")

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "tile_url": tile_url,
            "tile_attribution": tile_attribution,
            "timezone": network.agency_timezone,
            "feed_language": network.feed_language,  # the language of the feed's own names, when known
            "name_languages": list(network.translation_languages),  # names are also translated into these
        }

    @app.get("/api/vehicles")
    async def vehicles(
        languages: Languages,
        route_id: Annotated[str | None, Query(max_length=MAX_ID_CHARS)] = None,
        bbox: Annotated[
            str | None, Query(max_length=MAX_BBOX_CHARS, description="min_lon,min_lat,max_lon,max_lat (WGS84)")
        ] = None,
    ) -> dict[str, Any]:
        box = parse_bbox(bbox) if bbox is not None else None
        selected = []
        for state in await live.vehicles():
            if route_id is not None and state.route_id != route_id:
                continue
            if box is not None and not (box[0] <= state.longitude <= box[2] and box[1] <= state.latitude <= box[3]):
                continue
            selected.append(views.vehicle(state, languages))
        return {"vehicles": selected, "server_time": clock()}

    @app.get("/api/fleet/problems")
    async def problems() -> dict[str, Any]:
        """Bunching, gaps, stale and off-route buses now."""
        now = clock()
        found = fleet_problems(await live.vehicles(), network, now)
        return {"problems": [p.as_dict() for p in found], "server_time": now}

    @app.get("/api/vehicles/{vehicle_id}")
    async def vehicle(vehicle_id: str, languages: Languages) -> dict[str, Any]:
        state = await live.vehicle(vehicle_id)
        if state is None:
            raise HTTPException(404, "unknown vehicle")
        return views.vehicle(state, languages)

    @app.get("/api/stops")
    async def stops(
        languages: Languages,
        q: Annotated[str, Query(max_length=200)] = "",
        lat: Annotated[float | None, Query(ge=-90, le=90, description="with lon: stops near this point")] = None,
        lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
        radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M, description="how near, with lat and lon")] = 500.0,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> dict[str, Any]:
        """Stops whose name, in the feed's language or any translation, holds every word of `q`; with `lat` and
        `lon`, only those within `radius_m` of the point, nearest first, each with its `distance_m`."""
        if (lat is None) != (lon is None):
            raise HTTPException(400, "lat and lon go together")
        if lat is None or lon is None:
            return {"stops": [views.stop(network.stops[i], languages) for i in stop_index.search(q, limit)]}
        wanted = set(stop_index.search(q, len(network.stops))) if q.strip() else None
        found = []
        for stop_id, metres in stop_locator.near(lat, lon, radius_m, len(network.stops) if wanted else limit):
            if wanted is None or stop_id in wanted:
                found.append({**views.stop(network.stops[stop_id], languages), "distance_m": round(metres, 1)})
                if len(found) == limit:
                    break
        return {"stops": found}

    @app.get("/api/stops.geojson")
    async def stops_map(languages: Languages) -> Response:
        return geojson_response(stops_geojson(languages))

    @app.get("/api/stops/{stop_id}")
    async def stop(stop_id: str, languages: Languages) -> dict[str, Any]:
        known_stop(stop_id)
        return views.stop(network.stops[stop_id], languages)

    @app.get("/api/stops/{stop_id}/arrivals")
    async def stop_arrivals(stop_id: str, languages: Languages) -> dict[str, Any]:
        known_stop(stop_id)
        body = await board(stop_id, "snapshot", languages)
        del body["type"]
        body["stop"] = views.stop(network.stops[stop_id], languages)
        return body

    @app.get("/api/routes")
    async def routes(languages: Languages) -> dict[str, Any]:
        ordered = sorted(network.routes.values(), key=lambda r: (r.short_name, r.route_id))
        return {"routes": [views.route(r, languages) for r in ordered]}

    @app.get("/api/routes.geojson")
    async def routes_map(languages: Languages) -> Response:
        return geojson_response(routes_geojson(languages))

    @app.get("/gtfs-rt/vehicle-positions.{fmt}", tags=["gtfs-realtime"])
    async def gtfs_rt_vehicle_positions(fmt: str) -> Response:
        fmt = feed_format(fmt)
        return protobuf_or_json(gtfs_rt.vehicle_positions(await live.vehicles(), network, clock()), fmt)

    @app.get("/gtfs-rt/trip-updates.{fmt}", tags=["gtfs-realtime"])
    async def gtfs_rt_trip_updates(fmt: str) -> Response:
        fmt = feed_format(fmt)
        now = clock()
        vehicle_trips = [
            gtfs_rt.VehicleTrip(state, await live.vehicle_arrivals(state.vehicle_id, now))
            for state in await live.vehicles()
            if state.trip_id
        ]
        cancelled = [TripCancellation(**c) for c in await notice_store.all("cancellation", now)]
        skipped = [skipped_from_dict(s) for s in await notice_store.all("skip", now)]
        return protobuf_or_json(gtfs_rt.trip_updates(vehicle_trips, cancelled, skipped, network, now), fmt)

    @app.get("/gtfs-rt/alerts.{fmt}", tags=["gtfs-realtime"])
    async def gtfs_rt_alerts(fmt: str) -> Response:
        fmt = feed_format(fmt)
        now = clock()
        operator_alerts = [alert_from_dict(a) for a in await notice_store.all("alert", now)]
        return protobuf_or_json(gtfs_rt.alerts(await live.vehicles(), operator_alerts, network, now), fmt)

    async def socket_languages(websocket: WebSocket, lang: str | None) -> Preference | None:
        """The client's languages, or None after closing a socket whose ?lang= is not a language."""
        try:
            if lang is not None and len(lang) > MAX_LANG_CHARS:
                raise ValueError(f"lang is longer than {MAX_LANG_CHARS} characters")
            return languages_for(network, lang, websocket.headers.get("accept-language"))
        except ValueError as exc:
            await websocket.close(CLOSE_BAD_LANGUAGE, str(exc)[:120])  # a close reason fits in 123 bytes
            return None

    Box = tuple[float, float, float, float]

    async def socket_bbox(websocket: WebSocket, bbox: str | None) -> tuple[bool, Box | None]:
        """(False, None) after closing a socket whose ?bbox= is not a box; else (True, the box or None)."""
        if bbox is None:
            return True, None
        try:
            if len(bbox) > MAX_BBOX_CHARS:
                raise HTTPException(400, f"bbox is longer than {MAX_BBOX_CHARS} characters")
            return True, parse_bbox(bbox)
        except HTTPException as exc:
            await websocket.close(CLOSE_BAD_REQUEST, str(exc.detail)[:120])
            return False, None

    async def admitted(websocket: WebSocket) -> bool:
        await websocket.accept()
        if hub.client_count >= max_websockets:
            await websocket.close(CLOSE_FULL, "server full, try again shortly")
            return False
        return True

    @app.websocket("/ws/stops/{stop_id}")
    async def stop_socket(websocket: WebSocket, stop_id: str, lang: str | None = None) -> None:
        if not await admitted(websocket):
            return
        if stop_id not in network.stops:
            await websocket.close(CLOSE_NOT_FOUND, "unknown stop")
            return
        languages = await socket_languages(websocket, lang)
        if languages is None:
            return
        writer = frame_writer(websocket.scope)
        client = StopClient(websocket, stop_id, min_interval_s, send_timeout_s, languages, writer)
        boards.add(client)  # before the snapshot, so no change can slip between the two
        try:
            await serve(client, lambda: board(stop_id, "snapshot", languages), lambda: boards.next_update(client))
        finally:
            boards.remove(client)

    @app.websocket("/ws/fleet")
    async def fleet_socket(
        websocket: WebSocket, route_id: str | None = None, bbox: str | None = None, lang: str | None = None
    ) -> None:
        """Vehicle moves: a snapshot, then the vehicles that moved; `removed` lists those no longer shown (expired,
        or gone out of the route or the box `bbox=min_lon,min_lat,max_lon,max_lat`)."""
        if not await admitted(websocket):
            return
        valid, box = await socket_bbox(websocket, bbox)
        if not valid:
            return
        languages = await socket_languages(websocket, lang)
        if languages is None:
            return
        client = FleetClient(websocket, route_id, min_interval_s, send_timeout_s, languages, bbox=box)
        hub.add_fleet_client(client)

        async def snapshot() -> dict[str, Any]:
            client.start_snapshot()
            everyone = (views.vehicle(state, languages) for state in await live.vehicles())
            shown = [view for view in everyone if client.filter.matches(view)]
            client.snapshot_shown(v["vehicle_id"] for v in shown)
            body: dict[str, Any] = {"type": "snapshot", "route_id": route_id}
            if box is not None:
                body["bbox"] = list(box)
            body.update(vehicles=shown, server_time=clock())
            return body

        async def update() -> dict[str, Any] | None:
            if client.needs_snapshot:
                return await snapshot()
            moved = client.take_pending()
            removed = client.take_removed()
            if not moved and not removed:
                return None
            body: dict[str, Any] = {"type": "update", "route_id": route_id, "vehicles": moved, "server_time": clock()}
            if removed:
                body["removed"] = removed
            return body

        try:
            await serve(client, snapshot, update)
        finally:
            hub.remove_fleet_client(client)

    @app.websocket("/ws/vehicles/{vehicle_id}")
    async def vehicle_socket(websocket: WebSocket, vehicle_id: str, lang: str | None = None) -> None:
        """One vehicle and the arrivals it is predicted to make: a snapshot, then one update per move (at most one a
        second). `vehicle` is null while the vehicle is not in service; the socket stays open for its return."""
        if not await admitted(websocket):
            return
        if len(vehicle_id) > MAX_ID_CHARS:
            await websocket.close(CLOSE_BAD_REQUEST, f"vehicle_id is longer than {MAX_ID_CHARS} characters")
            return
        languages = await socket_languages(websocket, lang)
        if languages is None:
            return
        client = FleetClient(websocket, None, min_interval_s, send_timeout_s, languages, vehicle_id=vehicle_id)
        hub.add_fleet_client(client)

        async def followed(kind: str) -> dict[str, Any]:
            state = await live.vehicle(vehicle_id)
            now = clock()
            arrivals = await live.vehicle_arrivals(vehicle_id, now) if state is not None else []
            return {
                "type": kind,
                "vehicle_id": vehicle_id,
                "vehicle": views.vehicle(state, languages) if state is not None else None,
                "arrivals": [views.arrival(a, languages) for a in arrivals],
                "server_time": now,
            }

        async def snapshot() -> dict[str, Any]:
            client.start_snapshot()
            body = await followed("snapshot")
            if body["vehicle"] is not None:
                client.snapshot_shown([vehicle_id])
            return body

        async def update() -> dict[str, Any] | None:
            if client.needs_snapshot:
                return await snapshot()
            moved, removed = client.take_pending(), client.take_removed()
            if not moved and not removed:
                return None
            return await followed("update")  # read afresh: the arrivals changed with the move

        try:
            await serve(client, snapshot, update)
        finally:
            hub.remove_fleet_client(client)

    @app.get("/", include_in_schema=False)
    async def fleet_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "map.html")

    @app.get("/analytics", include_in_schema=False)
    async def analytics_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "analytics.html")

    @app.get("/stops/{stop_id}", include_in_schema=False)
    async def board_page(stop_id: str) -> Response:
        if stop_id not in network.stops:
            return HTMLResponse((STATIC_DIR / "not_found.html").read_text(encoding="utf-8"), status_code=404)
        return FileResponse(STATIC_DIR / "board.html")

    return app


def geojson_response(body: bytes) -> Response:
    return Response(body, media_type="application/geo+json", headers={"Vary": "Accept-Language"})


# Any fixed 64-bit number: several api processes, one refresher at a time.
ROLLUP_REFRESH_LOCK = 0x5B05_0007


async def refresh_rollup_forever(database: Database, every_s: float) -> None:
    """Keep the punctuality rollup current (plain PostgreSQL's materialized view is otherwise never refreshed)."""
    from smartbus.storage.queries import refresh_punctuality

    while True:
        await asyncio.sleep(every_s)
        try:
            async with database.connection() as conn:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (ROLLUP_REFRESH_LOCK,))
                row = await cur.fetchone()
                if row is not None and row[0]:
                    try:
                        await refresh_punctuality(conn)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (ROLLUP_REFRESH_LOCK,))
        except Exception:
            log.warning("punctuality rollup refresh failed; trying again in %.0f s", every_s, exc_info=True)


async def serve(
    client: Client,
    snapshot: Callable[[], Any],
    update: Callable[[], Any],
) -> None:
    """Send the snapshot, then updates as they come, until the client leaves or falls too far behind."""
    websocket = client.websocket
    too_slow = False

    async with anyio.create_task_group() as tasks:

        async def send_all() -> None:
            nonlocal too_slow
            try:
                await client.send(await snapshot())
                await client.run(update)
            except SlowClient:
                too_slow = True
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client went away mid-send
            tasks.cancel_scope.cancel()

        async def drain() -> None:
            await _drain(websocket)
            tasks.cancel_scope.cancel()

        tasks.start_soon(send_all)
        tasks.start_soon(drain)
    if too_slow:
        with anyio.move_on_after(1.0), contextlib.suppress(Exception):
            await websocket.close(CLOSE_TOO_SLOW, "too slow")


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
