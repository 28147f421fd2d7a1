from __future__ import annotations

import asyncio

import pytest

from smartbus.bus.memory import MemoryBus


async def test_a_consumer_reads_in_order_and_a_restarted_one_gets_the_uncommitted_again() -> None:
    bus = MemoryBus()
    producer = bus.producer()
    for n in range(5):
        await producer.send("pings", str(n).encode(), key=f"v{n % 2}")
    first = bus.consumer(["pings"], "eta")
    batch = await first.getmany(0.01, 3)
    assert [r.value for r in batch] == [b"0", b"1", b"2"]
    assert batch[1].key == b"v1"
    await first.commit()
    await first.getmany(0.01, 10)  # read 3 and 4 but crash before committing
    restarted = bus.consumer(["pings"], "eta")
    assert [r.value for r in await restarted.getmany(0.01, 10)] == [b"3", b"4"]


async def test_groups_are_independent_and_committed_records_are_freed() -> None:
    bus = MemoryBus()
    producer = bus.producer()
    storage, live = bus.consumer(["t"], "storage"), bus.consumer(["t"], "live")
    for n in range(4):
        await producer.send("t", bytes([n]))
    assert len(await storage.getmany(0.01, 10)) == 4
    await storage.commit()
    assert len(bus.topic("t").records) == 4  # live has not read them yet
    assert len(await live.getmany(0.01, 10)) == 4
    await live.commit()
    assert len(bus.topic("t").records) == 0


async def test_a_waiting_consumer_wakes_when_a_message_arrives() -> None:
    bus = MemoryBus()
    consumer = bus.consumer(["t"], "g")
    reader = asyncio.create_task(consumer.getmany(5.0, 10))
    await asyncio.sleep(0.01)
    await bus.producer().send("t", b"hello")
    records = await asyncio.wait_for(reader, 1.0)
    assert [r.value for r in records] == [b"hello"]


async def test_a_producer_far_ahead_of_its_consumers_waits_instead_of_growing_memory() -> None:
    bus = MemoryBus(max_backlog=3)
    consumer = bus.consumer(["t"], "g")
    producer = bus.producer()
    for n in range(3):
        await producer.send("t", bytes([n]))
    blocked = asyncio.create_task(producer.send("t", b"x"))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    await consumer.getmany(0.01, 10)
    await consumer.commit()
    await asyncio.wait_for(blocked, 1.0)
    assert [r.value for r in await consumer.getmany(0.01, 10)] == [b"x"]


@pytest.mark.parametrize("group_count", [1, 3])
async def test_nothing_is_lost_or_duplicated_across_commits(group_count: int) -> None:
    bus = MemoryBus(max_backlog=50)
    consumers = [bus.consumer(["t"], f"g{n}") for n in range(group_count)]
    seen: list[list[bytes]] = [[] for _ in consumers]

    async def drain(index: int) -> None:
        while len(seen[index]) < 500:
            for record in await consumers[index].getmany(0.05, 17):
                seen[index].append(record.value)
            await consumers[index].commit()

    async def produce() -> None:
        producer = bus.producer()
        for n in range(500):
            await producer.send("t", str(n).encode())

    await asyncio.wait_for(asyncio.gather(produce(), *(drain(i) for i in range(group_count))), 10)
    for values in seen:
        assert values == [str(n).encode() for n in range(500)]
