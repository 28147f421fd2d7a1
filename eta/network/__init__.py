"""A GTFS feed compiled for tracking: shapes in metres, stop distances along them, schedules in seconds.

Pure: no I/O beyond reading the feed and the on-disk cache.
"""

from eta.network.loader import feed_hash, load_network
from eta.network.model import Agency, Route, Shape, Stop, Translations, Trip
from eta.network.network import Network
from eta.network.projection import LocalProjection

__all__ = [
    "Agency",
    "LocalProjection",
    "Network",
    "Route",
    "Shape",
    "Stop",
    "Translations",
    "Trip",
    "feed_hash",
    "load_network",
]
