"""A deployment of our own processes on the real services, under a fresh topic prefix and Redis namespace.

The workers and writers run as the real commands (`smartbus eta`, `smartbus writer`) in subprocesses, so a
test can SIGKILL one exactly as an operating system would.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from smartbus import messages
from smartbus.bus.kafka import KafkaProducer, ensure_topics
from smartbus.messages import Ping
from smartbus.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SMARTBUS = str(Path(sys.executable).parent / "smartbus")
PARTITIONS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    async def metric(self, name: str) -> float:
        """Sum of a metric's samples (0 while the process does not listen yet)."""
        try:
            async with httpx.AsyncClient(timeout=20.0) as client:
                text = (await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        except httpx.ConnectError:
            return 0.0
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", re.M)
        return sum(float(v) for v in pattern.findall(text))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Deployment:
    logs: Path
    tag: str = field(default_factory=lambda: f"fail-{uuid.uuid4().hex[:8]}")
    settings: Settings = field(default_factory=Settings)
    processes: list[Process] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.tag + "."

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SMARTBUS_KAFKA_TOPIC_PREFIX"] = self.prefix
        env["SMARTBUS_KAFKA_PARTITIONS"] = str(PARTITIONS)
        env["SMARTBUS_CACHE_DIR"] = str(REPO / "var" / "cache")
        env["SMARTBUS_REDIS_URL"] = self.settings.redis_url
        return env

    def _start(self, name: str, args: Sequence[str]) -> Process:
        port = free_port()
        log = self.logs / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [SMARTBUS, *args, "--metrics-port", str(port)],
                cwd=REPO, env=self._env(), stdout=out, stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, port, log)
        self.processes.append(process)
        return process

    def worker(self) -> Process:
        return self._start("eta", ["eta", "--redis-namespace", self.tag])

    def writer(self, only: str | None = None) -> Process:
        """`smartbus writer`, both writers in one process, or with `only` ("storage", "live") one of them."""
        selected = ["--only", only] if only is not None else []
        return self._start(f"writer-{only}" if only else "writer", ["writer", *selected, "--redis-namespace", self.tag])

    async def create_topics(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, messages.ALL_TOPICS, PARTITIONS, topic_prefix=self.prefix)

    def stop_all(self) -> None:
        for process in self.processes:
            process.terminate(10)

    async def produce(self, pings: Sequence[Ping]) -> None:
        producer = KafkaProducer(self.settings.kafka_bootstrap, topic_prefix=self.prefix)
        await producer.start()
        try:
            for ping in pings:
                await producer.send(messages.TOPIC_PINGS, messages.encode(ping), ping.vehicle_id)
            await producer.flush()
        finally:
            await producer.stop()

    async def committed_pings(self) -> int:
        """Sum of the ETA group's committed offsets on `pings` (how many pings it has finished)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.prefix + self.settings.consumer_group)
        finally:
            await admin.close()
        return sum(m.offset for tp, m in offsets.items() if tp.topic == self.prefix + messages.TOPIC_PINGS)

    async def group_members(self, group_id: str | None = None) -> int:
        """Members of a consumer group (the ETA workers' by default) that hold an assignment (the group is stable)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        try:
            responses = await admin.describe_consumer_groups([self.prefix + (group_id or self.settings.consumer_group)])
        finally:
            await admin.close()
        for response in responses:
            for group in response.groups:
                _error, _group_id, state, *_rest, members = group[:6]
                if state == "Stable":
                    return len(members)
        return 0

    async def count(self, sql: str) -> int:
        async with await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True) as conn:
            cur = await conn.execute(sql.replace("{tag}", self.tag))
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def positions(self) -> int:
        return await self.count("select count(*) from positions where vehicle_id like '{tag}-%'")

    async def stop_events(self) -> set[tuple[str, str, int]]:
        async with await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True) as conn:
            cur = await conn.execute(
                "select vehicle_id, trip_id, stop_sequence from stop_events where vehicle_id like %s",
                (self.tag + "-%",),
            )
            return {(str(v), str(t), int(s)) for v, t, s in await cur.fetchall()}

    async def stop_event_rows(self) -> int:
        return await self.count("select count(*) from stop_events where vehicle_id like '{tag}-%'")


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float, *logs: Process) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await check():
                return
        except (psycopg.OperationalError, OSError):
            pass  # a service the test stopped on purpose
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        await asyncio.sleep(0.2)
