"""The SSE dispatcher: one pass per loop iteration writes every marked stream once, with one
``ts`` for the pass; a stream whose delivery fails is woken to write for itself."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.helpers import wait_for
from tokenpulse.api.streams.sse_wire import SseDispatcher


class Stream:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.delivered: list[int] = []
        self.woken = 0

    def deliver(self, ts_ms: int) -> None:
        if self.fail:
            raise RuntimeError("broken stream")
        self.delivered.append(ts_ms)

    def wake(self) -> None:
        self.woken += 1


async def test_one_pass_writes_every_marked_stream_once_with_one_ts() -> None:
    dispatcher = SseDispatcher()
    streams = [Stream() for _ in range(1000)]
    for stream in streams:
        dispatcher.mark(stream)
        dispatcher.mark(stream)  # marked twice before the pass: written once
    assert not any(stream.delivered for stream in streams)  # not before the loop turns
    await wait_for(lambda: all(stream.delivered for stream in streams), 5)
    stamps = {stream.delivered[0] for stream in streams}
    assert len(stamps) == 1
    assert all(len(stream.delivered) == 1 for stream in streams)
    dispatcher.mark(streams[0])
    await wait_for(lambda: len(streams[0].delivered) == 2, 5)
    assert all(len(stream.delivered) == 1 for stream in streams[1:])


async def test_a_failing_stream_is_woken_and_the_others_are_written() -> None:
    dispatcher = SseDispatcher()
    broken, healthy = Stream(fail=True), Stream()
    with capture_logs() as logs:
        dispatcher.mark(broken)
        dispatcher.mark(healthy)
        await wait_for(lambda: healthy.delivered, 5)
    assert broken.woken == 1
    assert any("SSE delivery failed" in line["event"] for line in logs)
    assert len(healthy.delivered) == 1
