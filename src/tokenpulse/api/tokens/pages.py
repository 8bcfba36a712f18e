"""One page of a token list query as pre-joined bytes (``GET /api/v1/tokens``).

A page is built once per update (query shape x generation) from the tokens' ready-made JSON
(:class:`~tokenpulse.wire.tokens.TokenView`); a request only joins in the age.
"""

from __future__ import annotations

from tokenpulse.domain.freshness import age_ms, is_stale
from tokenpulse.wire.tokens import TokenView


class Page:
    """One page of a list query, ready to serve until the next update.

    A poll stamps every quote of a batch with one receive time, so the tokens of a page
    usually share one age: the page is then two pre-joined byte templates (fresh and stale)
    and a request only joins them with its age — no per-token work.
    """

    __slots__ = (
        "_received",
        "_segments",
        "basic",
        "generation",
        "pagination",
        "source",
        "strings",
        "views",
    )

    def __init__(
        self,
        *,
        generation: int,
        views: list[TokenView],
        basic: bool,
        pagination: bytes,
        source: bytes,
        strings: bool = False,
    ) -> None:
        """``strings``: market values as exact decimal strings (``numbers=string``)."""
        self.generation = generation
        self.views = views
        self.basic = basic
        self.pagination = pagination
        self.source = source
        self.strings = strings
        received = {view.received for view in views}
        self._received = received.pop() if len(received) == 1 else None
        self._segments: dict[bool, list[bytes]] = {}
        if self._received is not None:
            for stale in (False, True):
                self._segments[stale] = self._template(stale)

    def _template(self, stale: bool) -> list[bytes]:
        """The page split at each token's age: ``age.join(segments)`` is the page."""
        flag = b"true" if stale else b"false"
        segments: list[bytes] = []
        tail = b""
        for view in self.views:
            form = view.form(self.strings)
            head = form.basic_head if self.basic else form.head
            segments.append(tail + (b"," if tail else b"") + head + b',"age_ms":')
            if self.basic:
                tail = b',"stale":' + flag + b"}"
            else:
                quality = form.quality_stale if stale else form.quality_fresh
                tail = b',"stale":' + flag + b',"quality":' + quality + b"}"
        segments.append(tail)
        return segments if self.views else [b""]

    def render(self, now: float, stale_after: float) -> bytes:
        """The ``data`` array's contents at unix time ``now``."""
        if self._received is None:
            return b",".join(
                v.render_at(now, stale_after, basic=self.basic, strings=self.strings)
                for v in self.views
            )
        age = age_ms(self._received, now)
        return str(age).encode().join(self._segments[is_stale(age, stale_after)])


__all__ = ["Page"]
