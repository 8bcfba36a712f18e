"""What the sync and the async client share: base URL, key, number form, retry policy.

With ``retries=N`` a 429 or 503 answer is retried up to N times after the ``Retry-After``
the service sent (or a doubling delay from ``retry_backoff`` when it sent none), never
waiting longer than ``max_retry_wait`` at once; then the typed error is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from tokenpulse_client import _calls as calls
from tokenpulse_client._calls import RETRY_STATUSES, Numbers, TokenFilters
from tokenpulse_client._errors import APIError
from tokenpulse_client._stream import StreamOptions, Transport

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "tokenpulse-python-client"
Amount = float | Decimal | None


class ClientConfig:
    """What both clients share: base URL, key, number form and the retry policy."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        numbers: Numbers,
        retries: int,
        retry_backoff: float,
        max_retry_wait: float,
    ) -> None:
        calls.numbers_param(numbers)  # refuse a bad value now, not at the first call
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.numbers: Numbers = numbers
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.max_retry_wait = max_retry_wait

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers

    def retry_delay(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None to give up."""
        if error.status not in RETRY_STATUSES or attempt >= self.retries:
            return None
        delay = error.retry_after
        if delay is None:
            delay = self.retry_backoff * 2**attempt
        return min(delay, self.max_retry_wait)

    def stream_options(
        self,
        pairs: Sequence[str],
        tokens: Sequence[str],
        transport: Transport,
        min_interval_ms: int | None,
        backoff_initial: float,
        backoff_max: float,
        on_status: Callable[[str], None] | None = None,
    ) -> StreamOptions:
        return StreamOptions(
            base_url=self.base_url,
            api_key=self.api_key,
            pairs=tuple(pairs),
            tokens=tuple(tokens),
            transport=transport,
            min_interval_ms=min_interval_ms,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            numbers=self.numbers,
            on_status=on_status,
        )


def filters(**values: Any) -> TokenFilters:
    """The token filters from keyword arguments."""
    return TokenFilters(**values)


__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "Amount", "ClientConfig", "filters"]
