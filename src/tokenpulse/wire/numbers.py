"""Numbers as JSON (SPEC §4.6): one JSON type per field, never NaN or Infinity.

Market values (prices, amounts, market caps, volumes, supplies, the provider's percent
changes) are kept as exact decimals and written in one of two forms, chosen by the caller:

* the default, a JSON **number**: the shortest repr of the float64 nearest the decimal (a
  Go or TypeScript client reads a number, always);
* ``?numbers=string``: the provider's exact decimal **string** (``"0.5141886150364228"``).

Values we compute (velocity, change_pct, means) are always numbers, rounded to
:data:`~tokenpulse.domain.numbers.COMPUTED_DIGITS` significant digits. A missing value, or
one a float64 cannot hold, is ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.numbers import round_computed

#: The query parameter (and Socket.IO subscribe field) that picks the form of market values.
NUMBERS_PARAMETER = "numbers"
NUMBERS_NUMBER = "number"
NUMBERS_STRING = "string"
NUMBERS_FORMS: tuple[str, ...] = (NUMBERS_NUMBER, NUMBERS_STRING)
# Decimal exponents a float64 holds as a normal number (about 2.2e-308 to 1.8e308).
_FLOAT_MIN_EXPONENT = -307
_FLOAT_MAX_EXPONENT = 307


def parse_numbers(value: object) -> bool:
    """``numbers=`` -> True for exact decimal strings, False for numbers (the default).

    ``None`` or an empty value is the default; anything but ``number``/``string`` (any case,
    trimmed) raises InvalidParameter naming the parameter.
    """
    if value is None:
        return False
    text = value.strip().lower() if isinstance(value, str) else None
    if text in {"", NUMBERS_NUMBER}:
        return False
    if text == NUMBERS_STRING:
        return True
    raise InvalidParameter(
        f"numbers must be one of {', '.join(NUMBERS_FORMS)}, got {value!r}",
        parameter=NUMBERS_PARAMETER,
    )


def _float(value: Decimal) -> float | None:
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def market_number(value: Decimal | None) -> float | None:
    """A market value as a JSON number: the float64 nearest ``value`` (None if it has none)."""
    if value is None or not value.is_finite():
        return None
    return _float(value)


def market_string(value: Decimal | None) -> str | None:
    """A market value as its exact decimal string (scientific notation beyond float range)."""
    if value is None or not value.is_finite():
        return None
    text = str(value)
    if "E" not in text:  # plain notation already: exactly what format(value, "f") gives
        return text
    if not value.is_zero() and not _FLOAT_MIN_EXPONENT <= value.adjusted() <= _FLOAT_MAX_EXPONENT:
        return text
    return format(value, "f")


def market_value(value: Decimal | None, strings: bool) -> float | str | None:
    """A market value in the form asked for (``strings``: exact decimal string)."""
    return market_string(value) if strings else market_number(value)


def computed_number(value: Decimal | None) -> float | None:
    """A value we computed, as a JSON number rounded to the computed digits (None if none)."""
    if value is None or not value.is_finite():
        return None
    return _float(round_computed(value))


def convert_market_fields(
    data: Mapping[str, Any], fields: frozenset[str], strings: bool
) -> dict[str, Any]:
    """``data`` with each market value in ``fields`` in the form asked for.

    Values may arrive in either form (exact strings from the bus, numbers from older
    writers); the result has one form. Other keys are copied as they are.
    """
    out = dict(data)
    for name in fields.intersection(data):
        raw = data[name]
        if raw is None or isinstance(raw, bool):
            continue
        try:
            exact = number_from_json(raw)
        except ValueError:
            out[name] = None
            continue
        out[name] = market_value(exact, strings)
    return out


def number_from_json(value: Any) -> Decimal | None:
    """The exact decimal a JSON number or decimal string holds (``None`` stays ``None``).

    A JSON number is read through its shortest repr, so its digits are the ones written.
    Raises ValueError for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    try:
        result = Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not finite")
    return result


__all__ = [
    "NUMBERS_FORMS",
    "NUMBERS_NUMBER",
    "NUMBERS_PARAMETER",
    "NUMBERS_STRING",
    "computed_number",
    "convert_market_fields",
    "market_number",
    "market_string",
    "market_value",
    "number_from_json",
    "parse_numbers",
]
