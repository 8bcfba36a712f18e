"""JSON serialisation that writes Decimal values as bare numbers with their digits.

The fakes load recordings with ``parse_float=Decimal`` and serve (slices of) them again; the
standard encoder cannot write a Decimal as a number, and round-tripping through float could
change the digits a test compares against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal


def dumps_exact(value: object) -> str:
    """Compact JSON text of ``value``; Decimals are written as numbers, digit for digit."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key))}:{dumps_exact(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(item) for item in value) + "]"
    return json.dumps(value)
