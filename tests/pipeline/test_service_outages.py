"""Kafka, PostgreSQL or Redis stopped for 30 s under load, then started: the pipeline recovers by itself.

Nobody restarts our processes: they retry with back-off (the worker resends the outputs it had computed;
the writers reconnect), and the exact reference rows end up stored and every bus's latest state in Redis.
The outage length can be shortened for a quick local run with SMARTBUS_TEST_OUTAGE_S.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eta.network import Network
from smartbus import messages
from smartbus.bus.kafka import KafkaProducer
from smartbus.errors import ServiceUnavailable
from smartbus.live.redis_store import RedisLiveStore
from smartbus.messages import Ping
from tests.pipeline.fleet import Fleet, drive_fleet
from tests.pipeline.harness import SMARTBUS, Deployment, Process, free_port, wait_until

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("SMARTBUS_TEST_OUTAGE_S", "30"))
LOAD_SECONDS = OUTAGE_S + 15  # the load starts before the outage and goes on after it


async def _services(action: str, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        SMARTBUS, "services", action, name, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, f"services {action} {name}: {output.decode(errors='replace')}"


async def _started_by_us(name: str) -> bool:
    """Whether this checkout's `smartbus services` runs the service (its pid in `services status`), so may stop it."""
    process = await asyncio.create_subprocess_exec(
        SMARTBUS, "services", "status", name, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    row = next((line.split() for line in output.decode(errors="replace").splitlines() if line.startswith(name)), [])
    return len(row) > 2 and row[2] != "-"


async def _redis_answers(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


async def _paced_load(deployment: Deployment, pings: Sequence[Ping], seconds: float) -> None:
    """Send the pings evenly over `seconds`, as an ingest edge would: a chunk that Kafka did not take is sent
    again (the worker drops a repeated ping as a duplicate)."""
    producer = KafkaProducer(deployment.settings.kafka_bootstrap, topic_prefix=deployment.prefix)
    await producer.start()
    chunk = max(1, len(pings) * 250 // int(seconds * 1000))  # one chunk every 250 ms
    started = time.monotonic()
    try:
        for index in range(0, len(pings), chunk):
            while True:
                try:
                    for ping in pings[index : index + chunk]:
                        await producer.send(messages.TOPIC_PINGS, messages.encode(ping), ping.vehicle_id)
                    await producer.flush()
                    break
                except (ServiceUnavailable, Exception):  # noqa: BLE001 (any Kafka error: send the chunk again)
                    await asyncio.sleep(1.0)
            due = started + (index // chunk + 1) * 0.25
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    finally:
        await producer.stop()


class _PrivateRedis:
    """A redis-server of the test's own, configured as `smartbus services` configures its one (AOF), for
    machines whose Redis on the shared port was started by something else and is not ours to stop."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._launch()
        deadline = time.monotonic() + 20
        while not await _redis_answers(self.url):
            assert time.monotonic() < deadline, "private redis-server did not start"
            await asyncio.sleep(0.1)

    def _launch(self) -> None:
        self._process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.home), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # a graceful shutdown, as `services stop` does
            self._process.wait(30)


@pytest.mark.parametrize("service", ["kafka", "postgres", "redis"])
async def test_a_service_stopped_under_load_and_started_again_loses_nothing(
    service: str, deployment: Deployment, network: Network, tmp_path: Path
) -> None:
    private: _PrivateRedis | None = None
    if service != "redis" and not await _started_by_us(service):
        # Another checkout's server, or a system one: not ours to stop, and an outage we cannot cause tests nothing.
        pytest.skip(f"{service} on this machine was not started by this checkout's `smartbus services`")
    if service == "redis" and not (deployment.settings.services_dir / "redis" / "redis.pid").exists():
        private = _PrivateRedis(tmp_path)
        await private.start()
        deployment.settings = deployment.settings.model_copy(update={"redis_url": private.url})
    fleet = drive_fleet(network, deployment.tag, vehicles=30)
    await deployment.create_topics()
    writer = deployment.writer()
    worker = deployment.worker()
    load = asyncio.create_task(_paced_load(deployment, fleet.pings, LOAD_SECONDS))
    try:
        await asyncio.sleep(5.0)
        if private is not None:
            private.stop()
        else:
            await _services("stop", service)
        await asyncio.sleep(OUTAGE_S)
    finally:
        if private is not None:
            await private.start()
        else:
            await _services("start", service)
    try:
        await load
        await _check_everything_arrived(deployment, fleet, writer, worker)
    finally:
        deployment.stop_all()
        if private is not None:
            private.stop()


async def _check_everything_arrived(deployment: Deployment, fleet: Fleet, writer: Process, worker: Process) -> None:
    async def all_stored() -> bool:
        return (
            await deployment.positions() >= fleet.positions
            and await deployment.stop_event_rows() >= len(fleet.stop_events)
        )

    await wait_until("every position and stop event stored", all_stored, 240, writer, worker)
    assert await deployment.positions() == fleet.positions
    assert await deployment.stop_events() == fleet.stop_events

    last_ping = {  # each bus's last ping that the reference turned into a state
        p.vehicle_id: p.timestamp
        for i, p in enumerate(fleet.pings)
        if fleet.positions_after[i + 1] > fleet.positions_after[i]
    }
    live = RedisLiveStore(deployment.settings.redis_url, namespace=deployment.tag)
    try:
        async def live_is_current() -> bool:
            states = {v: await live.vehicle(v) for v in last_ping}
            return all(s is not None and s.timestamp == last_ping[v] for v, s in states.items())

        await wait_until("every bus's latest state in Redis", live_is_current, 120, writer)
    finally:
        await live.close()
