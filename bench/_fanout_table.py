"""The fan-out benchmark's table: its columns and their Markdown rendering."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


COLUMNS = [
    ("transport", "transport"),
    ("clients", "N"),
    ("pairs", "keys per client"),
    ("rate", "updates/s per key"),
    ("connected", "subscribed"),
    ("messages_per_s", "delivered msg/s"),
    ("send_p50_ms", "p50 ms (ts)"),
    ("send_p99_ms", "p99 ms (ts)"),
    ("tick_p50_ms", "p50 ms (tick)"),
    ("tick_p99_ms", "p99 ms (tick)"),
    ("lost", "lost"),
    ("conflated", "conflated"),
    ("server_cpu_pct", "server CPU %"),
    ("server_cpu_us_per_msg", "server CPU µs/msg"),
    ("server_fanout_us_per_msg", "fan-out CPU µs/msg"),
    ("client_cpu_pct", "load gen CPU %"),
    ("client_cpu_us_per_msg", "load gen CPU µs/msg"),
    ("rss_idle_kib", "RSS idle MiB"),
    ("rss_loaded_kib", "RSS with N MiB"),
]


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key.startswith("rss") and value is not None:
        return f"{value / 1024:.1f}"
    if key == "pairs":
        return str(len(str(value).split(",")))
    return _fmt(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "| "
        + " | ".join("---" if k in {"transport", "pairs"} else "---:" for k, _ in COLUMNS)
        + " |",
    ]
    lines += ["| " + " | ".join(_cell(row, k) for k, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)
