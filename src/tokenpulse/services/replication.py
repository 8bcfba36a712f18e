"""Scale-out reads: instances that do not ingest apply the leader's updates from the bus.

The ingest leader publishes every accepted ticker (topic ``ltp``) and token snapshot (topic
``tokens``) as JSON. Every other instance subscribes and applies them to its own price and
token services — without writing the cache or history and without publishing again, which
the leader already did — so any instance answers with the same values (SPEC §10).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson
import structlog

from tokenpulse.bus.base import EventBus
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import FLAG_STALE, TokenIdentity, TokenQuote, TokenSnapshot
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.tokens.service import TokenService

log = structlog.get_logger(__name__)

LTP_TOPIC = "ltp"
TOKENS_TOPIC = "tokens"


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value if isinstance(value, str) else repr(value))


def _time(value: Any) -> Any:
    return parse_iso(value) if isinstance(value, str) else None


def ticker_from_json(data: Mapping[str, Any]) -> Ticker:
    """The inverse of :meth:`Ticker.to_json` (exact digits: JSON numbers have ≤ 15)."""
    base, quote = str(data["pair"]).split("/", 1)
    last = _decimal(data["amount"])
    if last is None:
        raise ValueError("a ticker without an amount")
    return Ticker(
        pair=Pair(base, quote),
        last=last,
        source=str(data["source"]),
        received_at=parse_iso(str(data["received_at"])),
        as_of=_time(data.get("as_of")),
        bid=_decimal(data.get("bid")),
        ask=_decimal(data.get("ask")),
        volume_24h=_decimal(data.get("volume_24h")),
        vwap=_decimal(data.get("vwap")),
    )


def snapshot_from_json(data: Mapping[str, Any]) -> TokenSnapshot:
    """The inverse of ``snapshot_to_json(detail="full")``."""
    identity = TokenIdentity(
        id=str(data["id"]),
        symbol=str(data["symbol"]),
        name=str(data["name"]),
        cmc_id=data.get("cmc_id"),
        coingecko_id=data.get("coingecko_id"),
    )
    quote = TokenQuote(
        source=str(data["source"]),
        symbol=identity.symbol,
        name=identity.name,
        received_at=parse_iso(str(data["received_at"])),
        cmc_id=identity.cmc_id,
        coingecko_id=identity.coingecko_id,
        rank=data.get("rank"),
        price_usd=_decimal(data.get("price_usd")),
        market_cap_usd=_decimal(data.get("market_cap_usd")),
        volume_24h_usd=_decimal(data.get("volume_24h_usd")),
        circulating_supply=_decimal(data.get("circulating_supply")),
        total_supply=_decimal(data.get("total_supply")),
        max_supply=_decimal(data.get("max_supply")),
        percent_change_1h=_decimal(data.get("percent_change_1h")),
        percent_change_24h=_decimal(data.get("percent_change_24h")),
        percent_change_7d=_decimal(data.get("percent_change_7d")),
        as_of=_time(data.get("as_of")),
    )
    quality = data.get("quality") or {}
    return TokenSnapshot(
        identity=identity,
        quote=quote,
        market_cap_used=_decimal(quality.get("market_cap_used")),
        velocity=_decimal(data.get("velocity")),
        flags=frozenset(quality.get("flags", ())) - {FLAG_STALE},
    )


class Replicator:
    """Applies the bus's ``ltp`` and ``tokens`` updates while this instance does not ingest."""

    def __init__(
        self,
        bus: EventBus,
        *,
        prices: PriceService,
        tokens: TokenService,
        metrics: Metrics,
        ingesting: Callable[[], bool],
    ) -> None:
        self.bus = bus
        self.prices = prices
        self.tokens = tokens
        self.metrics = metrics
        self.ingesting = ingesting
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        self._unsubscribe = [
            self.bus.subscribe(LTP_TOPIC, self._on_ticker),
            self.bus.subscribe(TOKENS_TOPIC, self._on_token),
        ]

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _on_ticker(self, topic: str, payload: bytes) -> None:
        if self.ingesting():
            return  # our own update, already applied
        try:
            self.prices.apply_replica(ticker_from_json(orjson.loads(payload)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping a malformed ltp update", error=str(exc))
            return
        self.metrics.replicated.labels("ltp").inc()

    def _on_token(self, topic: str, payload: bytes) -> None:
        if self.ingesting():
            return
        try:
            self.tokens.apply_replica(snapshot_from_json(orjson.loads(payload)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping a malformed token update", error=str(exc))
            return
        self.metrics.replicated.labels("tokens").inc()
