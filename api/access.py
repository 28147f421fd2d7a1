"""Who may call what: public rider endpoints; keys with roles for operators and analysts; rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response
from starlette.types import ASGIApp

from api.database import Database
from api.errors import error_response
from api.keys import ApiKey, KeyChecker, Role
from api.ratelimit import RateLimiter


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


Guard = Callable[[Request], Awaitable[ApiKey]]


def role_guard(database: Database | None, checker: KeyChecker) -> Callable[[Role], Guard]:
    """`require(role)` gives a FastAPI dependency that admits keys with that role (or admin)."""

    def require(role: Role) -> Guard:
        async def dependency(request: Request) -> ApiKey:
            if database is None:
                raise HTTPException(503, "this endpoint needs the database, and the api runs without one")
            presented = presented_key(request)
            if not presented:
                raise HTTPException(401, "an API key is required: send 'Authorization: Bearer <key>'")
            key = await checker.check(database.connection, presented)
            if key is None:
                raise HTTPException(401, "unknown or revoked API key")
            if not key.allows(role):
                raise HTTPException(403, f"this key lacks the '{role}' role")
            request.state.api_key = key
            return key

        return dependency

    return require


class RateLimitMiddleware(BaseHTTPMiddleware):
    """Limits requests per client address; pages' static assets and websockets are not counted."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        super().__init__(app)
        self._limiter = limiter

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path.startswith("/static/"):
            return await call_next(request)
        client = request.client.host if request.client else "unknown"
        wait_s = self._limiter.allow(client)
        if wait_s > 0:
            response = error_response(429, "too many requests, slow down", retry_after_s=round(wait_s, 1))
            response.headers["Retry-After"] = str(max(1, round(wait_s)))
            return response
        return await call_next(request)
