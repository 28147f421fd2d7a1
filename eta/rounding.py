"""Rounding to a few decimals, exactly as the built-in `round(x, digits)`, at a fraction of its cost.

`round(x, 2)` on a float goes through a decimal string conversion (some 250 ns); the tracker rounds several
values for every ping. Scaled to hundredths, it is quicker: below 2**52 every half-way point k + 0.5 is a float,
and rounding the product to the nearest float never carries it across one. So a product strictly between two
half-way points lies on the same side of them as the exact value, and rounds to the same whole number as the
built-in rounds the exact value to; a product exactly on one (the exact value may be a hair either side) goes to
the built-in, as do values beyond the bound, NaN and infinities. The whole number divided by the scale is
correctly rounded: the very float the built-in returns.

The nearest whole number comes from `math.floor` rather than the built-in `round(scaled)`: compiled, floor is a C
call, round a call into the interpreter. The fraction left, `scaled - floor(scaled)`, is exact (the floor is 0,
or within a factor of two of the product), except for a product in (-0.5, 0): there the fraction, 1 + scaled,
may round, but never below 0.5, and to 0.5 itself only to go to the built-in. So a fraction under 0.5 means the
floor, one over it the next number up: the very whole number `round(scaled)` gives. 0.5 is a half-way point.
"""

from __future__ import annotations

import math
from typing import Final

# a list, not a tuple: compiled, a Final list is a typed constant, a tuple a dictionary look-up (see eta.native)
_SCALES: Final = [float(10**digits) for digits in range(10)]
_FAST_BELOW: Final = 2.0**52


def round_to(value: float, digits: int) -> float:
    """`round(value, digits)` for 0 <= digits < 10, the same float (sign of zero included)."""
    scale = _SCALES[digits]
    scaled = value * scale
    if -_FAST_BELOW < scaled < _FAST_BELOW:  # (NaN is not)
        below = math.floor(scaled)
        fraction = scaled - below
        if fraction != 0.5:
            whole = below if fraction < 0.5 else below + 1
            return whole / scale if whole else value * 0.0  # zero keeps the value's sign, as the built-in's does
    return round(value, digits)
