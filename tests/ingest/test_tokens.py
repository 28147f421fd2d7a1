"""Device tokens on the real PostgreSQL: issued, checked on every batch, revoked."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient

from ingest.edge import IngestEdge
from ingest.http_app import create_ingest_app
from ingest.tokens import TokenVerifier, issue_token, parse_token, revoke_token
from smartbus import messages
from smartbus.bus.memory import MemoryBus
from smartbus.settings import Settings
from smartbus.storage.migrate import migrate

NOW = 1_790_000_000.0


def test_only_well_formed_tokens_parse() -> None:
    assert parse_token("sbd_0123456789abcdef_" + "A" * 43) == ("0123456789abcdef", "A" * 43)
    assert parse_token("sbd_0123456789abcdef_short") is None
    assert parse_token("Bearer whatever") is None


@pytest.mark.integration
async def test_a_device_posts_with_its_token_until_an_operator_revokes_it() -> None:
    url = Settings().database_url

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(url)

    vehicle = f"bus-{uuid.uuid4().hex[:6]}"
    async with await connect() as conn:
        await migrate(conn)
        issued = await issue_token(conn, vehicle, "bacninh", note="test")
        cur = await conn.execute(
            "select secret_hash, feed, vehicle_id from device_tokens where token_id = %s",
            (issued.identity.token_id,),
        )
        stored, feed, vehicle_id = await cur.fetchone() or (b"", "", "")
    secret = issued.token.rsplit("_", 1)[1]
    assert (feed, vehicle_id) == ("bacninh", vehicle) and secret.encode() not in bytes(stored)  # hashed only

    bus = MemoryBus()
    verifier = TokenVerifier(connect, cache_s=0.0)  # no cache: the revocation shows at once in this test
    app = create_ingest_app(IngestEdge(bus.producer(), clock=lambda: NOW), verifier)
    ping: dict[str, Any] = {"timestamp": NOW - 5, "latitude": 21.18, "longitude": 106.07}
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://ingest") as client:
        async def post(token: str | None, pings: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.post("/v1/pings", json={"pings": pings}, headers=headers)
            return response.status_code, response.json()

        assert (await post(None, [ping]))[0] == 401
        wrong = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
        assert (await post(wrong, [ping]))[0] == 401
        status, body = await post(issued.token, [ping, {**ping, "vehicle_id": "someone-else"}])
        assert status == 200 and body["accepted"] == 1
        assert [r["reason"] for r in body["rejected"]] == ["vehicle_not_allowed"]

        async with await connect() as conn:
            assert await revoke_token(conn, issued.identity.token_id)
        assert (await post(issued.token, [ping]))[0] == 401

    records = await bus.consumer([messages.TOPIC_PINGS], "t").getmany(0.01, 100)
    assert [messages.decode_as(r.value, messages.Ping).vehicle_id for r in records] == [f"bacninh:{vehicle}"]
