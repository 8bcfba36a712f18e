"""The hub's timer wheel: never early, grouped by slot, cancellable, isolated failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from structlog.testing import capture_logs

from tests.helpers import wait_for
from tokenpulse.api.streams.timers import RESOLUTION, TimerWheel


async def test_a_timer_never_fires_early_and_fires() -> None:
    wheel = TimerWheel()
    loop = asyncio.get_running_loop()
    fired: dict[float, float] = {}

    def record(delay: float, asked: float) -> Callable[[], None]:
        return lambda: fired.__setitem__(delay, loop.time() - asked)

    for delay in (0.0, 0.001, 0.012, 0.03):
        wheel.call_later(delay, record(delay, loop.time()))
    await wait_for(lambda: len(fired) == 4, 5, message="every timer")
    for delay, after in fired.items():
        assert after >= delay


async def test_timers_of_one_slot_share_one_loop_timer_and_run_in_order() -> None:
    wheel = TimerWheel()
    loop = asyncio.get_running_loop()
    order: list[int] = []
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]  # the loop's timer heap
    slot_start = loop.time()
    timers = [wheel.call_later(0.05, partial(order.append, i)) for i in range(1000)]
    if loop.time() - slot_start < RESOLUTION / 2:  # all asked within one slot's width
        assert len(loop._scheduled) - scheduled <= 2  # type: ignore[attr-defined]
    timers[3].cancel()
    await wait_for(lambda: len(order) == 999, 5, message="the slot's timers")
    assert order == [i for i in range(1000) if i != 3]


async def test_a_failing_callback_is_logged_and_the_rest_of_its_slot_runs() -> None:
    wheel = TimerWheel()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    with capture_logs() as logs:
        wheel.call_later(0.01, broken)
        wheel.call_later(0.01, lambda: ran.append("after"))
        await wait_for(lambda: ran, 5, message="the second callback")
    assert any(line["event"] == "stream timer callback failed" for line in logs)
