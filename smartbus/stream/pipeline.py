"""The three stages wired together over one bus: ETA worker, storage writer, live-state writer.

`smartbus demo` runs it on the in-process bus; the integration tests run the very same assembly on
Kafka; in production each stage is its own process (`smartbus eta`, `smartbus writer`). With a `learned`
keeper the predictor starts from, and saves, what it learned before (smartbus.stream.learned_state).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eta.engine import Engine
from eta.network import Network
from eta.prediction import LearningPredictor
from eta.worker import WALKS_PER_S, EtaStage, WalkAllowance
from smartbus import messages
from smartbus.bus.base import Consumer, Producer
from smartbus.live import LiveStore
from smartbus.live.notices import NoticeStore
from smartbus.stream.learned_state import LearnedStateKeeper
from smartbus.stream.loop import BatchHandler, Checkpoint, run_stage
from smartbus.stream.overrides import OverrideFeed
from smartbus.stream.sinks import LiveSink, StorageSink

OUTPUT_TOPICS = (messages.TOPIC_VEHICLE_STATES, messages.TOPIC_STOP_EVENTS, messages.TOPIC_PREDICTIONS)
GROUP_ETA = "smartbus-eta"
GROUP_STORAGE = "smartbus-storage"
GROUP_LIVE = "smartbus-live"


@dataclass
class Pipeline:
    network: Network
    make_producer: Callable[[], Producer]
    make_consumer: Callable[[Sequence[str], str], Consumer]
    storage: StorageSink
    live: LiveStore
    notices: NoticeStore | None = None  # operators' notices: the ETA stage follows their trip overrides
    clock: Callable[[], float] = time.time  # the service's clock, against which notices expire
    learned: LearnedStateKeeper | None = None

    async def run(self, stop: asyncio.Event) -> None:
        producer = self.make_producer()
        overrides = OverrideFeed(self.notices, clock=self.clock) if self.notices is not None else None
        predictor = await self.learned.start() if self.learned is not None else LearningPredictor(self.network)
        walks = WalkAllowance(WALKS_PER_S)
        eta_stage = EtaStage(Engine(self.network), predictor, producer, overrides=overrides, walks=walks)
        stages: dict[str, tuple[Consumer, BatchHandler, Checkpoint | None]] = {
            "eta": (self.make_consumer([messages.TOPIC_PINGS], GROUP_ETA), eta_stage.handle, eta_stage.checkpoint),
            "storage": (
                self.make_consumer([*OUTPUT_TOPICS, messages.TOPIC_PINGS_REJECTED], GROUP_STORAGE),
                self.storage.handle,
                None,
            ),
            "live": (self.make_consumer(OUTPUT_TOPICS, GROUP_LIVE), LiveSink(self.live).handle, None),
        }
        await producer.start()
        for consumer, _, _ in stages.values():
            await consumer.start()
        try:
            await asyncio.gather(
                *(
                    run_stage(name, consumer, handle, stop, checkpoint=checkpoint)
                    for name, (consumer, handle, checkpoint) in stages.items()
                )
            )
        finally:
            for consumer, _, _ in stages.values():
                await consumer.stop()
            await producer.stop()
            if self.learned is not None:
                await self.learned.close()
