"""The pre-joined page templates of /api/v1/tokens say exactly what per-token rendering says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import orjson
import pytest

from tokenpulse.api.tokens.pages import Page
from tokenpulse.data import known_tokens
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.sources.replay.tokens import MarketReplaySource


async def service_with(quotes_shift: timedelta | None) -> TokenService:
    service = TokenService(
        identities=IdentityRegistry(known_tokens()), policy=VelocityPolicy(), metrics=Metrics()
    )
    source = MarketReplaySource(sink=lambda q: None, interval=60, speed=60, metrics=None)
    quotes = source.next_batch()[:20]
    if quotes_shift is not None:  # give every other quote another receive time
        quotes = [
            replace(q, received_at=q.received_at - quotes_shift) if i % 2 else q
            for i, q in enumerate(quotes)
        ]
    await service.accept(quotes)
    return service


@pytest.mark.parametrize("shift", [None, timedelta(seconds=5)])
@pytest.mark.parametrize("basic", [False, True])
@pytest.mark.parametrize("later", [0.0, 0.25, 120.0])  # seconds after receipt; 120 s is stale
async def test_page_matches_per_token_rendering(
    shift: timedelta | None, basic: bool, later: float
) -> None:
    service = await service_with(shift)
    views = service.views()
    page = Page(generation=1, views=views, basic=basic, pagination=b"{}", source=b"null")
    now = max(v.received for v in views) + later
    expected = b",".join(view.render_at(now, 60.0, basic=basic) for view in views)
    rendered = page.render(now, 60.0)
    assert rendered == expected
    items = orjson.loads(b"[" + rendered + b"]")
    assert len(items) == 20
    assert all(item["stale"] is (item["age_ms"] > 60_000) for item in items)
    if not basic:
        assert all(("stale" in item["quality"]["flags"]) is item["stale"] for item in items)


def test_an_empty_page_renders_nothing() -> None:
    page = Page(generation=1, views=[], basic=False, pagination=b"{}", source=b"null")
    assert page.render(utcnow().timestamp(), 60.0) == b""


@pytest.mark.parametrize("query", [b"start=18446744073709551616", b"start=1000000001"])
def test_a_start_beyond_any_page_is_a_400_naming_start(query: bytes) -> None:
    from tokenpulse.api.tokens.queries import parse_list_query
    from tokenpulse.domain.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as caught:
        parse_list_query(query)
    assert caught.value.parameter == "start"


def test_a_cursor_beyond_any_page_is_refused() -> None:
    import base64

    from tokenpulse.api.tokens.queries import decode_cursor
    from tokenpulse.domain.errors import InvalidParameter

    huge = base64.urlsafe_b64encode(b"s:" + b"9" * 40).decode().rstrip("=")
    with pytest.raises(InvalidParameter):
        decode_cursor(huge)
