"""Redis helpers shared by the Redis bus and the Redis cache (no client, no I/O).

Its own layer, just below ``sources | store | bus``: both the bus and the store may import it
while staying independent of each other.
"""

from __future__ import annotations

import re

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def glob_escape(text: str) -> str:
    """``text`` with Redis glob metacharacters escaped, for a literal SCAN MATCH prefix."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)
