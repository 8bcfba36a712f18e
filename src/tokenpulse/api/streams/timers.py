"""Coarse timers for the stream hub (SPEC §7.3, §12).

When a tick reaches thousands of subscribers that are inside their ``min_interval_ms``, each
of them arms a timer for its next delivery, nearly all for the same moment. One event-loop
timer each is a heap push and a handle per subscriber per tick (about 5 % of the server's
CPU at 5 000 clients). A :class:`TimerWheel` groups them by ``resolution`` (5 ms): one loop
timer per slot, and a cheap :class:`Timer` per caller. A timer fires at the end of its slot,
never early and at most ``resolution`` late, so an interval is never cut short.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

RESOLUTION = 0.005


class Cancellable(Protocol):
    """What the hub hands back for a scheduled callback (an ``asyncio.TimerHandle`` too)."""

    def cancel(self) -> None: ...


class Timer:
    """One callback in a slot of the wheel."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerWheel:
    """Callbacks run in slots of ``resolution`` seconds, one loop timer per slot."""

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self.resolution = resolution
        self._slots: dict[int, list[Timer]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``delay`` seconds have passed (at the end of their slot)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop: the old one's slots will never run
            self._loop, self._slots = loop, {}
        slot = math.ceil((loop.time() + max(0.0, delay)) / self.resolution)
        timer = Timer(callback)
        timers = self._slots.get(slot)
        if timers is None:
            self._slots[slot] = [timer]
            loop.call_at(slot * self.resolution, self._run, slot)
        else:
            timers.append(timer)
        return timer

    def _run(self, slot: int) -> None:
        for timer in self._slots.pop(slot, ()):
            if timer.cancelled:
                continue
            try:
                timer.callback()
            except Exception:  # one failing callback must not skip the rest of its slot
                log.exception("stream timer callback failed")


__all__ = ["RESOLUTION", "Cancellable", "Timer", "TimerWheel"]
