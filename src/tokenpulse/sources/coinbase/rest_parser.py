"""Coinbase Exchange ``GET /products/{product_id}/ticker``, sans-I/O: body in, Ticker out.

Shape (capture in ``tests/fixtures/coinbase``)::

    {"ask":"73369.19","bid":"73360.34","volume":"1207.50668151","trade_id":18502105,
     "price":"73367.8","size":"0.00730812","time":"2024-03-13T11:10:41.270099Z"}

``price`` is the last trade, ``volume`` the 24 h base volume, ``time`` that trade's time.
An error answer is ``{"message":"NotFound"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.sources._feed import amount, fail, json_type, number, required, rfc3339

__all__ = ["parse_product_ticker"]


def parse_product_ticker(
    payload: object, *, pair: Pair, source: str, received_at: datetime
) -> Ticker:
    """Read one product ticker; ParseError for anything that is not one."""
    if not isinstance(payload, Mapping):
        fail("rest_body", f"expected a JSON object, got {json_type(payload)}")
    if "price" not in payload and "message" in payload:
        raise ParseError("rest_error", f"Coinbase said {str(payload['message'])[:200]!r}")
    last = number("price", required(payload, "price"))
    if last <= 0:
        fail("rest_bad_price", f"price {last} is not positive")
    return Ticker(
        pair=pair,
        last=last,
        source=source,
        received_at=received_at,
        as_of=rfc3339(payload, "time"),
        bid=amount(payload, "bid"),
        ask=amount(payload, "ask"),
        volume_24h=amount(payload, "volume"),
    )
