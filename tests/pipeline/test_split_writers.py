"""The writers as docker-compose deploys them, in two processes: the history's gives way to the live path."""

from __future__ import annotations

import os

import pytest

from eta.network import Network
from smartbus.live.redis_store import RedisLiveStore
from smartbus.storage.command import STORAGE_NICE
from smartbus.stream.pipeline import GROUP_LIVE, GROUP_STORAGE
from tests.pipeline.fleet import drive_fleet
from tests.pipeline.harness import Deployment, wait_until

pytestmark = pytest.mark.integration


async def test_storage_and_live_writers_in_two_processes_store_everything_the_storage_one_at_lower_priority(
    deployment: Deployment, network: Network
) -> None:
    fleet = drive_fleet(network, deployment.tag, vehicles=5)
    await deployment.create_topics()
    storage = deployment.writer(only="storage")
    live_writer = deployment.writer(only="live")
    worker = deployment.worker()
    await deployment.produce(fleet.pings)

    async def stored() -> bool:
        return await deployment.positions() >= fleet.positions

    await wait_until("every position stored", stored, 180, storage, worker)
    buses = {p.vehicle_id for p in fleet.pings}
    live = RedisLiveStore(deployment.settings.redis_url, namespace=deployment.tag)
    try:
        async def visible() -> bool:
            return all([await live.vehicle(bus) is not None for bus in buses])

        await wait_until("every bus in Redis", visible, 60, live_writer, worker)
    finally:
        await live.close()
    assert await deployment.positions() == fleet.positions

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, live_writer.popen.pid) == ours
    assert os.getpriority(os.PRIO_PROCESS, storage.popen.pid) == min(19, ours + STORAGE_NICE)


@pytest.mark.parametrize(("only", "group"), [("storage", GROUP_STORAGE), ("live", GROUP_LIVE)])
async def test_a_writer_told_to_stop_leaves_its_consumer_group_at_once(
    deployment: Deployment, only: str, group: str
) -> None:
    """Else the group waits out its Kafka session (10 s) before a writer started in its place gets the partitions:
    at every restart or upgrade, the live boards (or the history) would stand still that long."""
    await deployment.create_topics()
    writer = deployment.writer(only=only)

    async def joined() -> bool:
        return await deployment.group_members(group) == 1

    await wait_until(f"the {only} writer in its group", joined, 60, writer)
    writer.terminate()

    assert writer.popen.returncode == 0
    assert await deployment.group_members(group) == 0
    assert "Unclosed" not in writer.log_tail()
