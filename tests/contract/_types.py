"""The JSON-type census the number-policy tests share (SPEC §4.6).

Every leaf of a JSON document gets a path (``data[].price_usd``, ``updates[].data.amount``,
``window.points[][1]`` for positional rows) and its JSON type; ``null`` is absence, not a
type. A field has one JSON type when every non-null value at its path has the same type.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

#: Market values (last path segment): numbers by default, exact strings with numbers=string.
MARKET = frozenset(
    {
        "amount",
        "bid",
        "ask",
        "volume_24h",
        "vwap",
        "price_usd",
        "market_cap_usd",
        "volume_24h_usd",
        "circulating_supply",
        "total_supply",
        "max_supply",
        "percent_change_1h",
        "percent_change_24h",
        "percent_change_7d",
        "market_cap_used",
        # history rows
        "price",
        "open",
        "high",
        "low",
        "close",
        "market_cap",
    }
)
#: Values we compute: numbers, whatever the client asked.
COMPUTED = frozenset({"velocity", "change_pct", "mean", "reference_velocity"})
#: Positional rows: ``[t, price, velocity]`` (compact history), ``[t, velocity]`` (window).
ROW_MARKET = ("history.points[][1]",)
ROW_COMPUTED = ("history.points[][2]", "window.points[][1]")


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"not a JSON leaf: {value!r}")


def leaves(value: Any, path: str = "", *, row: bool = False) -> Iterator[tuple[str, str]]:
    """``(path, type)`` of every non-null leaf; lists inside lists are rows (by index)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]" if row else f"{path}[]", row=True)
    elif value is not None:
        yield path, json_type(value)


class Census:
    """The types seen at each path, across every document added."""

    def __init__(self) -> None:
        self.types: dict[str, set[str]] = defaultdict(set)
        self.documents = 0

    def add(self, document: Any, prefix: str = "") -> None:
        self.documents += 1
        for path, kind in leaves(document, prefix):
            self.types[path].add(kind)

    def check(self, *, strings: bool) -> None:
        """One type per path; market values numbers (or strings), computed values numbers."""
        mixed = {p: sorted(t) for p, t in self.types.items() if len(t) > 1}
        assert not mixed, f"fields with more than one JSON type: {mixed}"
        market = "string" if strings else "number"
        for path, kinds in self.types.items():
            field = path.rsplit(".", 1)[-1]
            if field in MARKET or path.endswith(ROW_MARKET):
                assert kinds == {market}, f"{path} is {sorted(kinds)}, strings={strings}"
            if field in COMPUTED or path.endswith(ROW_COMPUTED):
                assert kinds == {"number"}, f"{path} is {sorted(kinds)}"

    def paths(self, field: str) -> list[str]:
        """The paths whose last segment is ``field`` (to prove the census saw it)."""
        return [p for p in self.types if p.rsplit(".", 1)[-1] == field]
