"""The bytes of Server-Sent Events (SPEC §7.2): one event's frame, encoded once for every
client in step."""

from __future__ import annotations

import orjson

from tokenpulse.api.streams.subscriber import Message

TRANSPORT = "sse"


def format_event(message: Message, ts_ms: int, strings: bool = False) -> bytes:
    """One SSE event: ``event``, ``id`` (the key's seq) and the JSON ``data`` line
    (``strings``: market values as exact decimal strings).

    Clients in step share the Message object, so each event is encoded once per millisecond
    and number form.
    """
    frames = message.frames
    frame = frames.get((TRANSPORT, ts_ms, strings))
    if frame is None:
        frame = b"event: %s\nid: %d\ndata: %s\n\n" % (
            message.event.encode(),
            message.seq,
            orjson.dumps(message.payload(ts_ms, strings=strings)),
        )
        if any(key[1] != ts_ms for key in frames):
            frames.clear()  # only the current millisecond is worth keeping
        frames[(TRANSPORT, ts_ms, strings)] = frame
    return frame


__all__ = ["TRANSPORT", "format_event"]
