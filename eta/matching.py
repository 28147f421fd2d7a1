"""Project a position onto a shape within a window of distances along it: the fast path of matching.

A whole-shape nearest point jumps to the wrong leg where a route passes the same street twice; searching
only the stretch the vehicle can have reached since its last known progress avoids that, and is cheaper.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from eta.bisection import bisect_left, bisect_right
from eta.network import Shape

# One segment of a shape as ShapeMatcher walks it: (ax, ay, dx, dy, 1/len^2, len, start dist).
_Segment = tuple[float, float, float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class Match:
    dist: float  # metres along the shape
    offset: float  # metres from the shape


class ShapeMatcher:
    """Segment arrays of one shape, laid out for fast windowed projection."""

    __slots__ = (
        "shape_id",
        "length",
        "_ax",
        "_ay",
        "_dx",
        "_dy",
        "_inv_len2",
        "_seg_len",
        "_d0",
        "_dist",
        "_walk",
        "_twin",
        "_headings",
    )

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
        # Typed lists (numpy's tolist is untyped): compiled, the walk's arithmetic is then on C doubles, not
        # generic number objects.
        self._dist: list[float] = shape.dist.tolist()  # a list: a binary search on it beats numpy for one scalar
        # per segment (ax, ay, dx, dy, 1/len^2, len, start dist) as plain floats: the walk touches a handful
        # of segments per fix, where numpy's per-call overhead would dominate
        self._walk: list[_Segment] = list(
            zip(
                self._ax.tolist(),
                self._ay.tolist(),
                self._dx.tolist(),
                self._dy.tolist(),
                self._inv_len2.tolist(),
                self._seg_len.tolist(),
                self._d0.tolist(),
                strict=True,
            )
        )

        self._twin = _passes_near_itself(shape.xy, shape.dist)
        # each segment's compass bearing, worked out once: the tracker asks for three of them on most fixes
        self._headings = [math.degrees(math.atan2(dx, dy)) % 360.0 for _, _, dx, dy, _, _, _ in self._walk]

    def has_twin(self, along: float) -> bool:
        """Whether another stretch of the line, well before or after `along`, passes near it (a loop round
        a block, a street driven out and back): only there can a fix be put on the wrong pass."""
        k = int(along / _TWIN_STEP_M) if along > 0.0 else 0
        twin = self._twin
        return twin[k if k < len(twin) else len(twin) - 1]

    def locate(self, x: float, y: float, lo: float, hi: float, guess: float) -> tuple[float, float]:
        """(distance along, offset) of the nearest point on the shape found by walking from `guess`.

        Starts at the segment under `guess` and follows the line towards the fix until the fix projects
        inside a segment (a local nearest point), never leaving [lo, hi]. Where a route passes near itself,
        the walk stays on the leg the guess is on, unlike a whole-shape nearest point.
        """
        dist = self._dist
        walk = self._walk
        last = len(walk) - 1
        i_lo = bisect_right(dist, lo) - 1
        i_lo = 0 if i_lo < 0 else (last if i_lo > last else i_lo)
        i_hi = bisect_left(dist, hi)
        i_hi = last if i_hi > last else (i_lo if i_hi < i_lo else i_hi)
        i = bisect_right(dist, guess) - 1
        i = i_lo if i < i_lo else (i_hi if i > i_hi else i)
        ax, ay, dx, dy, inv, seg, d0 = walk[i]
        t = ((x - ax) * dx + (y - ay) * dy) * inv
        if t > 1.0:
            while i < i_hi:
                nxt = walk[i + 1]
                t_next = ((x - nxt[0]) * nxt[2] + (y - nxt[1]) * nxt[3]) * nxt[4]
                if t_next <= 0.0:
                    break  # the fix lies off the outside of a corner: the vertex is nearest
                i, t = i + 1, t_next
                ax, ay, dx, dy, inv, seg, d0 = nxt
                if t <= 1.0:
                    break
        elif t < 0.0:
            while i > i_lo:
                prv = walk[i - 1]
                t_prev = ((x - prv[0]) * prv[2] + (y - prv[1]) * prv[3]) * prv[4]
                if t_prev >= 1.0:
                    break
                i, t = i - 1, t_prev
                ax, ay, dx, dy, inv, seg, d0 = prv
                if t >= 0.0:
                    break
        t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        ex = x - ax - t * dx
        ey = y - ay - t * dy
        best_d2 = ex * ex + ey * ey
        along = d0 + t * seg
        # a curve has several local nearest points close together: any nearer one lies within about twice
        # the offset along the line, so look at the few segments there. (math.pow(d2, 0.5), not d2**0.5: the same
        # C pow, but compiled, ** on floats is a generic number call; math.sqrt might differ in the last bit.)
        reach = 2.0 * math.pow(best_d2, 0.5) + 5.0
        # Those segments are a few either side of i: stepped to from there rather than found by binary searches of
        # the whole line. k is the last segment starting at or before along - reach (bisect_right(dist, ...) - 1),
        # but not before i_lo; k_end the first starting at or after along + reach (bisect_left), but not after
        # i_hi. `along` lies on segment i, so the one is at or before i and the other after it: a step each way.
        near_start = along - reach
        k = i
        while k > i_lo and dist[k] > near_start:
            k -= 1
        near_end = along + reach
        k_end = i
        while k_end < i_hi and dist[k_end] < near_end:
            k_end += 1
        while k <= k_end:
            if k != i:
                ax, ay, dx, dy, inv, seg, d0 = walk[k]
                t = ((x - ax) * dx + (y - ay) * dy) * inv
                t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
                ex = x - ax - t * dx
                ey = y - ay - t * dy
                d2 = ex * ex + ey * ey
                if d2 < best_d2:
                    best_d2, along = d2, d0 + t * seg
            k += 1
        along = lo if along < lo else (hi if along > hi else along)
        return along, math.pow(best_d2, 0.5)

    def heading_at(self, along: float) -> float:
        """Compass bearing of the shape (degrees clockwise from north) at `along` metres: the way a bus on
        it is going there."""
        i = bisect_right(self._dist, along) - 1
        headings = self._headings
        last = len(headings) - 1
        return headings[0 if i < 0 else (last if i > last else i)]

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

    def candidates(
        self, x: float, y: float, lo: float, hi: float, within: float, near: tuple[int, ...] | None = None
    ) -> list[Match]:
        """Every local nearest point between lo and hi closer than `within` metres, in order along the shape.

        For the slow path (long gaps, trip inference, a doubtful fix where the line passes near itself): where
        the window spans several legs, the caller picks between them with the schedule.

        `near`: the indices of every segment that may pass within `within` of the fix, ascending (a spatial
        index's: TrackingContext.shapes_near); only those of the window are looked at, with the same result. A
        bus's first fix on a trip is matched over half an hour of its timetable, hundreds of segments.
        """
        i, j = self.segment_range(lo, hi)
        segments: Sequence[int] = range(i, j)
        if near is not None:
            # (the standard bisect: eta.bisection's searches lists of floats; this is the slow path, once a trip fit)
            segments = near[bisect.bisect_left(near, i) : bisect.bisect_left(near, j)]
        walk = self._walk
        found: list[Match] = []
        # A segment by segment walk, not numpy over the window: a window is a few dozen segments, where numpy's
        # per-call overhead was most of the cost. The offset is the C library's hypot of the two components, as
        # numpy's hypot computed it when this was array code (abs of a complex calls that same hypot; math.hypot
        # is Python's own and differs in the last bit now and then), so the matches are the same to the bit.
        # The squared distance, cheaper, screens out the segments that are clearly farther than `within`.
        screen = within * within * (1.0 + 1e-9)
        run_end = -2  # the last segment near the fix: the next one continues its run, one local nearest point
        run_best = 0.0
        for k in segments:
            ax, ay, dx, dy, inv, seg, d0 = walk[k]
            px = x - ax
            py = y - ay
            t = (px * dx + py * dy) * inv
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
            ex = px - t * dx
            ey = py - t * dy
            if ex * ex + ey * ey > screen:
                continue
            offset = abs(complex(ex, ey))
            if offset > within:
                continue
            if k == run_end + 1:
                if offset < run_best:  # (on a tie, the run's first nearest, as argmin)
                    run_best = offset
                    found[-1] = Match(min(max(d0 + t * seg, lo), hi), offset)
            else:
                run_best = offset
                found.append(Match(min(max(d0 + t * seg, lo), hi), offset))
            run_end = k
        return found

    def candidates_on(self, x: float, y: float, segments: tuple[int, ...], within: float) -> list[Match]:
        """`candidates` over the whole shape, looking only at the given segments (ascending indices; those
        a spatial index says pass near the fix): one nearest point per run of consecutive near segments."""
        walk = self._walk
        found: list[Match] = []
        run_end = -2
        best_d2 = 0.0
        best_along = 0.0
        limit = within * within
        for j in segments:
            ax, ay, dx, dy, inv, seg, d0 = walk[j]
            t = ((x - ax) * dx + (y - ay) * dy) * inv
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
            ex = x - ax - t * dx
            ey = y - ay - t * dy
            d2 = ex * ex + ey * ey
            if d2 > limit:
                continue
            if j == run_end + 1 and found:
                if d2 < best_d2:
                    best_d2, best_along = d2, d0 + t * seg
                    found[-1] = Match(best_along, math.pow(best_d2, 0.5))
            else:
                best_d2, best_along = d2, d0 + t * seg
                found.append(Match(best_along, math.pow(best_d2, 0.5)))
            run_end = j
        return found


_TWIN_STEP_M: Final = 25.0  # resolution of ShapeMatcher.has_twin along the line
_TWIN_RADIUS_M: Final = 100.0  # another pass this near ...
_TWIN_APART_M: Final = 200.0  # ... and at least this far along the line from here is a twin


def _passes_near_itself(xy: np.ndarray, dist: np.ndarray) -> list[bool]:
    """For every `_TWIN_STEP_M` along the line, whether a point of it at least `_TWIN_APART_M` away along
    the line lies within `_TWIN_RADIUS_M` (points every step, bucketed in a grid of that radius)."""
    length = float(dist[-1]) if len(dist) else 0.0
    steps = np.arange(0.0, length + _TWIN_STEP_M, _TWIN_STEP_M)
    px = np.interp(steps, dist, xy[:, 0]) if len(dist) else np.zeros(1)
    py = np.interp(steps, dist, xy[:, 1]) if len(dist) else np.zeros(1)
    cells: dict[tuple[int, int], list[int]] = {}
    cx = np.floor(px / _TWIN_RADIUS_M).astype(int).tolist()
    cy = np.floor(py / _TWIN_RADIUS_M).astype(int).tolist()
    for k, cell in enumerate(zip(cx, cy, strict=True)):
        cells.setdefault(cell, []).append(k)
    apart = int(_TWIN_APART_M / _TWIN_STEP_M)
    radius2 = _TWIN_RADIUS_M * _TWIN_RADIUS_M
    xs, ys = px.tolist(), py.tolist()
    twin = [False] * len(xs)
    for k in range(len(xs)):
        if twin[k]:
            continue
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in cells.get((cx[k] + dx, cy[k] + dy), ()):
                    if abs(j - k) >= apart and (xs[j] - xs[k]) ** 2 + (ys[j] - ys[k]) ** 2 <= radius2:
                        twin[k] = twin[j] = True
                        break
    return twin


class MatcherCache:
    """One ShapeMatcher per shape, built on first use."""

    def __init__(self, shapes: dict[str, Shape]) -> None:
        self._shapes = shapes
        self._matchers: dict[str, ShapeMatcher] = {}

    def __len__(self) -> int:
        return len(self._matchers)

    def get(self, shape_id: str) -> ShapeMatcher:
        matcher = self._matchers.get(shape_id)
        if matcher is None:
            matcher = ShapeMatcher(self._shapes[shape_id])
            self._matchers[shape_id] = matcher
        return matcher

    def warm(self) -> None:
        """Build every shape's matcher now (a few milliseconds each) rather than on the first ping on it."""
        for shape_id in self._shapes:
            self.get(shape_id)
