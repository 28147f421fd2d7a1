"""Where each stop of a trip lies along its shape, in metres, monotone even where the shape loops.

A whole-shape nearest-point search puts a stop on the wrong leg where a route passes the same street twice.
Instead we choose, for all stops of a trip at once, the segments that minimise the total stop-to-shape
distance under the constraint that the stops come in order along the shape (dynamic programming over
(stop, segment) with a running minimum: O(stops x segments)).
"""

from __future__ import annotations

import numpy as np

_OUT_OF_ORDER = 1e12  # cost of an impossible order: large but finite, so a degenerate shape still aligns


def cumulative_distance(xy: np.ndarray) -> np.ndarray:
    """Cumulative metres along a polyline, starting at 0."""
    steps = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1]))
    return np.concatenate(([0.0], np.cumsum(steps)))


def project_onto_segments(points: np.ndarray, xy: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every point and every segment: the distance to the segment and the along-shape metres there.

    Returns two (points, segments) arrays.
    """
    a = xy[:-1]
    d = xy[1:] - a
    seg_len2 = np.einsum("ij,ij->i", d, d)
    safe = np.where(seg_len2 > 0.0, seg_len2, 1.0)
    rel = points[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("psj,sj->ps", rel, d) / safe, 0.0, 1.0)
    t = np.where(seg_len2 > 0.0, t, 0.0)
    nearest = a[None, :, :] + t[:, :, None] * d[None, :, :]
    offset = np.hypot(points[:, None, 0] - nearest[:, :, 0], points[:, None, 1] - nearest[:, :, 1])
    seg_len = np.sqrt(seg_len2)
    along = dist[:-1][None, :] + t * seg_len[None, :]
    return offset, along


def stop_distances(stop_xy: np.ndarray, xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Metres along the shape for each stop, non-decreasing, each stop on the leg the order implies."""
    k = len(stop_xy)
    if len(xy) < 2:
        return np.zeros(k)
    offset, along = project_onto_segments(stop_xy, xy, dist)
    n_seg = offset.shape[1]
    positions = np.arange(n_seg)
    cost = np.empty_like(offset)
    back = np.empty((k, n_seg), dtype=np.int64)  # the previous stop's segment on the best path
    cost[0] = offset[0]
    for i in range(1, k):
        prev = cost[i - 1]
        running = np.minimum.accumulate(prev)
        # index of the running minimum: the latest position where prev equals the running min
        best_idx = np.maximum.accumulate(np.where(prev <= running, positions, 0))
        strictly_before = np.concatenate(([_OUT_OF_ORDER], running[:-1]))
        strictly_before_idx = np.concatenate(([0], best_idx[:-1]))
        # both stops on one segment: allowed only in order along it
        same = np.where(along[i - 1] <= along[i] + 1e-9, prev, _OUT_OF_ORDER)
        stay = same <= strictly_before
        cost[i] = offset[i] + np.minimum(same, strictly_before)
        back[i] = np.where(stay, positions, strictly_before_idx)
    segments = np.empty(k, dtype=np.int64)
    segments[-1] = int(np.argmin(cost[-1]))
    for i in range(k - 1, 0, -1):
        segments[i - 1] = back[i][segments[i]]
    result = along[np.arange(k), segments]
    return np.maximum.accumulate(result)  # only a degenerate shape gets here out of order
