"""round_to: the tracker's quick rounding gives the very floats the built-in round does."""

from __future__ import annotations

import math
import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from eta.rounding import round_to


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@settings(max_examples=2000)
@given(value=st.floats(allow_nan=False), digits=st.integers(min_value=0, max_value=4))
@example(value=0.125, digits=2)  # ties go to the even hundredth, as the built-in's do
@example(value=0.135, digits=2)  # not a tie in binary: 0.135 is stored a little above or below
@example(value=2.675, digits=2)
@example(value=-0.001, digits=2)  # rounds to a negative zero
@example(value=1722276123.0005, digits=3)  # an epoch time in milliseconds
@example(value=1e300, digits=3)
def test_the_same_float_as_the_builtin_round(value: float, digits: int) -> None:
    assert _bits(round_to(value, digits)) == _bits(round(value, digits))


@settings(max_examples=2000)
@given(
    whole=st.integers(min_value=-(10**12), max_value=10**12),
    digits=st.integers(min_value=1, max_value=3),
)
def test_values_half_way_between_two_decimals_round_as_the_builtin_does(whole: int, digits: int) -> None:
    """The hardest cases: a value at (or one float either side of) half a unit of the last digit."""
    tie = (whole + 0.5) / 10**digits
    for value in (math.nextafter(tie, -math.inf), tie, math.nextafter(tie, math.inf)):
        assert _bits(round_to(value, digits)) == _bits(round(value, digits))


def test_not_a_number_and_infinities_are_the_builtins() -> None:
    assert math.isnan(round_to(math.nan, 2))
    assert round_to(math.inf, 1) == math.inf and round_to(-math.inf, 3) == -math.inf
