"""Keyed messages go to the partition Kafka's default partitioner picks, so every producer of a vehicle's
messages (ingest, the ETA worker, another client library) puts them on the same partition, in order."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from smartbus.bus.kafka import CachingPartitioner


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=50), st.integers(1, 64))
def test_a_key_goes_to_the_default_partitioner_s_partition_every_time(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    cached = CachingPartitioner()
    for _ in range(2):  # the second round is answered from the cache
        for key in keys:
            assert cached(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_key_follows_the_partition_count_when_partitions_are_added() -> None:
    cached = CachingPartitioner()
    keys = [f"bn-bus-{k:03d}".encode() for k in range(200)]
    for count in (6, 12):
        partitions = list(range(count))
        assert [cached(k, partitions, partitions) for k in keys] == [
            DefaultPartitioner()(k, partitions, partitions) for k in keys
        ]


def test_the_cache_stays_bounded_and_still_answers_right(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(CachingPartitioner, "MAX_KEYS", 10)
    cached = CachingPartitioner()
    partitions = list(range(6))
    keys = [f"v{k}".encode() for k in range(35)]
    assert [cached(k, partitions, partitions) for k in keys] == [
        DefaultPartitioner()(k, partitions, partitions) for k in keys
    ]
    assert len(cached._hashes) <= 10


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    assert CachingPartitioner()(None, [0, 1, 2, 3], [2]) == 2
