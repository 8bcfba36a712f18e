"""What a series request may ask for: granularities, fields, the point limit (pure)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.store.history._buckets import bucket_count
from tokenpulse.store.history.models import EPOCH, ONE_SECOND, epoch_seconds

#: At most this many points per series response (SPEC §6).
MAX_POINTS = 10_000

TOKEN_RAW_FIELDS = (
    "price",
    "market_cap",
    "volume_24h",
    "circulating_supply",
    "velocity",
    "source",
    "origin",
)
TOKEN_ROLLUP_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "market_cap",
    "volume_24h",
    "velocity",
    "samples",
)
LTP_RAW_FIELDS = ("price", "source", "origin")
LTP_ROLLUP_FIELDS = ("open", "high", "low", "close", "samples")


@dataclass(frozen=True, slots=True)
class Granularity:
    """A series resolution: ``seconds`` per point, read from the ``stored`` rollup."""

    name: str
    seconds: int  # 0 for raw
    stored: int  # bucket_seconds of the table read; 0 for raw

    @property
    def raw(self) -> bool:
        return self.seconds == 0

    @property
    def derived(self) -> bool:
        """Built at query time by merging stored buckets (5m, 15m, 4h)."""
        return self.seconds != self.stored


GRANULARITIES: dict[str, Granularity] = {
    g.name: g
    for g in (
        Granularity("raw", 0, 0),
        Granularity("1m", 60, 60),
        Granularity("5m", 300, 60),
        Granularity("15m", 900, 60),
        Granularity("1h", 3600, 3600),
        Granularity("4h", 14400, 3600),
        Granularity("1d", 86400, 86400),
    )
}


def parse_granularity(name: str) -> Granularity:
    """The granularity called ``name``; InvalidParameter naming the valid ones otherwise."""
    found = GRANULARITIES.get(name)
    if found is None:
        raise InvalidParameter(
            f"unknown granularity {name!r}: use one of {', '.join(GRANULARITIES)}",
            parameter="granularity",
        )
    return found


def select_fields(
    fields: Sequence[str] | None, allowed: Sequence[str], granularity: Granularity
) -> tuple[str, ...]:
    """The fields to return, in ``allowed`` order; ``t`` is always returned and may be named."""
    if not fields:
        return tuple(allowed)
    wanted = set()
    for name in fields:
        if name == "t":
            continue
        if name not in allowed:
            raise InvalidParameter(
                f"unknown field {name!r} for granularity={granularity.name}: "
                f"valid fields are t, {', '.join(allowed)}",
                parameter="fields",
                details={"field": name, "valid": ["t", *allowed]},
            )
        wanted.add(name)
    return tuple(name for name in allowed if name in wanted)


def bounds(start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` as whole unix seconds (start floored, end rounded up)."""
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise InvalidParameter(f"{name} must carry a timezone (UTC)", parameter=name)
    if end <= start:
        raise InvalidParameter("from must be before to", parameter="from")
    first = epoch_seconds(start)
    last = -(-(end - EPOCH) // ONE_SECOND)
    return first, last


def finest_granularity(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> str:
    """The finest rollup granularity whose buckets in ``[start, end)`` fit ``max_points``.

    A default for requests that name none (raw is left out: its size depends on the data).
    """
    first, last = bounds(start, end)
    for g in GRANULARITIES.values():
        if not g.raw and bucket_count(first, last, g.seconds) <= max_points:
            return g.name
    return "1d"


def check_point_limit(
    points: int, granularity: Granularity, start: int, end: int, max_points: int
) -> None:
    """Raise InvalidParameter when ``points`` exceeds ``max_points``, naming what would fit.

    The message names the finest coarser granularity that fits the range and lists every
    coarser one that does (the coarsest included), so a client can pick one.
    """
    if points <= max_points:
        return
    coarser = [g for g in GRANULARITIES.values() if g.seconds > granularity.seconds]
    fits = [g.name for g in coarser if bucket_count(start, end, g.seconds) <= max_points]
    if fits:
        advice = f"use granularity={fits[0]}"
        if len(fits) > 1:
            advice += f" (coarser ones that also fit: {', '.join(fits[1:])})"
    else:
        advice = "narrow the range"
    raise InvalidParameter(
        f"granularity={granularity.name} gives {points} points for this range, more than "
        f"the {max_points} allowed; {advice}",
        parameter="granularity",
        details={
            "points": points,
            "max_points": max_points,
            "suggested_granularity": fits[0] if fits else None,
            "fitting_granularities": fits,
        },
    )


def as_dicts(names: tuple[str, ...], columns: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Columns (one list per name) as one dict per row; the hot loop of every series query."""
    return _dict_builder(names)(columns)


@functools.lru_cache(maxsize=128)
def _dict_builder(
    names: tuple[str, ...],
) -> Callable[[Sequence[Sequence[Any]]], list[dict[str, Any]]]:
    """A function building ``{name: value, ...}`` literals from columns, made once per names.

    A dict display with constant keys is built about twice as fast as ``dict(zip(names,
    row))`` (10 080 rows of up to nine fields per 7-day 1m series). ``names`` are the
    whitelisted field names (:func:`select_fields`), checked again here; they enter the
    generated code only as string literals.
    """
    if not names or not all(isinstance(name, str) and name.isidentifier() for name in names):
        raise ValueError(f"not field names: {names!r}")
    values = [f"v{index}" for index in range(len(names))]
    display = ", ".join(f"{name!r}: {value}" for name, value in zip(names, values, strict=True))
    source = (
        "def build(columns):\n"
        f"    return [{{{display}}} for {', '.join(values)}, in zip(*columns)]\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<series rows {','.join(names)}>", "exec"), namespace)  # noqa: S102
    build: Callable[[Sequence[Sequence[Any]]], list[dict[str, Any]]] = namespace["build"]
    return build
