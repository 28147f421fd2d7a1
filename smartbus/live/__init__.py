"""Live state: the latest position of every vehicle and the upcoming arrivals at every stop.

`LiveStore` is the contract; `RedisLiveStore` (smartbus.live.redis_store) serves production and
`MemoryLiveStore` (smartbus.live.memory_store) the embedded demo. Both behave identically.
"""

from smartbus.live.board import Arrival
from smartbus.live.store import FLEET_CHANNEL, LiveStore, stop_channel

__all__ = ["FLEET_CHANNEL", "Arrival", "LiveStore", "stop_channel"]
