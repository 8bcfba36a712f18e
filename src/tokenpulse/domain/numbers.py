"""Exact numbers: provider decimals in, the same digits out.

Providers send prices as decimal strings (Kraken REST) or JSON numbers (Kraken WS v2).
We parse both into :class:`decimal.Decimal` so no digit is lost; writing them back as JSON is
:mod:`tokenpulse.wire.numbers`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_decimal(value: object, *, field: str) -> Decimal:
    """Parse a provider number (str, int, float or Decimal) into a finite Decimal.

    Raises ValueError naming ``field`` for anything that is not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{field}: {value!r} is not a number") from None
    elif isinstance(value, float):
        # repr() is the shortest string that round-trips: the digits the JSON had.
        result = Decimal(repr(value))
    else:
        raise ValueError(f"{field}: expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not finite")
    return result
