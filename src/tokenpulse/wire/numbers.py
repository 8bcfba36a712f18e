"""Exact decimals as JSON (SPEC §4.6): the provider's digits out, never NaN or Infinity.

A value is written as a JSON number when a float64 reproduces every significant digit (up to
15), otherwise as a string, so a client never reads a value the provider did not send.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

FLOAT_SAFE_DIGITS = 15
# Decimal exponents a float64 holds as a normal number (about 2.2e-308 to 1.8e308).
_FLOAT_MIN_EXPONENT = -307
_FLOAT_MAX_EXPONENT = 307


def json_number(value: Decimal) -> float | str:
    """The JSON form of an exact decimal: a number when float64 keeps every digit."""
    digits = len(value.normalize().as_tuple().digits)
    if digits <= FLOAT_SAFE_DIGITS:
        as_float = float(value)
        # Beyond float64's range a value would become Infinity or 0.0: keep its string form.
        if math.isfinite(as_float) and (as_float != 0 or value == 0):
            return as_float
    return format(value, "f")


def number_to_json(value: Decimal | None) -> float | str | None:
    """A Decimal as JSON: digit-exact number (or string), ``None`` for missing or non-finite.

    A magnitude a float64 cannot hold (it would become Infinity or 0.0) is written as a
    string in scientific notation instead.
    """
    if value is None or not value.is_finite():
        return None
    if not value.is_zero() and not _FLOAT_MIN_EXPONENT <= value.adjusted() <= _FLOAT_MAX_EXPONENT:
        return str(value)
    return json_number(value)


def number_from_json(value: Any) -> Decimal | None:
    """The inverse of :func:`number_to_json`: the exact decimal a JSON number or string holds.

    A JSON number is read through its shortest repr, so its digits are the ones written.
    """
    if value is None:
        return None
    try:
        return Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


__all__ = ["FLOAT_SAFE_DIGITS", "json_number", "number_from_json", "number_to_json"]
