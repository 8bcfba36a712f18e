"""Small test helpers: wait on a condition with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

POLL_INTERVAL = 0.01


# ASYNC109 is ignored on purpose: the deadline is the point of this polling helper.
async def wait_for(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109
    *,
    message: str | None = None,
) -> float:
    """Poll ``predicate`` (sync or async) every ~10 ms until it is truthy; fail at the deadline.

    Returns the seconds it took, so a test can also bound how fast something happened.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout:.2f}s: {what}")
        await asyncio.sleep(POLL_INTERVAL)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
