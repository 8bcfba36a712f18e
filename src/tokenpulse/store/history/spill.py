"""The spill file: history rows that could not be written at shutdown, replayed at the next
start (SPEC §13, ``HISTORY_SPILL_PATH``).

One JSON object per line, ``{"table": "ltp_samples" | "token_snapshots", "row": {…}}``, the
row in the exact-decimal JSON of :mod:`tokenpulse.wire` (the same bytes the bus carries), so
nothing is rounded on the way through the file. Lines are appended: a file left by an
earlier run that could not replay it is kept, not overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.tokens import TokenSnapshot
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.tokens import TokenView, snapshot_from_json

LTP_TABLE = "ltp_samples"
TOKENS_TABLE = "token_snapshots"


def save_rows(path: Path, tokens: Iterable[TokenSnapshot], ltp: Iterable[Ticker]) -> int:
    """Append the rows to ``path`` (created with its folder) and fsync; returns rows written."""
    lines = [
        b'{"table":"' + TOKENS_TABLE.encode() + b'","row":' + TokenView.of(s).body + b"}\n"
        for s in tokens
    ]
    lines += [
        b'{"table":"' + LTP_TABLE.encode() + b'","row":' + LtpView.of(t).body + b"}\n" for t in ltp
    ]
    if not lines:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as file:
        file.writelines(lines)
        file.flush()
        os.fsync(file.fileno())
    return len(lines)


def load_rows(path: Path) -> tuple[list[TokenSnapshot], list[Ticker], int]:
    """The rows in ``path``: token snapshots, LTP readings, and lines that were unreadable
    (a torn last line after a crash, say)."""
    tokens: list[TokenSnapshot] = []
    ltp: list[Ticker] = []
    bad = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            row = entry["row"]
            if entry["table"] == LTP_TABLE:
                ltp.append(LtpView.from_body(orjson.dumps(row)).ticker)
            elif entry["table"] == TOKENS_TABLE:
                tokens.append(snapshot_from_json(row))
            else:
                bad += 1
        except (ValueError, KeyError, TypeError):
            bad += 1
    return tokens, ltp, bad


__all__ = ["LTP_TABLE", "TOKENS_TABLE", "load_rows", "save_rows"]
