"""Binary search of a sorted list of floats: the standard `bisect` module's two searches, for the compiled core.

Compiled by mypyc, a call out to `bisect` boxes the value sought and goes through a generic call, and the search
compares float objects; this same loop, compiled, compares the list's floats as C doubles. The matcher searches
a shape's distances a few times a fix (its window, its heading), the timeline its stops' once or twice. The
algorithm is the `bisect` module's, comparison for comparison, so the index found is the same, ties and NaN
included. (Interpreted, it is slower than the C module; the interpreted core is the fallback, for correctness,
not speed.)
"""

from __future__ import annotations


def bisect_right(values: list[float], x: float) -> int:
    """`bisect.bisect_right(values, x)`: the index after the last item <= x."""
    lo = 0
    hi = len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def bisect_left(values: list[float], x: float) -> int:
    """`bisect.bisect_left(values, x)`: the index of the first item >= x."""
    lo = 0
    hi = len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo
