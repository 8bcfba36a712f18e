"""Query parameters several routes share, documented once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

#: ``?numbers=string``: market values as the provider's exact decimal strings (REST and SSE).
NumbersQuery = Annotated[
    str | None,
    Query(
        description="`string`: every market value as the provider's exact decimal string "
        "instead of a JSON number (default `number`)",
        examples=["string"],
    ),
]

__all__ = ["NumbersQuery"]
