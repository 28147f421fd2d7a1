"""eta.bisection: the compiled core's binary searches find the index the standard bisect module finds."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from eta.bisection import bisect_left, bisect_right

# few distinct values, so that runs of equal items (a zero-length segment, two stops at one place) are common
_VALUES = st.sampled_from([-1.5, 0.0, 0.5, 2.0, 2.0, 7.25, 1e9]) | st.floats(allow_nan=False)


@settings(max_examples=2000)
@given(values=st.lists(_VALUES, max_size=40), x=_VALUES | st.just(float("nan")))
def test_the_same_index_as_the_bisect_module(values: list[float], x: float) -> None:
    values.sort()
    assert bisect_right(values, x) == bisect.bisect_right(values, x)
    assert bisect_left(values, x) == bisect.bisect_left(values, x)
