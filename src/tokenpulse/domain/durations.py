"""Durations written with units: ``100ms``, ``30s``, ``5m``, ``1h``, ``7d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in a duration string; raises ValueError naming the accepted form."""
    match = _DURATION.match(text)
    if match is None:
        if re.match(r"^\s*\d+(?:\.\d+)?\s*$", text):
            raise ValueError("missing unit: write e.g. 30s, 100ms, 5m, 1h or 7d")
        raise ValueError("not a duration: write a number with a unit (ms, s, m, h, d), e.g. 30s")
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration (``0.1`` -> ``100ms``, ``90`` -> ``90s``)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    millis = seconds * 1000
    return f"{int(millis)}ms" if millis.is_integer() else f"{millis:g}ms"
