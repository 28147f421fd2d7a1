"""Where each stop of a trip lies along its shape, in metres, monotone even where the shape loops.

A whole-shape nearest-point search puts a stop on the wrong leg where a route passes the same street twice.
Instead we choose, for all stops of a trip at once, the segments that minimise the total stop-to-shape
distance under the constraint that the stops come in order along the shape (dynamic programming over
(stop, segment) with a running minimum: O(stops x segments)).
"""

from __future__ import annotations

import numpy as np


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
    cost = np.empty_like(offset)
    best_before = np.empty((k, n_seg), dtype=np.int64)  # argmin of cost[i-1][:s+1]
    cost[0] = offset[0]
    for i in range(1, k):
        prev = cost[i - 1]
        running = np.minimum.accumulate(prev)
        # index of the running minimum: the latest position where prev equals the running min
        is_min = prev <= running
        idx = np.where(is_min, np.arange(n_seg), 0)
        best_before[i] = np.maximum.accumulate(idx)
        cost[i] = offset[i] + running
    segments = np.empty(k, dtype=np.int64)
    segments[-1] = int(np.argmin(cost[-1]))
    for i in range(k - 1, 0, -1):
        segments[i - 1] = best_before[i][segments[i]]
    result = along[np.arange(k), segments]
    return np.maximum.accumulate(result)  # two stops on one segment in the wrong order: keep them in order
