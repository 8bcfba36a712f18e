"""History answers: the one-pass JSON conversion gives the bytes the two-pass one gave.

``reference`` is the conversion the token history answers used before ``series_json``
(``_series_value`` per value, then ``t`` formatted with ``strftime``), kept here to compare.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tokenpulse.api.tokens.points import COMPUTED_SERIES_FIELDS, series_json
from tokenpulse.domain.time import isoformat_z
from tokenpulse.wire.numbers import computed_number, market_value


def old_isoformat_z(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def reference(rows: list[dict[str, Any]], strings: bool) -> list[dict[str, Any]]:
    def value(name: str, v: Any) -> Any:
        if not isinstance(v, Decimal):
            return v
        if name in COMPUTED_SERIES_FIELDS:
            return computed_number(v)
        return market_value(v, strings)

    points = [{k: value(k, v) for k, v in row.items()} for row in rows]
    return [{**p, "t": old_isoformat_z(p["t"])} for p in points]


MOMENTS = [
    datetime(2023, 10, 3, 18, 0, tzinfo=UTC),
    datetime(2023, 10, 3, 18, 0, 59, 999_999, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 1_000, tzinfo=UTC),
    datetime(2023, 10, 3, 20, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),
    datetime(2023, 10, 3, 1, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
]
VALUES = [
    Decimal("27309.802923311734"),
    Decimal("0.00000001234"),
    Decimal("1E+400"),  # no float64: null
    Decimal("-0"),
    Decimal("NaN"),
    Decimal("120000"),
    Decimal("0.02789598585057513122990843392"),
    None,
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_isoformat_z_is_the_strftime_form(moment: datetime) -> None:
    assert isoformat_z(moment) == old_isoformat_z(moment)


def rows() -> list[dict[str, Any]]:
    out = []
    for i, moment in enumerate(MOMENTS * 3):
        out.append(
            {
                "t": moment,
                "open": VALUES[i % len(VALUES)],
                "close": VALUES[(i + 3) % len(VALUES)],
                "market_cap": VALUES[(i + 5) % len(VALUES)],
                "velocity": VALUES[(i + 1) % len(VALUES)],
                "samples": i,
                "source": "coingecko" if i % 2 else None,
            }
        )
    return out


@pytest.mark.parametrize("strings", [False, True])
def test_the_answer_bytes_are_unchanged(strings: bool) -> None:
    data = rows()
    new = series_json(data, strings)
    assert orjson.dumps(new) == orjson.dumps(reference(data, strings))
    assert [list(point) for point in new] == [list(row) for row in data]  # key order kept


def test_velocity_is_computed_and_prices_are_market_values() -> None:
    (point,) = series_json(
        [{"t": MOMENTS[0], "close": Decimal("0.1"), "velocity": Decimal("0.123456789012345")}],
        strings=True,
    )
    assert point == {"t": "2023-10-03T18:00:00.000Z", "close": "0.1", "velocity": 0.123456789012}
