"""Pure bucket arithmetic shared by the rollup job and the series queries (no I/O).

Every raw sample becomes a one-sample :class:`Bucket`; :func:`merge` folds time-ordered
buckets into coarser ones. The same fold builds 1m from raw, 1h from 1m, 1d from 1h, and
5m/15m/4h at query time, so the rules live in one place:

* open = first price, close = last price, high/low = max/min (prices that are None skipped);
* market cap and 24 h volume = the last non-None value in the bucket;
* velocity: ``velocity_sum`` and ``velocity_count`` add up exactly (a wide context), and the
  mean is ``sum / count`` in :data:`MEAN_CONTEXT` — the same Python on every backend;
* samples add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from tokenpulse.store.history.models import epoch_seconds, from_epoch_seconds

#: Sums are kept exact: 80 digits hold any realistic sum of 28-digit velocities.
SUM_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)
#: Means are rounded to 28 significant digits (Python's default precision), half-even.
MEAN_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class Bucket:
    """An aggregate over ``[start, start + seconds)``; a raw sample is a one-sample bucket."""

    start: int  # unix seconds
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    market_cap: Decimal | None = None
    volume_24h: Decimal | None = None
    velocity_sum: Decimal | None = None
    velocity_count: int = 0
    samples: int = 1

    @property
    def velocity(self) -> Decimal | None:
        """Mean velocity over the bucket, None without any velocity sample."""
        if not self.velocity_count or self.velocity_sum is None:
            return None
        return MEAN_CONTEXT.divide(self.velocity_sum, Decimal(self.velocity_count))

    @property
    def t(self) -> datetime:
        return from_epoch_seconds(self.start)


def sample(
    at: datetime,
    price: Decimal | None,
    market_cap: Decimal | None = None,
    volume_24h: Decimal | None = None,
    velocity: Decimal | None = None,
) -> Bucket:
    """One raw sample as a bucket of its own."""
    return Bucket(
        start=epoch_seconds(at),
        open=price,
        high=price,
        low=price,
        close=price,
        market_cap=market_cap,
        volume_24h=volume_24h,
        velocity_sum=velocity,
        velocity_count=0 if velocity is None else 1,
        samples=1,
    )


def floor_to(seconds: int, bucket_seconds: int) -> int:
    """Start of the bucket that contains ``seconds`` (UTC-aligned)."""
    return seconds - seconds % bucket_seconds


def merge(parts: Iterable[Bucket], bucket_seconds: int) -> Iterator[Bucket]:
    """Fold time-ordered buckets into buckets of ``bucket_seconds``, in order."""
    current: Bucket | None = None
    for part in parts:
        start = floor_to(part.start, bucket_seconds)
        if current is None or start != current.start:
            if current is not None:
                yield current
            current = Bucket(
                start=start,
                open=part.open,
                high=part.high,
                low=part.low,
                close=part.close,
                market_cap=part.market_cap,
                volume_24h=part.volume_24h,
                velocity_sum=part.velocity_sum,
                velocity_count=part.velocity_count,
                samples=part.samples,
            )
            continue
        _absorb(current, part)
    if current is not None:
        yield current


def _absorb(into: Bucket, part: Bucket) -> None:
    if part.open is not None and into.open is None:
        into.open = part.open
    if part.close is not None:
        into.close = part.close
    if part.high is not None and (into.high is None or part.high > into.high):
        into.high = part.high
    if part.low is not None and (into.low is None or part.low < into.low):
        into.low = part.low
    if part.market_cap is not None:
        into.market_cap = part.market_cap
    if part.volume_24h is not None:
        into.volume_24h = part.volume_24h
    if part.velocity_sum is not None:
        into.velocity_sum = (
            part.velocity_sum
            if into.velocity_sum is None
            else SUM_CONTEXT.add(into.velocity_sum, part.velocity_sum)
        )
    into.velocity_count += part.velocity_count
    into.samples += part.samples


def bucket_count(start: int, end: int, bucket_seconds: int) -> int:
    """How many buckets of ``bucket_seconds`` start in ``[floor(start), end)``."""
    first = floor_to(start, bucket_seconds)
    if end <= first:
        return 0
    return -(-(end - first) // bucket_seconds)


def runs(starts: Iterable[int], *, join_within: int, max_span: int) -> list[tuple[int, int]]:
    """Group sorted bucket starts into ``(first, last)`` runs for range queries.

    A new run begins when the next start is more than ``join_within`` seconds after the
    previous one, or when the run would span more than ``max_span`` seconds, so a few
    scattered dirty buckets never make the rollup read a whole week of raw rows.
    """
    result: list[tuple[int, int]] = []
    for value in sorted(set(starts)):
        if result:
            first, last = result[-1]
            if value - last <= join_within and value - first <= max_span:
                result[-1] = (first, value)
                continue
        result.append((value, value))
    return result
