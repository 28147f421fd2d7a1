"""The compiled records of a GTFS feed: stops, routes, shapes and trips as arrays in metres and seconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One text in other languages: (language tag, text) pairs sorted by tag; () when the feed translates nothing.
# The feed's own text stays in the record's plain field; these come from translations.txt.
Translations = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Agency:
    agency_id: str  # "" when the feed names a single agency without an id
    name: str
    name_translations: Translations = ()


@dataclass(frozen=True, slots=True)
class Stop:
    stop_id: str
    name: str
    lat: float  # WGS84 degrees
    lon: float
    wheelchair_boarding: int | None
    name_translations: Translations = ()


@dataclass(frozen=True, slots=True)
class Route:
    route_id: str
    short_name: str
    long_name: str
    route_type: int
    color: str | None  # hex without '#', as in the feed
    agency_id: str | None
    short_name_translations: Translations = ()
    long_name_translations: Translations = ()


@dataclass(frozen=True)
class Shape:
    shape_id: str
    xy: np.ndarray  # (n, 2) float64, metres in the network's LocalProjection
    dist: np.ndarray  # (n,) float64 cumulative metres from the first vertex, non-decreasing
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray  # (n,) degrees

    @property
    def length(self) -> float:
        return float(self.dist[-1])


@dataclass(frozen=True)
class Trip:
    trip_id: str
    route_id: str
    service_id: str
    direction_id: int | None
    block_id: str | None
    shape_id: str
    headsign: str | None
    wheelchair_accessible: int | None
    stop_ids: tuple[str, ...]
    stop_sequences: np.ndarray  # (k,) int64, the feed's values
    stop_dist: np.ndarray  # (k,) float64 metres along the shape, non-decreasing
    arrival: np.ndarray  # (k,) float64 seconds since the service day's origin (noon minus 12 h); may exceed 86400
    departure: np.ndarray  # (k,) float64, same origin
    timepoint: np.ndarray  # (k,) bool: True where the feed gave the time, False where interpolated by distance
    headsign_translations: Translations = ()

    @property
    def start_time(self) -> float:
        """Scheduled departure from the first stop, seconds since the service day's origin."""
        return float(self.departure[0])

    @property
    def end_time(self) -> float:
        """Scheduled arrival at the last stop, seconds since the service day's origin."""
        return float(self.arrival[-1])
