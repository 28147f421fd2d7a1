"""A local metric projection for one feed: latitude/longitude to metres east/north of the feed's centre."""

from __future__ import annotations

import math

import numpy as np

# WGS84 ellipsoid
_A = 6_378_137.0
_E2 = 6.694_379_990_14e-3


class LocalProjection:
    """Equirectangular projection on the WGS84 ellipsoid's radii of curvature at the feed's centre.

    Within 20 km of the centre, lengths are off by at most |dlat| * tan(lat0), about 0.1% at the latitudes
    of Vietnam or Queensland: far below GPS noise for matching, and consistent because every distance in
    the network (shapes, stops, pings) goes through this same projection.
    """

    __slots__ = ("lat0", "lon0", "_mx", "_my")

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = float(lat0)
        self.lon0 = float(lon0)
        phi = math.radians(self.lat0)
        w = math.sqrt(1.0 - _E2 * math.sin(phi) ** 2)
        meridional = _A * (1.0 - _E2) / w**3  # metres per radian of latitude
        prime_vertical = _A / w  # metres per radian of longitude at the equator-equivalent
        self._my = math.radians(1.0) * meridional  # metres per degree of latitude
        self._mx = math.radians(1.0) * prime_vertical * math.cos(phi)  # metres per degree of longitude

    def to_xy(self, lat: np.ndarray | float, lon: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        x = (np.asarray(lon, dtype=np.float64) - self.lon0) * self._mx
        y = (np.asarray(lat, dtype=np.float64) - self.lat0) * self._my
        return x, y

    def to_latlon(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        lat = np.asarray(y, dtype=np.float64) / self._my + self.lat0
        lon = np.asarray(x, dtype=np.float64) / self._mx + self.lon0
        return lat, lon

    def point_xy(self, lat: float, lon: float) -> tuple[float, float]:
        """Scalar fast path for one ping (no numpy overhead)."""
        return (lon - self.lon0) * self._mx, (lat - self.lat0) * self._my

    def __getstate__(self) -> tuple[float, float]:
        return (self.lat0, self.lon0)

    def __setstate__(self, state: tuple[float, float]) -> None:
        self.__init__(*state)  # type: ignore[misc]
