"""Exact numbers: provider decimals in, the same digits out.

Providers send prices as decimal strings (Kraken REST) or JSON numbers (Kraken WS v2).
We parse both into :class:`decimal.Decimal` so no digit is lost; writing them back as JSON is
:mod:`tokenpulse.wire.numbers`.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

#: Significant digits of the numbers we compute ourselves (SPEC §4.6: 12, well inside the 15 a
#: float64 keeps exactly, so they serialise as short JSON numbers).
COMPUTED_DIGITS = 12


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


#: 100 as a Decimal, for percentages.
HUNDRED = Decimal(100)
# 28 significant digits for intermediate results; an overflow or an invalid operation raises
# instead of producing Infinity or NaN, and is handled where it can happen.
DECIMAL_CONTEXT = Context(
    prec=28,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def round_computed(value: Decimal) -> Decimal:
    """``value`` to :data:`COMPUTED_DIGITS` significant digits, without trailing zeros or -0."""
    with localcontext(DECIMAL_CONTEXT) as ctx:
        ctx.prec = COMPUTED_DIGITS
        rounded = value.normalize(ctx)
        if rounded.is_zero():
            return Decimal(0)
        exponent = rounded.as_tuple().exponent
        if isinstance(exponent, int) and exponent > 0 and rounded.adjusted() < DECIMAL_CONTEXT.prec:
            ctx.prec = DECIMAL_CONTEXT.prec
            rounded = rounded.quantize(Decimal(1), context=ctx)  # 1.2E+3 -> 1200
        return rounded


def finite(value: Decimal | None) -> Decimal | None:
    """``value`` when it is a finite number, else None."""
    return value if value is not None and value.is_finite() else None


def positive(value: Decimal | None) -> Decimal | None:
    """``value`` when it is a finite number above zero, else None."""
    return value if value is not None and value.is_finite() and value > 0 else None
