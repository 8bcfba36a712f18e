"""Validation of what stream clients send: subscribe payloads, intervals, pairs and token ids.

Pure functions shared by the Socket.IO gateway and the SSE routes. Every problem raises a
:class:`~tokenpulse.domain.errors.TokenpulseError` whose ``code`` goes back to the client
(``INVALID_PARAMETER``, ``UNSUPPORTED_PAIR``, ``TOKEN_NOT_FOUND``, ``LIMIT_EXCEEDED``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from tokenpulse.api.streams.hub import LimitExceeded, StreamLimits
from tokenpulse.bus.topics import AGGREGATE_SUFFIX
from tokenpulse.domain.errors import (
    AmbiguousToken,
    Forbidden,
    InvalidParameter,
    RateLimited,
    TokenNotFound,
    Unauthorized,
    UnsupportedPair,
)
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.wire.numbers import NUMBERS_FORMS, NUMBERS_PARAMETER, parse_numbers

#: Maps what a client wrote to a canonical token id; None when there is no such token.
#: May raise TokenpulseError (e.g. AmbiguousToken) to answer with that error.
TokenResolver = Callable[[str], str | None]

MAX_ID_LENGTH = 100

#: Client -> server events, each answered by an ack (the AsyncAPI document lists them).
CLIENT_EVENTS: tuple[str, ...] = (
    "subscribe_pair",
    "unsubscribe_pair",
    "subscribe_token",
    "unsubscribe_token",
    "subscribe_all",
    "unsubscribe_all",
    "resume",
)
INTERNAL_ERROR = "INTERNAL_ERROR"
#: Every ``error.code`` an ack can carry.
ACK_ERROR_CODES: tuple[str, ...] = (
    InvalidParameter.code,
    UnsupportedPair.code,
    TokenNotFound.code,
    AmbiguousToken.code,
    LimitExceeded.code,
    RateLimited.code,
    Unauthorized.code,
    INTERNAL_ERROR,
)
#: Every ``code`` a refused handshake (``connect_error``) can carry.
CONNECT_ERROR_CODES: tuple[str, ...] = (
    Unauthorized.code,
    Forbidden.code,
    RateLimited.code,
    LimitExceeded.code,
    InvalidParameter.code,
)
_TOKEN_ID = re.compile(r"^[a-z0-9][a-z0-9._\-]*$")


def accept_any_token(text: str) -> str | None:
    """The default resolver: any well-formed id (lower-case slug) is accepted as written."""
    candidate = text.strip().lower()
    if not candidate or len(candidate) > MAX_ID_LENGTH or not _TOKEN_ID.match(candidate):
        raise InvalidParameter(f"invalid token id {text[:MAX_ID_LENGTH]!r}", parameter="token_id")
    return candidate


def names(
    payload: Any, single: str, plural: str, *, limit: int, required: bool = True
) -> list[str]:
    """``{single: "x"}`` or ``{plural: ["x", …]}`` -> the non-empty strings, in order."""
    if not isinstance(payload, dict):
        raise InvalidParameter(
            f"expected an object such as {{{single!r}: …}} or {{{plural!r}: […]}}",
            parameter=single,
        )
    if single in payload and plural in payload:
        raise InvalidParameter(f"send either {single!r} or {plural!r}, not both", parameter=single)
    if single in payload:
        values: Any = [payload[single]]
        name = single
    elif plural in payload:
        values, name = payload[plural], plural
        if not isinstance(values, list):
            raise InvalidParameter(f"{plural!r} must be a list of strings", parameter=plural)
    elif required:
        raise InvalidParameter(f"missing {single!r} or {plural!r}", parameter=single)
    else:
        return []
    if len(values) > limit:
        raise LimitExceeded(f"at most {limit} {plural} per request")
    if not values and required:
        raise InvalidParameter(f"{plural!r} must not be empty", parameter=plural)
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
            raise InvalidParameter(
                f"{name!r} must hold non-empty strings of at most {MAX_ID_LENGTH} characters",
                parameter=name,
            )
        out.append(value)
    return out


def interval_ms(value: Any, limits: StreamLimits) -> int | None:
    """A client-chosen ``min_interval_ms`` within the bounds; None means adaptive."""
    if value is None:
        return None
    low, high = limits.min_interval_ms, limits.max_interval_ms
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameter(
            f"min_interval_ms must be a whole number from {low} to {high}",
            parameter="min_interval_ms",
        )
    return value


def numbers_form(payload: Any) -> bool | None:
    """``numbers`` of a subscribe payload: True for exact decimal strings, False for numbers,
    None when the payload does not say (the connection keeps its form)."""
    if not isinstance(payload, dict) or payload.get(NUMBERS_PARAMETER) is None:
        return None
    value = payload[NUMBERS_PARAMETER]
    if not isinstance(value, str) or value.strip().lower() not in NUMBERS_FORMS:
        raise InvalidParameter(
            f"numbers must be one of {', '.join(NUMBERS_FORMS)}", parameter=NUMBERS_PARAMETER
        )
    return parse_numbers(value)


def parse_interval_text(text: str | None, limits: StreamLimits) -> int | None:
    """``min_interval_ms`` from a query string."""
    if text is None or text == "":
        return None
    if not text.strip().isdigit():
        return interval_ms(text, limits)  # raises with the bounds
    return interval_ms(int(text), limits)


def resolve_pairs(
    texts: list[str], registry: PairRegistry, supported: Collection[Pair]
) -> list[str]:
    """Any spelling -> canonical supported pairs (``BTC/USD``), duplicates removed.

    ``BTC/USD@aggregate`` (any spelling of the pair) names the cross-venue aggregate's stream.
    """
    out: dict[str, None] = {}
    for text in texts:
        base, at, kind = text.strip().partition("@")
        if at and kind.lower() != AGGREGATE_SUFFIX[1:]:
            raise InvalidParameter(
                f"{text.strip()[:50]!r}: only @aggregate may follow a pair", parameter="pair"
            )
        pair = registry.resolve(base)
        if pair not in supported:
            served = ", ".join(str(p) for p in sorted(supported))
            raise UnsupportedPair(
                f"pair {pair} is not supported; supported pairs: {served}", parameter="pair"
            )
        out[str(pair) + (AGGREGATE_SUFFIX if at else "")] = None
    return list(out)


def resolve_tokens(texts: list[str], resolver: TokenResolver) -> list[str]:
    """Client-written token references -> canonical ids, duplicates removed."""
    out: dict[str, None] = {}
    for text in texts:
        token_id = resolver(text)
        if token_id is None:
            raise TokenNotFound(f"no token {text.strip()[:MAX_ID_LENGTH]!r}")
        out[token_id] = None
    return list(out)


__all__ = [
    "ACK_ERROR_CODES",
    "CLIENT_EVENTS",
    "CONNECT_ERROR_CODES",
    "INTERNAL_ERROR",
    "TokenResolver",
    "accept_any_token",
    "interval_ms",
    "names",
    "numbers_form",
    "parse_interval_text",
    "resolve_pairs",
    "resolve_tokens",
]
