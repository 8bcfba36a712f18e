"""Quality of a token reading (SPEC §4.5): its flags, and the gate that holds a price jump.

A candidate snapshot gets the velocity flags (``velocity.py``) plus ``stale``,
``volume_spike``, ``sources_disagree`` and ``price_outlier``; :class:`OutlierGate` then keeps
the previous price until a jump is corroborated by a second, independent reading. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, Overflow, localcontext

from tokenpulse.domain.numbers import DECIMAL_CONTEXT, HUNDRED, finite, positive
from tokenpulse.domain.tokens import (
    FLAG_PRICE_OUTLIER,
    FLAG_SOURCES_DISAGREE,
    FLAG_STALE,
    FLAG_VOLUME_SPIKE,
    TokenIdentity,
    TokenQuote,
    TokenSnapshot,
)
from tokenpulse.domain.velocity import DEFAULT_POLICY, VelocityPolicy, compute_velocity, is_stale


def _within(price: Decimal, reference: Decimal, fraction: Decimal) -> bool:
    """|price − reference| ≤ fraction × reference (both > 0)."""
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
            return ctx.abs(ctx.subtract(price, reference)) <= ctx.multiply(fraction, reference)
    except Overflow:  # only for absurd magnitudes: treat as not within
        return False


def is_price_jump(previous: TokenSnapshot, quote: TokenQuote, policy: VelocityPolicy) -> bool:
    """True when ``quote``'s price moved beyond the outlier fraction from ``previous``'s
    within the outlier window (a move over a longer time is news, not an outlier)."""
    before, after = positive(previous.quote.price_usd), positive(quote.price_usd)
    if before is None or after is None:
        return False
    elapsed = abs((quote.received_at - previous.quote.received_at).total_seconds())
    if elapsed > policy.price_outlier_window:
        return False
    return not _within(after, before, policy.price_outlier_fraction)


def _exceeds(value: Decimal, factor: Decimal, base: Decimal) -> bool:
    """value > factor × base (a product too large to represent is never exceeded)."""
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
            return value > ctx.multiply(factor, base)
    except Overflow:
        return False


def _corroborates(witness: TokenSnapshot, quote: TokenQuote, policy: VelocityPolicy) -> bool:
    """True when ``witness`` is a recent reading whose price confirms ``quote``'s price."""
    price, other = positive(quote.price_usd), positive(witness.quote.price_usd)
    if price is None or other is None:
        return False
    elapsed = abs((quote.received_at - witness.quote.received_at).total_seconds())
    return elapsed <= policy.price_outlier_window and _within(
        other, price, policy.price_outlier_fraction
    )


def _disagree(quote: TokenQuote, other: TokenSnapshot, pct: Decimal) -> bool:
    """True when two sources' prices differ by more than ``pct`` % of their midpoint."""
    mine, theirs = positive(quote.price_usd), positive(other.quote.price_usd)
    if mine is None or theirs is None:
        return False
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
            spread = ctx.multiply(ctx.abs(ctx.subtract(mine, theirs)), HUNDRED * 2)
            return spread > ctx.multiply(pct, ctx.add(mine, theirs))
    except Overflow:  # only for absurd magnitudes: compare the relative spread instead
        return abs(mine - theirs) / max(mine, theirs) * HUNDRED > pct


