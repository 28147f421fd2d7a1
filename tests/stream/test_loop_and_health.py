"""The at-least-once loop (commit only after the batch's outputs are durable) and the ops endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence

from smartbus import metrics
from smartbus.bus.base import Offsets, Record
from smartbus.stream.health import HEALTH
from smartbus.stream.loop import run_stage
from smartbus.stream.process import serve_metrics


class ScriptedConsumer:
    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches
        self.delivered: list[Record] = []
        self.committed: list[list[Record]] = []
        self.committed_offsets: list[Offsets | None] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, timeout_s: float, max_records: int) -> Sequence[Record]:
        if not self.batches:
            await asyncio.sleep(timeout_s)
            return []
        batch = self.batches.pop(0)
        self.delivered.extend(batch)
        return batch

    async def commit(self, offsets: Offsets | None = None) -> None:
        self.committed.append(list(self.delivered))
        self.committed_offsets.append(offsets)


def _record(offset: int) -> Record:
    return Record("pings", 0, offset, None, b"{}")


async def test_a_batch_is_committed_only_once_its_sink_took_it() -> None:
    consumer = ScriptedConsumer([[_record(0), _record(1)], [_record(2)]])
    stop = asyncio.Event()
    attempts: list[int] = []
    commits_seen_by_sink: list[int] = []

    async def sink(records: Sequence[Record]) -> None:
        attempts.append(records[0].offset)
        commits_seen_by_sink.append(len(consumer.committed))
        if len(attempts) <= 2:
            raise ConnectionError("database down")  # twice: the loop backs off and retries the same batch
        if records[0].offset == 2:
            stop.set()

    await asyncio.wait_for(run_stage("loop-test", consumer, sink, stop, poll_timeout_s=0.01), 30)
    assert attempts == [0, 0, 0, 2]
    assert commits_seen_by_sink == [0, 0, 0, 1]  # nothing committed while the first batch was failing
    assert [len(c) for c in consumer.committed] == [2, 3]
    assert metrics.SINK_ERRORS.labels("loop-test")._value.get() == 2
    HEALTH.forget("loop-test")


async def test_a_stage_with_a_checkpoint_commits_only_once_it_succeeded() -> None:
    consumer = ScriptedConsumer([[_record(0)], [_record(1)], [_record(2)]])
    stop = asyncio.Event()
    checkpoints: list[int] = []  # records delivered when each checkpoint was tried

    async def sink(records: Sequence[Record]) -> None:
        if records[0].offset == 2:
            stop.set()

    async def checkpoint(final: bool) -> Offsets | None:
        checkpoints.append(len(consumer.delivered))
        if len(checkpoints) == 1:
            raise ConnectionError("redis down")  # the loop backs off, tries again, and only then commits
        return None

    await asyncio.wait_for(
        run_stage("loop-test-checkpoint", consumer, sink, stop, poll_timeout_s=0.01, checkpoint=checkpoint), 30
    )
    assert checkpoints == [1, 1, 2, 3]
    assert [len(c) for c in consumer.committed] == [1, 2, 3]
    HEALTH.forget("loop-test-checkpoint")


async def test_a_stage_committing_every_few_seconds_checkpoints_once_for_all_its_batches() -> None:
    consumer = ScriptedConsumer([[_record(0)], [_record(1)], [_record(2)]])
    stop = asyncio.Event()
    checkpoints: list[int] = []

    async def sink(records: Sequence[Record]) -> None:
        if records[0].offset == 2:
            stop.set()

    async def checkpoint(final: bool) -> Offsets | None:
        checkpoints.append(len(consumer.delivered))
        return None

    await asyncio.wait_for(
        run_stage(
            "loop-test-interval", consumer, sink, stop, poll_timeout_s=0.01, checkpoint=checkpoint,
            commit_every_s=3600.0,
        ),
        30,
    )
    assert checkpoints == [3]  # not before: the interval had not passed; then once, on stopping
    assert [len(c) for c in consumer.committed] == [3]
    HEALTH.forget("loop-test-interval")


async def test_a_writer_committing_once_a_second_commits_its_batches_together_and_when_the_stream_goes_quiet() -> None:
    consumer = ScriptedConsumer([[_record(0)], [_record(1)], [_record(2)]])  # then nothing more comes
    stop = asyncio.Event()
    written: list[int] = []

    async def sink(records: Sequence[Record]) -> None:
        written.extend(r.offset for r in records)

    task = asyncio.create_task(run_stage(
        "loop-test-writer", consumer, sink, stop, poll_timeout_s=0.01, commit_every_s=1.0
    ))
    for _ in range(1000):
        if consumer.committed:
            break
        await asyncio.sleep(0.01)
    # the three batches came at once: one commit covers them all, and it came without a fourth batch or a stop
    assert written == [0, 1, 2]
    assert [len(c) for c in consumer.committed] == [3]
    assert not stop.is_set()
    await asyncio.sleep(1.2)  # nothing handled since: nothing more to commit
    stop.set()
    await asyncio.wait_for(task, 30)
    assert [len(c) for c in consumer.committed] == [3]
    HEALTH.forget("loop-test-writer")


async def test_a_stage_whose_checkpoint_saved_part_of_its_state_commits_only_what_that_part_covers() -> None:
    consumer = ScriptedConsumer([[_record(0)], [_record(1)], [_record(2)]])
    stop = asyncio.Event()
    finals: list[bool] = []

    async def sink(records: Sequence[Record]) -> None:
        if records[0].offset == 2:
            stop.set()

    async def checkpoint(final: bool) -> Offsets | None:
        finals.append(final)
        # saved up to the second record only, until asked for all of it on stopping
        return None if final else {("pings", 0): 1}

    await asyncio.wait_for(
        run_stage("loop-test-partial", consumer, sink, stop, poll_timeout_s=0.01, checkpoint=checkpoint), 30
    )
    assert finals[-1] is True and not any(finals[:-1])
    assert consumer.committed_offsets[:-1] == [{("pings", 0): 1}] * (len(finals) - 1)
    assert consumer.committed_offsets[-1] is None  # everything handled, on stopping
    HEALTH.forget("loop-test-partial")


async def test_a_stage_that_saved_part_of_its_state_saves_the_rest_once_the_stream_goes_quiet() -> None:
    consumer = ScriptedConsumer([[_record(0)], [_record(1)]])  # then nothing more comes
    stop = asyncio.Event()
    covered: list[Offsets | None] = [{("pings", 0): 0}, {("pings", 0): 1}]  # by each checkpoint; then all of it

    async def sink(records: Sequence[Record]) -> None: ...

    async def checkpoint(final: bool) -> Offsets | None:
        return covered.pop(0) if covered else None

    task = asyncio.create_task(run_stage(
        "loop-test-quiet", consumer, sink, stop, poll_timeout_s=0.01, checkpoint=checkpoint, commit_every_s=0.05
    ))
    for _ in range(500):
        if consumer.committed_offsets[-1:] == [None]:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # all covered: no checkpoint, no commit more
    stop.set()
    await asyncio.wait_for(task, 30)
    assert consumer.committed_offsets == [{("pings", 0): 0}, {("pings", 0): 1}, None]
    HEALTH.forget("loop-test-quiet")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_readiness_and_metrics_are_served_on_the_metrics_port() -> None:
    port = _free_port()
    serve_metrics(port)
    base = f"http://127.0.0.1:{port}"
    HEALTH.beat("ops-test")
    HEALTH.failing("ops-test", "Redis down")
    status, body = _get(f"{base}/readyz")
    assert status == 503 and json.loads(body)["failing"]["ops-test"] == "Redis down"
    HEALTH.recovered("ops-test")
    status, body = _get(f"{base}/readyz")
    assert status == 200 and json.loads(body)["ok"] is True
    assert _get(f"{base}/healthz")[0] == 200
    metrics.CONSUMER_LAG.labels("g", "pings", "0").set(42)
    status, text = _get(f"{base}/metrics")
    assert status == 200 and 'smartbus_consumer_lag{group="g",partition="0",topic="pings"} 42.0' in text
    assert "smartbus_ping_latency_seconds_bucket" in text and "smartbus_batch_size_bucket" in text
    HEALTH.forget("ops-test")
