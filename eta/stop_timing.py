"""When a bus reached or left a stop, from one fix on the segment next to it.

A bus pulling away from a stop it served accelerates, and one heading for a stop it will serve brakes; in
between it does not hold a steady speed for long. We model a stop-to-stop run as a smooth easing curve:
the share f of the segment covered at the share u of its running time is
    u²(3 - 2u) from a standstill to a standstill, u²(2 - u) from a standstill to a drive-past,
    1 - (1-u)²(1 + u) from a drive-past to a standstill, and u at steady speed.
From the fix's share of the segment we get u; its reported speed, v = L f'(u) / T, gives the run's
duration T; so the segment's ends are (1 - u) T later and u T earlier. Near the segment's ends u comes out
of a few metres of GPS noise and a small speed, so callers treat `reliable` False fixes with care.
"""

from __future__ import annotations

import math
from typing import Final, Literal

Ease = Literal["both", "accel", "brake", "none"]

_WEAK_U: Final = 0.2  # nearer a segment's start than this share of its time, u is mostly GPS noise


def ease_kind(from_rest: bool, to_rest: bool) -> Ease:
    if from_rest:
        return "both" if to_rest else "accel"
    return "brake" if to_rest else "none"


def covered(u: float, kind: Ease) -> float:
    """Share of the segment covered at share `u` of its running time."""
    if kind == "both":
        return u * u * (3.0 - 2.0 * u)
    if kind == "accel":
        return u * u * (2.0 - u)
    if kind == "brake":
        w = 1.0 - u
        return 1.0 - w * w * (1.0 + u)
    return u


def pace(u: float, kind: Ease) -> float:
    """d covered / du: speed over the run's average speed."""
    if kind == "both":
        return 6.0 * u * (1.0 - u)
    if kind == "accel":
        return u * (4.0 - 3.0 * u)
    if kind == "brake":
        w = 1.0 - u
        return w * (4.0 - 3.0 * w)
    return 1.0


def time_share(share: float, kind: Ease) -> float:
    """u in [0, 1] with covered(u) = share: each curve is a cubic with one root in [0, 1], found in closed
    form (this runs for every fix that times an arrival, where 30 steps of bisection showed up)."""
    if share <= 0.0:
        return 0.0
    if share >= 1.0:
        return 1.0
    if kind == "none":
        return share
    if kind == "both":
        # the inverse of smoothstep 3u² - 2u³
        return 0.5 - math.sin(math.asin(1.0 - 2.0 * share) / 3.0)
    if kind == "accel":
        return _accel_inverse(share)
    return 1.0 - _accel_inverse(1.0 - share)  # braking is accelerating run backwards


def _accel_inverse(share: float) -> float:
    """w in [0, 1] with 2w² - w³ = share: with w = t + 2/3 the cubic is t³ - 4t/3 + (share - 16/27) = 0,
    whose root in range is the trigonometric solution's second branch."""
    cosine = -(27.0 / 16.0) * (share - 16.0 / 27.0)
    angle = math.acos(min(max(cosine, -1.0), 1.0)) / 3.0 - 2.0 * math.pi / 3.0
    return min(max(2.0 / 3.0 + (4.0 / 3.0) * math.cos(angle), 0.0), 1.0)


def segment_clock(
    along: float, length: float, speed: float, kind: Ease
) -> tuple[float, float, bool] | None:
    """(seconds since the run started, seconds until it ends, reliable) for a fix `along` metres into a
    segment of `length` metres, moving at `speed` m/s; None when the speed gives no clock (standing)."""
    if length <= 0.0 or speed <= 0.3:
        return None
    u = time_share(along / length, kind)
    rate = pace(u, kind)
    if rate <= 1e-6:
        return None
    duration = rate * length / speed
    reliable = u >= _WEAK_U or kind not in ("both", "accel")
    return u * duration, (1.0 - u) * duration, reliable


# a stop-to-stop run's timing has errors besides GPS noise (traffic, a driver's own pace): this share of the
# time still to go, so a fix near the stop is trusted over one far back even at the same speed
_MODEL_ERROR: Final = 0.1


def timed_run_end(
    along: float, length: float, speed: float, kind: Ease, sigma_m: float
) -> tuple[float, float, bool] | None:
    """(seconds until the run ends, how far off that may be, reliable) for a fix as in `segment_clock`,
    where GPS puts the fix `sigma_m` metres either way along the line: a slow fix near the stop, where a
    few metres are many seconds, is a worse clock than a fast one a little farther back."""
    clock = segment_clock(along, length, speed, kind)
    if clock is None:
        return None
    near = segment_clock(min(along + sigma_m, length), length, speed, kind)
    far = segment_clock(max(along - sigma_m, 0.0), length, speed, kind)
    spread = 0.5 * abs((far[1] if far else clock[1]) - (near[1] if near else clock[1]))
    error = (spread * spread + (_MODEL_ERROR * clock[1]) ** 2) ** 0.5
    return clock[1], error, clock[2]
