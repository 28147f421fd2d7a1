"""The real services as `smartbus services up` leaves them (scripts/test.sh runs it before pytest)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from smartbus.messages import ALL_TOPICS
from smartbus.settings import Settings

pytestmark = pytest.mark.integration

SERVICES = ("kafka", "postgres", "redis")


def services_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smartbus.cli", "services", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def status_rows(output: str) -> dict[str, list[str]]:
    """service name -> [endpoint, pid, answers, version] from `services status`."""
    rows = [line.split() for line in output.splitlines()]
    return {row[0]: row[1:] for row in rows if row and row[0] in SERVICES}


def test_status_says_every_service_answers() -> None:
    result = services_command("status")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = status_rows(result.stdout)
    assert set(rows) == set(SERVICES)
    assert all(row[2] == "yes" for row in rows.values()), result.stdout


def test_second_up_changes_nothing() -> None:
    before = status_rows(services_command("status").stdout)

    result = services_command("up")

    assert result.returncode == 0, result.stdout + result.stderr
    for name in SERVICES:
        assert f"{name}: already running" in result.stdout
    after = status_rows(services_command("status").stdout)
    assert {name: row[1] for name, row in after.items()} == {name: row[1] for name, row in before.items()}


async def test_a_produced_message_is_consumed_back() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    settings = Settings()
    topic = f"services-test-{uuid.uuid4().hex[:8]}"  # auto-created on first use
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"hello from the services test", key=b"bus-7")
        for name in ALL_TOPICS:
            partitions = await producer.partitions_for(settings.kafka_topic_prefix + name)
            assert len(partitions) == settings.kafka_partitions, name
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        batches = await consumer.getmany(partition, timeout_ms=10_000)
    finally:
        await consumer.stop()
    received = [(record.key, record.value) for record in batches.get(partition, [])]
    assert received[:1] == [(b"bus-7", b"hello from the services test")]


def test_redis_answers_ping() -> None:
    client = redis.Redis.from_url(Settings().redis_url)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_postgres_accepts_the_smartbus_role_with_its_password() -> None:
    with psycopg.connect(Settings().database_url, connect_timeout=5) as conn:
        row = conn.execute(
            "select 1, current_user, current_database(), pg_get_userbyid(datdba) "
            "from pg_database where datname = current_database()"
        ).fetchone()
    assert row == (1, "smartbus", "smartbus", "smartbus")


def test_a_second_checkout_uses_the_services_another_one_started_and_leaves_them_running(tmp_path: Path) -> None:
    """A clean clone on a machine where another checkout's services already run (as on a developer's machine
    when CI runs): its `up` finds them on their ports and uses them; its `down` stops nothing it did not start."""
    env = {"SMARTBUS_SERVICES_DIR": str(tmp_path / "services")}

    result = services_command("up", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in SERVICES:
        assert f"{name}: already running" in result.stdout and "(not started by us)" in result.stdout
    assert services_command("down", env=env).returncode == 0
    assert all(row[2] == "yes" for row in status_rows(services_command("status").stdout).values())
    test_postgres_accepts_the_smartbus_role_with_its_password()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_redis_stopped_and_started_through_the_command_keeps_its_data(tmp_path: Path) -> None:
    # A Redis of its own, beside the shared one, so other tests never see it go away.
    port = free_port()
    env = {"SMARTBUS_SERVICES_DIR": str(tmp_path / "services"), "SMARTBUS_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    assert services_command("up", "redis", env=env).returncode == 0
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        client.set("vehicle:bus-7", "last seen at stop 12")

        stopped = services_command("stop", "redis", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        with pytest.raises(redis.ConnectionError):
            client.ping()
        assert services_command("status", "redis", env=env).returncode == 1

        started = services_command("start", "redis", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert client.get("vehicle:bus-7") == b"last seen at stop 12"
    finally:
        client.close()
        services_command("down", "--purge", "redis", env=env)
    assert not (tmp_path / "services").exists()
