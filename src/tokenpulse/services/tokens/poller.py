"""The one upstream poller for token market data: CoinMarketCap first, CoinGecko as fallback.

:class:`MarketScheduler` is the only caller of the CoinMarketCap and CoinGecko clients
(SPEC §3, "one upstream poller"): no client request ever causes an upstream call. It sees
them through the ports :class:`~tokenpulse.services.tokens.ports.CmcMarket` and
:class:`~tokenpulse.services.tokens.ports.CoinGeckoMarket`, which
:class:`~tokenpulse.sources.coinmarketcap.client.CmcClient` and
:class:`~tokenpulse.sources.coingecko.client.CoinGeckoClient` satisfy. Each poll:

1. CoinMarketCap, when it has a key and is not disabled, rate limited, backing off after a
   failure, or out of this month's credits. Its polls are ``max(MARKET_POLL_INTERVAL,
   budget interval)`` apart, the budget interval coming from :class:`CreditBudget`, so the
   month's credits are never overspent whatever ``MARKET_POLL_INTERVAL`` says.
2. Otherwise — or when that CMC poll fails — CoinGecko, every ``MARKET_POLL_INTERVAL``.
3. When CMC's reason to wait is over, the next poll tries it again; on success it serves
   again ("cmc_recovered").

Every switch is logged, counted (``tokenpulse_market_failovers_total{from,to,reason}``) and
visible in :meth:`MarketScheduler.state` (``/api/v1/sources``). Quotes go to ``sink``, a
non-blocking callable, one list per poll. :meth:`run` never raises except CancelledError.

What is tracked: the ``TRACKED_TOKENS`` symbols (CMC ``quotes?symbol=``, which returns every
coin using a symbol; on CoinGecko the top 250 filtered by symbol), else the top
``TRACK_TOP_N`` (CMC ``listings``, CoinGecko ``markets``, 250 a page).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from tokenpulse.domain.errors import BudgetExhausted, ProviderRateLimited, ProviderRejected
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.ports import CmcMarket, CoinGeckoMarket, MarketClient, PaidAnswer
from tokenpulse.sources._health import Backoff, SourceHealth
from tokenpulse.sources.coinmarketcap.credits import (
    LISTINGS_COINS_PER_CREDIT,
    QUOTES_COINS_PER_CREDIT,
    CreditBudget,
    credits_for,
)

log = structlog.get_logger(__name__)

CMC = "coinmarketcap"
COINGECKO = "coingecko"
SYMBOL_SEARCH_DEPTH = 250  # CoinGecko: tracked symbols are looked up in the top 250 (one page)
IDLE_RECHECK = 3600.0  # seconds between checks when no provider can be asked at all

REASON_PRIMARY = "cmc_primary"
REASON_RECOVERED = "cmc_recovered"
REASON_NOT_CONFIGURED = "cmc_not_configured"
REASON_NO_KEY = "cmc_no_key"
REASON_REJECTED = "cmc_rejected"
REASON_RATE_LIMITED = "cmc_rate_limited"
REASON_BUDGET = "cmc_budget_exhausted"
REASON_FAILED = "cmc_failed"

QuoteSink = Callable[[list[TokenQuote]], None]
"""Where polled quotes go: must not block (hand them to a buffer or a queue)."""


class MarketScheduler:
    """Polls CMC or CoinGecko for the tracked tokens and says which one serves and why.

    ``clock`` is wall time in unix seconds (the budget counts calendar months with it) and
    ``sleep`` waits; both are injectable, and :meth:`step` runs one round so tests can drive
    the scheduler through a simulated month without waiting.
    """

    def __init__(
        self,
        *,
        cmc: CmcMarket | None,
        coingecko: CoinGeckoMarket | None,
        budget: CreditBudget,
        poll_interval: float,
        sink: QuoteSink,
        metrics: Metrics | None,
        tracked_tokens: Sequence[str] = (),
        track_top_n: int = 100,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        cmc_retry_max: float = 900.0,
        rng: random.Random | None = None,
        name: str = "market",
    ) -> None:
        if cmc is None and coingecko is None:
            raise ValueError("MarketScheduler needs a CoinMarketCap or a CoinGecko client")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        if cmc is not None:
            if cmc.budget is None:
                cmc.attach_budget(budget)
            elif cmc.budget is not budget:
                raise ValueError("the CMC client and the scheduler must share one CreditBudget")
        self.name = name
        self.cmc = cmc
        self.coingecko = coingecko
        self.budget = budget
        self.poll_interval = poll_interval
        self.sink = sink
        self.metrics = metrics
        self.symbols = tuple(dict.fromkeys(s.strip().upper() for s in tracked_tokens if s.strip()))
        self.top_n = track_top_n
        self.health = SourceHealth(name=name, kind="poller", state="starting")
        self._clock = clock
        self._sleep = sleep
        self._cmc_backoff = Backoff(poll_interval, max(poll_interval, cmc_retry_max), rng=rng)
        self._cmc_retry_at = 0.0
        self._cmc_failure: tuple[str, str] | None = None  # (reason, detail) of the last failure
        self._last_cmc_credits = 0
        self._active: str | None = None
        self._reason = "starting"
        self._detail = ""
        self._since: float | None = None
        self._status = "starting"
        self._last_error: str | None = None
        self._last_poll_at: float | None = None
        self._next_poll_at = float("-inf")
        self._failovers = 0
        self._polls: dict[str, int] = {CMC: 0, COINGECKO: 0}
        self._unresolved: list[str] = []

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Poll until cancelled; provider faults (and bugs) are logged, never raised."""
        log.info(
            "market scheduler started",
            tracked=list(self.symbols) or f"top {self.top_n}",
            cmc="off" if self.cmc is None else ("key set" if self.cmc.has_key else "no key"),
            coingecko=self.coingecko is not None,
        )
        while True:
            try:
                delay = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stop market data for good
                log.exception("market scheduler step failed", error=str(exc))
                self._last_error = f"internal error: {exc}"
                delay = self.poll_interval
            await self._sleep(max(0.0, delay))

    async def step(self) -> float:
        """Poll if a poll is due; returns the seconds until the next one is."""
        now = self._clock()
        if now < self._next_poll_at:
            return self._next_poll_at - now
        quotes: list[TokenQuote] | None = None
        interval = self.poll_interval
        blocker = self._cmc_blocker(now)
        if blocker is None:
            quotes = await self._poll_cmc()
            if quotes is not None:
                interval = self.cmc_interval()
                reason = REASON_RECOVERED if self._active == COINGECKO else REASON_PRIMARY
                self._served(CMC, reason, "", now)
            else:
                blocker = self._cmc_blocker(self._clock()) or self._cmc_failure
        if quotes is None:
            reason, detail = blocker or (REASON_FAILED, "")
            quotes = await self._poll_coingecko()
            if quotes is not None:
                self._served(COINGECKO, reason, detail, now)
            else:
                self._nothing_served(reason, detail)
            if self.coingecko is None:  # nothing to poll until CMC may be asked again
                interval = max(interval, self._cmc_ready_in(self._clock()))
        self._last_poll_at = now
        self._next_poll_at = max(now + interval, self._clock())
        if quotes is not None:
            self._deliver(quotes)
        return max(0.0, self._next_poll_at - self._clock())

    # ------------------------------------------------------------------ CoinMarketCap

    def _cmc_blocker(self, now: float) -> tuple[str, str] | None:
        """Why CMC is not polled now (reason, detail), or None when it may be."""
        cmc = self.cmc
        if cmc is None:
            return REASON_NOT_CONFIGURED, "CoinMarketCap is not among SOURCES"
        if not cmc.has_key:
            return REASON_NO_KEY, "CMC_API_KEY is not set"
        if cmc.disabled_reason is not None:
            return REASON_REJECTED, cmc.disabled_reason
        wait = cmc.rate_limited_for()
        if wait > 0:
            said = cmc.health.last_error or "rate limited"
            until = isoformat_z(from_epoch(now + wait))
            return REASON_RATE_LIMITED, f"CoinMarketCap: {said}; asked again from {until}"
        if now < self._cmc_retry_at and self._cmc_failure is not None:
            reason, detail = self._cmc_failure
            return reason, f"{detail}; next try in {self._cmc_retry_at - now:.0f}s"
        credits = self.cmc_credits_per_poll()
        if not self.budget.can_spend(credits):
            resumes = isoformat_z(from_epoch(self.budget.resets_at))
            return REASON_BUDGET, (
                f"{self.budget.used} of {self.budget.monthly_credits} credits used this month, "
                f"a poll needs {credits}; CoinMarketCap resumes {resumes}"
            )
        return None

    def _cmc_ready_in(self, now: float) -> float:
        """Seconds until CMC may be polled again (an hour when that depends on a restart)."""
        cmc = self.cmc
        if cmc is None or cmc.disabled_reason is not None:
            return IDLE_RECHECK
        waits = [cmc.rate_limited_for(), self._cmc_retry_at - now]
        if not self.budget.can_spend(self.cmc_credits_per_poll()):
            waits.append(self.budget.resets_at - now)
        return max(0.0, *waits)

    def cmc_credits_per_poll(self) -> int:
        """Credits one CMC poll of the tracked set costs (at least what the last one cost)."""
        if self.symbols:
            estimate = credits_for(len(self.symbols), QUOTES_COINS_PER_CREDIT)
        else:
            estimate = credits_for(self.top_n, LISTINGS_COINS_PER_CREDIT)
        return max(estimate, self._last_cmc_credits)

    def cmc_interval(self) -> float:
        """Seconds between CMC polls: ``max(MARKET_POLL_INTERVAL, the budget's interval)``."""
        return max(self.poll_interval, self.budget.min_interval(self.cmc_credits_per_poll()))

    async def _poll_cmc(self) -> list[TokenQuote] | None:
        cmc = self.cmc
        assert cmc is not None
        self._polls[CMC] += 1
        result: PaidAnswer
        try:
            if self.symbols:
                result = await cmc.quotes(symbols=self.symbols)
            else:
                result = await cmc.listings(self.top_n)
        except asyncio.CancelledError:
            raise
        except ProviderRejected as exc:
            self._cmc_failure = (REASON_REJECTED, exc.message)
        except ProviderRateLimited as exc:
            self._cmc_failure = (REASON_RATE_LIMITED, exc.message)
        except BudgetExhausted as exc:
            self._cmc_failure = (REASON_BUDGET, exc.message)
        except Exception as exc:  # UpstreamError, or a bug in the client: back off, fall back
            detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._cmc_failure = (REASON_FAILED, detail)
            self._cmc_retry_at = self._clock() + self._cmc_backoff.next_delay()
            self._last_error = detail
        else:
            self._cmc_backoff.reset()
            self._cmc_retry_at = 0.0
            self._cmc_failure = None
            self._last_cmc_credits = result.status.credit_count
            return result.quotes
        self._last_error = self._cmc_failure[1]
        return None

    # ------------------------------------------------------------------ CoinGecko

    async def _poll_coingecko(self) -> list[TokenQuote] | None:
        client = self.coingecko
        if client is None:
            return None
        self._polls[COINGECKO] += 1
        try:
            if self.symbols:
                result = await client.markets(top_n=SYMBOL_SEARCH_DEPTH)
            else:
                result = await client.markets(top_n=self.top_n)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ProviderRejected, ProviderRateLimited, UpstreamError, bugs
            self._last_error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return None
        if not self.symbols:
            return result.quotes
        wanted = set(self.symbols)
        found = [quote for quote in result.quotes if quote.symbol in wanted]
        self._unresolved = sorted(wanted - {quote.symbol for quote in found})
        return found

    # ------------------------------------------------------------------ bookkeeping

    def _served(self, source: str, reason: str, detail: str, now: float) -> None:
        previous = self._active
        self._status = "degraded" if source == COINGECKO and self._cmc_expected() else "ok"
        self.health.connected = True
        self.health.state = "polling"
        self.health.detail = f"{source}: {reason}"
        self.health.heard()
        if source == CMC:
            self._last_error = None
        if previous == source:
            if source == COINGECKO:  # still the fallback, perhaps for another reason now
                self._reason, self._detail = reason, detail
            return
        self._active, self._reason, self._detail, self._since = source, reason, detail, now
        if self.metrics is not None:
            if previous is not None:
                self.metrics.market_source_active.labels(previous).set(0)
                self.metrics.market_failovers.labels(previous, source, reason).inc()
            self.metrics.market_source_active.labels(source).set(1)
        if previous is None:
            log.info("market data source selected", source=source, reason=reason, detail=detail)
        else:
            self._failovers += 1
            log.warning(
                "market data source switched",
                from_source=previous,
                to_source=source,
                reason=reason,
                detail=detail,
            )

    def _nothing_served(self, reason: str, detail: str) -> None:
        self._status = "failing"
        self._last_error = f"{reason}: {detail}"
        self.health.connected = False
        self.health.state = "failed"
        text = f"no market data source answered ({reason}: {detail})"
        self.health.detail = text
        self.health.failed("no_source", text)
        if self.metrics is not None:
            self.metrics.source_errors.labels(self.name, "no_source").inc()
        log.warning("no market data source answered", reason=reason, detail=detail)

    def _cmc_expected(self) -> bool:
        return self.cmc is not None and self.cmc.has_key

    def _deliver(self, quotes: list[TokenQuote]) -> None:
        try:
            self.sink(quotes)
        except Exception as exc:  # the sink is someone else's; keep polling
            log.exception("market data sink failed", error=str(exc))
            if self.metrics is not None:
                self.metrics.source_errors.labels(self.name, "sink").inc()

    def state(self) -> dict[str, Any]:
        """Which source serves, why and since when, the next poll, and this month's credits."""
        now = self._clock()
        credits = self.cmc_credits_per_poll()
        next_poll = None if self._next_poll_at == float("-inf") else self._next_poll_at
        return {
            "name": self.name,
            "active_source": self._active,
            "reason": self._reason,
            "detail": self._detail,
            "since": _iso(self._since),
            "status": self._status,
            "last_error": self._last_error,
            "last_poll_at": _iso(self._last_poll_at),
            "next_poll_at": _iso(next_poll) if next_poll is not None else _iso(now),
            "next_poll_in_s": round(max(0.0, (next_poll or now) - now), 3),
            "poll_interval_s": self.poll_interval,
            "cmc_interval_s": round(self.cmc_interval(), 3) if self._cmc_expected() else None,
            "failovers": self._failovers,
            "polls": dict(self._polls),
            "tracked": {
                "symbols": list(self.symbols),
                "top_n": None if self.symbols else self.top_n,
            },
            "unresolved_symbols": list(self._unresolved),
            "credits": {
                **self.budget.to_json(),
                "credits_per_poll": credits,
                "min_interval_s": round(self.budget.min_interval(credits), 3),
            },
            "sources": {
                CMC: self._cmc_state(),
                COINGECKO: _client_state(self.coingecko),
            },
        }

    def _cmc_state(self) -> dict[str, Any]:
        data = _client_state(self.cmc)
        if self.cmc is not None:
            data["has_key"] = self.cmc.has_key
            data["credits_used_since_start"] = self.cmc.credits_used
        return data


def _client_state(client: MarketClient | None) -> dict[str, Any]:
    if client is None:
        return {"configured": False}
    return {"configured": True, **client.state()}


def _iso(moment: float | None) -> str | None:
    return None if moment is None else isoformat_z(from_epoch(moment))
