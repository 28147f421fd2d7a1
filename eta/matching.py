"""Project a position onto a shape within a window of distances along it: the fast path of matching.

A whole-shape nearest point jumps to the wrong leg where a route passes the same street twice; searching
only the stretch the vehicle can have reached since its last known progress avoids that, and is cheaper.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from eta.network import Shape


@dataclass(frozen=True, slots=True)
class Match:
    dist: float  # metres along the shape
    offset: float  # metres from the shape


class ShapeMatcher:
    """Segment arrays of one shape, laid out for fast windowed projection."""

    __slots__ = ("shape_id", "length", "_ax", "_ay", "_dx", "_dy", "_inv_len2", "_seg_len", "_d0", "_dist")

    def __init__(self, shape: Shape) -> None:
        xy = shape.xy
        self.shape_id = shape.shape_id
        self.length = float(shape.dist[-1])
        self._ax = np.ascontiguousarray(xy[:-1, 0])
        self._ay = np.ascontiguousarray(xy[:-1, 1])
        self._dx = np.ascontiguousarray(np.diff(xy[:, 0]))
        self._dy = np.ascontiguousarray(np.diff(xy[:, 1]))
        len2 = self._dx * self._dx + self._dy * self._dy
        self._inv_len2 = np.where(len2 > 0, 1.0 / np.where(len2 > 0, len2, 1.0), 0.0)
        self._seg_len = np.sqrt(len2)
        self._d0 = np.ascontiguousarray(shape.dist[:-1])
        self._dist = shape.dist.tolist()  # a list: bisect on it beats numpy for one scalar

    def segment_range(self, lo: float, hi: float) -> tuple[int, int]:
        """Segments [i, j) that overlap the distances [lo, hi]."""
        n_seg = len(self._d0)
        i = max(0, bisect_right(self._dist, lo) - 1)
        j = min(n_seg, bisect_left(self._dist, hi) + 1)
        i = min(i, n_seg - 1)
        return i, max(j, i + 1)

    def project(self, x: float, y: float, lo: float = -np.inf, hi: float = np.inf) -> Match:
        """The nearest point of the shape between distances lo and hi (clamped to the shape)."""
        i, j = self.segment_range(lo, hi)
        return self._project(x, y, i, j, lo, hi)

    def _project(self, x: float, y: float, i: int, j: int, lo: float, hi: float) -> Match:
        px = x - self._ax[i:j]
        py = y - self._ay[i:j]
        dx = self._dx[i:j]
        dy = self._dy[i:j]
        t = (px * dx + py * dy) * self._inv_len2[i:j]
        np.clip(t, 0.0, 1.0, out=t)
        ex = px - t * dx
        ey = py - t * dy
        d2 = ex * ex + ey * ey
        k = int(d2.argmin())
        dist = float(self._d0[i + k] + t[k] * self._seg_len[i + k])
        dist = min(max(dist, lo), hi)
        return Match(dist, float(np.sqrt(d2[k])))

    def candidates(self, x: float, y: float, lo: float, hi: float, within: float) -> list[Match]:
        """Every local nearest point between lo and hi closer than `within` metres, in order along the shape.

        For the slow path (long gaps, trip inference): where the window spans several legs, the caller
        picks between them with the schedule.
        """
        i, j = self.segment_range(lo, hi)
        px = x - self._ax[i:j]
        py = y - self._ay[i:j]
        t = np.clip((px * self._dx[i:j] + py * self._dy[i:j]) * self._inv_len2[i:j], 0.0, 1.0)
        d = np.hypot(px - t * self._dx[i:j], py - t * self._dy[i:j])
        near = d <= within
        found: list[Match] = []
        k = 0
        n = len(d)
        while k < n:
            if not near[k]:
                k += 1
                continue
            run_end = k
            while run_end + 1 < n and near[run_end + 1]:
                run_end += 1
            best = k + int(d[k : run_end + 1].argmin())
            dist = float(self._d0[i + best] + t[best] * self._seg_len[i + best])
            found.append(Match(min(max(dist, lo), hi), float(d[best])))
            k = run_end + 1
        return found


class MatcherCache:
    """One ShapeMatcher per shape, built on first use."""

    def __init__(self, shapes: dict[str, Shape]) -> None:
        self._shapes = shapes
        self._matchers: dict[str, ShapeMatcher] = {}

    def get(self, shape_id: str) -> ShapeMatcher:
        matcher = self._matchers.get(shape_id)
        if matcher is None:
            matcher = ShapeMatcher(self._shapes[shape_id])
            self._matchers[shape_id] = matcher
        return matcher