def build_snapshot(
    identity: TokenIdentity,
    quote: TokenQuote,
    policy: VelocityPolicy = DEFAULT_POLICY,
    *,
    previous: TokenSnapshot | None = None,
    other_source: TokenSnapshot | None = None,
    volume_median: Decimal | None = None,
    now: datetime,
) -> TokenSnapshot:
    """The candidate snapshot of one quote: velocity flags plus the SPEC §4.5 quality flags.

    ``previous`` is the last accepted snapshot of this token: a price jump beyond the policy
    fraction within the window flags the candidate ``price_outlier`` unless ``other_source``
    (a recent reading from another source) confirms it. Pass the candidate through
    :meth:`OutlierGate.check`, which decides what is served. ``volume_median`` is the trailing
    median 24 h volume (``volume_spike``); ``other_source`` is also compared for
    ``sources_disagree`` when it is not stale itself.
    """
    if previous is not None and previous.id != identity.id:
        raise ValueError(f"previous snapshot is {previous.id!r}, not {identity.id!r}")
    velocity, market_cap_used, velocity_flags = compute_velocity(quote, policy)
    flags = set(velocity_flags)
    if is_stale(quote.received_at, now, policy.stale_after):
        flags.add(FLAG_STALE)
    volume, median = finite(quote.volume_24h_usd), positive(volume_median)
    if (
        volume is not None
        and median is not None
        and _exceeds(volume, policy.volume_spike_factor, median)
    ):
        flags.add(FLAG_VOLUME_SPIKE)
    witness = other_source
    if witness is not None and is_stale(witness.quote.received_at, now, policy.stale_after):
        witness = None
    if witness is not None and _disagree(quote, witness, policy.sources_disagree_pct):
        flags.add(FLAG_SOURCES_DISAGREE)
    if (
        previous is not None
        and is_price_jump(previous, quote, policy)
        and not (witness is not None and _corroborates(witness, quote, policy))
    ):
        flags.add(FLAG_PRICE_OUTLIER)
    return TokenSnapshot(
        identity=identity,
        quote=quote,
        market_cap_used=market_cap_used,
        velocity=velocity,
        flags=frozenset(flags),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What :meth:`OutlierGate.check` decided about a candidate snapshot.

    ``accept``: ``snapshot`` is the candidate (without ``price_outlier``): store it as the
    token's last accepted snapshot and serve it. Otherwise the candidate is held and
    ``snapshot`` is the previous accepted snapshot flagged ``price_outlier``: serve it and
    keep the previous one as the last accepted value.
    """

    accept: bool
    snapshot: TokenSnapshot

    @property
    def flagged(self) -> TokenSnapshot | None:
        """The previous snapshot flagged ``price_outlier`` when the candidate is held."""
        return None if self.accept else self.snapshot


class OutlierGate:
    """Keeps the previous price until a jump is corroborated (SPEC §4.5 ``price_outlier``).

    Holds at most one pending candidate per token: the first reading that jumped. A second,
    independent reading (another source, or a later ``as_of``/``received_at``) within the
    outlier fraction of the pending one and within the window releases the jump. A reading
    that does not jump accepts normally and drops the pending one. No awaits: safe to share
    between the tasks of one event loop.
    """

    def __init__(self, policy: VelocityPolicy = DEFAULT_POLICY) -> None:
        """Use the same policy as :func:`build_snapshot`."""
        self._policy = policy
        self._pending: dict[str, TokenSnapshot] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self, token_id: str) -> TokenSnapshot | None:
        """The held candidate of ``token_id``, if any."""
        return self._pending.get(token_id)

    def discard(self, token_id: str) -> None:
        """Forget the held candidate of ``token_id`` (e.g. when the token is untracked)."""
        self._pending.pop(token_id, None)

    def check(self, previous: TokenSnapshot | None, candidate: TokenSnapshot) -> Decision:
        """Accept ``candidate`` or hold it and serve ``previous`` flagged ``price_outlier``."""
        token_id = candidate.id
        if previous is None or FLAG_PRICE_OUTLIER not in candidate.flags:
            self._pending.pop(token_id, None)
            return Decision(True, _without_flag(candidate, FLAG_PRICE_OUTLIER))
        pending = self._pending.get(token_id)
        if (
            pending is not None
            and _independent(pending.quote, candidate.quote)
            and _corroborates(candidate, pending.quote, self._policy)  # near the outlier value
        ):
            del self._pending[token_id]
            return Decision(True, _without_flag(candidate, FLAG_PRICE_OUTLIER))
        self._pending[token_id] = candidate
        held = replace(previous, flags=previous.flags | {FLAG_PRICE_OUTLIER})
        return Decision(False, held)


def _independent(first: TokenQuote, second: TokenQuote) -> bool:
    """True when ``second`` is a new reading, not ``first`` polled again."""
    if first.source != second.source:
        return True
    if first.as_of is not None and second.as_of is not None:
        return second.as_of > first.as_of
    return second.received_at > first.received_at


def _without_flag(snapshot: TokenSnapshot, flag: str) -> TokenSnapshot:
    return replace(snapshot, flags=snapshot.flags - {flag}) if flag in snapshot.flags else snapshot
