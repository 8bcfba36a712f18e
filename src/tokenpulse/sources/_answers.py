"""Reading a provider's answer: exact JSON, ``Retry-After``, redaction, and the verdict.

Sans-I/O helpers of :class:`~tokenpulse.sources._http.ProviderClient` and of each provider's
own reading of its answers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from tokenpulse.domain.errors import ParseError

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one failed answer is classified (outcome is the metrics label)."""

    outcome: str  # http_error, transport_error, parse_error, rate_limited, rejected, <provider>
    text: str
    retryable: bool = False
    retry_after: float | None = None  # the provider's own wait; the limiter is deferred by it
    error_code: int | None = None
    provider_up: bool = False  # a definite answer (404, 400): not an outage for the breaker
    http_status: int | None = None


def decode_json_exact(content: bytes) -> Any:
    """Decode a JSON body keeping every digit of every number (floats become Decimal)."""
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ParseError("json", f"body is not JSON: {str(exc)[:200]}") from None


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if unusable.

    ``now`` is the wall-clock time (unix seconds) an HTTP date is measured from.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def redact(text: str) -> str:
    """Remove URLs (they may carry a proxy's credentials) from an error text."""
    return _URL.sub("<url>", text)


def classify_status(code: int, retry_after: float | None) -> Verdict | None:
    """The generic reading of an HTTP status: 429 slow down, 5xx/408 retry, 4xx definite."""
    if code == 200:
        return None
    text = f"HTTP {code}"
    if code == 429:
        return Verdict("rate_limited", text, retry_after=retry_after, http_status=code)
    if code >= 500 or code == 408:
        return Verdict("http_error", text, retryable=True, http_status=code)
    return Verdict("http_error", text, provider_up=True, http_status=code)
