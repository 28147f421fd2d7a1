"""The contract every bus adapter meets. Values are the bytes of `smartbus.messages.encode`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# (topic, partition) -> the offset to read from next: all before it is processed
Offsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float | None = None  # UTC epoch seconds when it was put on the bus (Kafka's CreateTime)


class Producer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        """Queue a message. May wait when the producer's buffer is full (back-pressure), never blocks per message."""

    async def flush(self) -> None:
        """Return once every message sent so far is durable (acks=all on Kafka)."""


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, timeout_s: float, max_records: int) -> Sequence[Record]:
        """The next records of the assigned partitions, in partition order; empty after `timeout_s`."""

    async def commit(self, offsets: Offsets | None = None) -> None:
        """Mark everything returned so far as processed, or with `offsets` what lies before them in those partitions
        (call only once its outputs are durable). Partitions no longer assigned are left alone."""
