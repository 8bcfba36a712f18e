"""History rows as the JSON values of the token history answers (one pass per answer)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tokenpulse.domain.time import isoformat_z
from tokenpulse.wire.numbers import computed_number, market_value

#: History fields we compute (a rollup's velocity is a mean): numbers in every form.
COMPUTED_SERIES_FIELDS = frozenset({"velocity"})


def series_json(rows: Sequence[dict[str, Any]], strings: bool) -> list[dict[str, Any]]:
    """History rows as JSON values, in one pass: ``t`` as ISO 8601 text, velocity (a mean in
    rollups) as a computed number, other decimals as market values; keys keep their order.

    The store hands back one Decimal object for equal columns (open = high = low = close in
    a bucket of one sample), so each object is converted once per call: ``rows`` keeps every
    object alive meanwhile, so an ``id`` names one object for the whole call.
    """
    market: dict[int, Any] = {}
    computed: dict[int, Any] = {}
    points = []
    for row in rows:
        point: dict[str, Any] = {}
        for name, value in row.items():
            if name == "t":
                point[name] = isoformat_z(value)
            elif not isinstance(value, Decimal):
                point[name] = value
            else:
                done = computed if name in COMPUTED_SERIES_FIELDS else market
                key = id(value)
                if key not in done:
                    done[key] = (
                        computed_number(value) if done is computed else market_value(value, strings)
                    )
                point[name] = done[key]
        points.append(point)
    return points


__all__ = ["COMPUTED_SERIES_FIELDS", "series_json"]
