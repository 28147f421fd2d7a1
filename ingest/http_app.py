"""HTTP endpoint for device batches: `POST /v1/pings` with `{"pings": [ {...}, ... ]}`.

Each ping uses GTFS-realtime VehiclePosition field names: vehicle_id, timestamp (UTC epoch seconds),
latitude, longitude, and optionally bearing, speed (m/s), trip_id, route_id, direction_id, start_date,
start_time. Answers 200 with the count accepted and each rejected ping's index and reason; 413 for a
body over the size limit; 400 for a body that is not a batch.

With a token verifier, every batch needs `Authorization: Bearer <device token>` (401 without a valid,
unrevoked one); the token decides the vehicle id, namespaced by its feed (see ingest.tokens).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest.edge import MAX_BATCH, IngestEdge
from ingest.tokens import DeviceIdentity, TokenVerifier
from smartbus import metrics

MAX_BODY_BYTES = 1_000_000


def create_ingest_app(edge: IngestEdge, verifier: TokenVerifier | None = None) -> FastAPI:
    app = FastAPI(title="smartbus ingest", version="1")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/pings")
    async def post_pings(request: Request) -> JSONResponse:
        device: DeviceIdentity | None = None
        if verifier is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            device = await verifier.verify(token) if scheme.lower() == "bearer" else None
            if device is None:
                metrics.PINGS_REJECTED.labels("bad_device_token").inc()
                return JSONResponse(
                    {"error": "a valid device token is required (Authorization: Bearer sbd_...)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            document: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        pings = document.get("pings") if isinstance(document, dict) else None
        if not isinstance(pings, list):
            return _error(400, 'body must be an object {"pings": [...]}')
        if len(pings) > MAX_BATCH:
            return _error(413, f"at most {MAX_BATCH} pings per batch")
        result = await edge.accept_batch(pings, device)
        return JSONResponse({"accepted": result.accepted, "rejected": result.rejected})

    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
