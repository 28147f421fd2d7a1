"""Workers that die or move: exact row counts on the real Kafka, PostgreSQL and Redis.

A fleet drives distinct trips on schedule; the in-process reference engine says which positions and stop
events the pipeline must store. Whatever happens to the workers, PostgreSQL must end with exactly those.
"""

from __future__ import annotations

import pytest

from eta.network import Network
from tests.pipeline.fleet import Fleet, drive_fleet
from tests.pipeline.harness import Deployment, Process, wait_until

pytestmark = pytest.mark.integration

IN_FLIGHT = 1000


async def _all_stored(deployment: Deployment, fleet: Fleet, *logs: Process) -> None:
    async def done() -> bool:
        return (
            await deployment.positions() >= fleet.positions
            and await deployment.stop_event_rows() >= len(fleet.stop_events)
        )

    await wait_until("every position and stop event stored", done, 180, *logs)


async def test_a_worker_killed_mid_stream_loses_no_ping_and_duplicates_no_row(
    deployment: Deployment, network: Network
) -> None:
    fleet = drive_fleet(network, deployment.tag, vehicles=30)
    assert len(fleet.pings) >= 5 * IN_FLIGHT
    await deployment.create_topics()
    writer = deployment.writer()
    first = deployment.worker()
    head = len(fleet.pings) // 5
    await deployment.produce(fleet.pings[:head])

    async def under_way() -> bool:  # has committed, so it has saved snapshots to carry on from
        return await deployment.committed_pings() > 0

    await wait_until("the first worker under way", under_way, 120, first)
    # The rest arrives while it runs; it is killed mid-stream, before its next checkpoint and commit.
    await deployment.produce(fleet.pings[head:])
    first.kill()
    committed = await deployment.committed_pings()
    assert len(fleet.pings) - committed >= IN_FLIGHT, "the kill came too late to leave messages in flight"

    second = deployment.worker()
    await _all_stored(deployment, fleet, writer, second)

    assert await deployment.positions() == fleet.positions  # every ping's position, none twice
    assert await deployment.stop_event_rows() == len(fleet.stop_events)
    assert await deployment.stop_events() == fleet.stop_events  # the very arrivals of an uninterrupted run
    assert await second.metric("smartbus_tracker_snapshots_loaded_total") > 0  # carried on, not restarted cold
    # The pings read again that a restored snapshot had already taken were skipped (smartbus_pings_replayed_total;
    # how many depends on when the kill fell, none when it followed a checkpoint that saved every vehicle), not
    # taken for late fixes, which operators would see as a burst of out-of-order rejects after every restart.
    for reason in ("out_of_order", "duplicate"):
        assert await second.metric(f'smartbus_pings_rejected_total{{reason="{reason}"}}') == 0


async def test_two_workers_share_the_partitions_and_take_over_each_others_vehicles(
    deployment: Deployment, network: Network
) -> None:
    fleet = drive_fleet(network, deployment.tag, vehicles=24)
    thirds = [len(fleet.pings) * i // 3 for i in range(4)]
    await deployment.create_topics()
    writer = deployment.writer()
    a, b = deployment.worker(), deployment.worker()

    async def both_in_group() -> bool:
        return await deployment.group_members() == 2

    await wait_until("both workers in the group", both_in_group, 60, a, b)

    async def stored(n: int) -> bool:
        return await deployment.positions() >= fleet.positions_after[n]

    # Both in the group: each gets a share of the partitions, so a share of the vehicles.
    await deployment.produce(fleet.pings[: thirds[1]])
    await wait_until("the first third stored", lambda: stored(thirds[1]), 120, writer, a, b)
    assert await a.metric("smartbus_pings_total") > 0 and await b.metric("smartbus_pings_total") > 0

    # b leaves: a takes b's vehicles over, from their snapshots.
    b.terminate()
    await deployment.produce(fleet.pings[thirds[1] : thirds[2]])
    await wait_until("the second third stored", lambda: stored(thirds[2]), 120, writer, a)
    assert await a.metric("smartbus_tracker_snapshots_loaded_total") > 0

    # A new worker joins and a leaves: the newcomer takes every vehicle over, a's own and those a took from b.
    c = deployment.worker()
    a.terminate()
    await deployment.produce(fleet.pings[thirds[2] :])
    await _all_stored(deployment, fleet, writer, c)
    assert await c.metric("smartbus_tracker_snapshots_loaded_total") > 0

    assert await deployment.positions() == fleet.positions
    assert await deployment.stop_events() == fleet.stop_events

