"""Rounding to a few decimals, exactly as the built-in `round(x, digits)`, at a fraction of its cost.

`round(x, 2)` on a float goes through a decimal string conversion (some 250 ns); the tracker rounds several
values for every ping. Scaled, a value rounds to the same whole number of hundredths as the built-in does
unless the scaled product lies next to a tie (half a hundredth), where the product's own rounding error could
decide it: those few go to the built-in. The division of that whole number by the scale is correctly rounded,
so it is the very float the built-in returns.
"""

from __future__ import annotations

_SCALES = {digits: float(10**digits) for digits in range(10)}
# a product of magnitude y is off the exact one by at most half an ulp of y, some 1.1e-16 * |y|: well inside this
_TIE_MARGIN_REL = 1e-15
_TIE_MARGIN_ABS = 1e-9


def round_to(value: float, digits: int) -> float:
    """`round(value, digits)` for 0 <= digits < 10, the same float (sign of zero included)."""
    scale = _SCALES[digits]
    scaled = value * scale
    try:
        whole = round(scaled)
    except (ValueError, OverflowError):  # NaN or infinite: the built-in knows what to return
        return round(value, digits)
    if abs(abs(scaled - whole) - 0.5) <= _TIE_MARGIN_ABS + _TIE_MARGIN_REL * abs(scaled):
        return round(value, digits)
    if whole > 9007199254740992 or whole < -9007199254740992:  # beyond 2**53 the division is not exact
        return round(value, digits)
    return whole / scale if whole else value * 0.0  # zero keeps the value's sign, as the built-in does
