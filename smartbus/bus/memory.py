"""An in-process bus with Kafka's semantics where they matter to us: ordered logs per topic, consumer
groups that remember committed offsets, and redelivery of uncommitted records to a restarted consumer.

Used by the embedded demo and by tests of the pipeline logic; records are the same serialized bytes as
on Kafka. One partition per topic: a single process needs no more. Records every group has committed
are dropped, so memory stays bounded on a long-running demo.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from smartbus.bus.base import Offsets, Record

# A producer that gets this far ahead of the slowest consumer group waits: back-pressure, not memory growth.
DEFAULT_MAX_BACKLOG = 200_000


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.records: deque[Record] = deque()
        self.base_offset = 0  # offset of records[0]
        self.next_offset = 0
        self.committed: dict[str, int] = {}  # group -> next offset to read

    def append(self, key: bytes | None, value: bytes) -> None:
        self.records.append(Record(self.name, 0, self.next_offset, key, value, time.time()))
        self.next_offset += 1

    def trim(self) -> None:
        if not self.committed:
            return
        low = min(self.committed.values())
        while self.records and self.base_offset < low:
            self.records.popleft()
            self.base_offset += 1

    def backlog(self) -> int:
        low = min(self.committed.values(), default=self.base_offset)
        return self.next_offset - low

    def read(self, start: int, limit: int) -> list[Record]:
        start = max(start, self.base_offset)
        first = start - self.base_offset
        stop = min(len(self.records), first + limit)
        return [self.records[i] for i in range(first, stop)]


class MemoryBus:
    def __init__(self, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
        self._topics: dict[str, _Topic] = {}
        self._changed = asyncio.Condition()
        self.max_backlog = max_backlog

    def topic(self, name: str) -> _Topic:
        found = self._topics.get(name)
        if found is None:
            found = self._topics[name] = _Topic(name)
        return found

    async def append(self, topic: str, key: bytes | None, value: bytes) -> None:
        log = self.topic(topic)
        if log.backlog() >= self.max_backlog:
            async with self._changed:
                await self._changed.wait_for(lambda: log.backlog() < self.max_backlog)
        log.append(key, value)
        async with self._changed:
            self._changed.notify_all()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: object, timeout_s: float) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout_s)  # type: ignore[arg-type]
            except TimeoutError:
                pass

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)

    def consumer(self, topics: Sequence[str], group: str) -> MemoryConsumer:
        for name in topics:
            self.topic(name).committed.setdefault(group, self.topic(name).base_offset)
        return MemoryConsumer(self, topics, group)


class MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        await self._bus.append(topic, key.encode() if key is not None else None, value)

    async def flush(self) -> None:
        return None  # appends are visible at once


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, topics: Sequence[str], group: str) -> None:
        self._bus = bus
        self._topics = [bus.topic(name) for name in topics]
        self._group = group
        self._position = {t.name: t.committed[group] for t in self._topics}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _available(self) -> bool:
        return any(self._position[t.name] < t.next_offset for t in self._topics)

    async def getmany(self, timeout_s: float, max_records: int) -> Sequence[Record]:
        if not self._available():
            await self._bus.wait_for(self._available, timeout_s)
        batch: list[Record] = []
        for log in self._topics:
            if len(batch) >= max_records:
                break
            records = log.read(self._position[log.name], max_records - len(batch))
            if records:
                self._position[log.name] = records[-1].offset + 1
                batch.extend(records)
        return batch

    async def commit(self, offsets: Offsets | None = None) -> None:
        for log in self._topics:  # (one partition, 0, per topic)
            upto = self._position[log.name] if offsets is None else offsets.get((log.name, 0))
            if upto is not None:
                log.committed[self._group] = upto
                log.trim()
        await self._bus.notify()
