"""Store operations that a cancellation (shutdown, a lost lock) must not cut in half.

Cancelling an SQLAlchemy/aiosqlite call mid-flight leaves a connection that never closes
(and a process that never exits): :class:`Unbroken` runs the operation on instead, and
:meth:`Unbroken.settle` waits for it before the store is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class Unbroken:
    """Awaits store operations shielded from cancellation; :meth:`settle` waits for the last."""

    def __init__(self) -> None:
        self._in_flight: asyncio.Future[Any] | None = None

    async def __call__(self, operation: Awaitable[T]) -> T:
        task = asyncio.ensure_future(operation)
        self._in_flight = task
        return await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for the store operation a cancellation left running, if any."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task


__all__ = ["Unbroken"]
