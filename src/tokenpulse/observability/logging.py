"""structlog set-up: JSON lines in production, readable text in a terminal.

Per-request lines (the access log) go through :func:`hot_logger`: with JSON logs it renders
the same line structlog would, with orjson, and hands it to a background thread that writes in
batches, so a request pays microseconds for its line; with text logs (a terminal) it is plain
structlog. The access line goes further (:func:`hot_sink`): the request only enqueues a tuple
of raw values, and the background thread renders the lines in bulk.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog

# The hot-line writer, set by configure_logging when lines are JSON and info is on.
_hot: dict[str, _LineWriter] = {}
FLUSH_INTERVAL = 0.05  # seconds between two batched writes of hot lines


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog and the standard library (uvicorn, httpx) through one renderer."""
    numeric = logging.getLevelName(level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if fmt == "text":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("httpx", "httpcore", "websockets", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    previous = _hot.pop("writer", None)
    if previous is not None:
        previous.close()
    if fmt == "json" and numeric <= logging.INFO:
        _hot["writer"] = _LineWriter(handler)


class HotLogger(Protocol):
    """What the access log needs of a logger: one ``info`` line with fields."""

    def info(self, event: str, **fields: Any) -> Any: ...


# A record for the writer thread: a tuple whose first item renders the whole tuple to a line.
Record = tuple[Any, ...]


def hot_sink() -> Callable[[Record], None] | None:
    """With JSON logs, the ``put`` of the writer thread: it takes a tuple ``(render, *values)``
    and calls ``render(record)`` in the writer thread; ``None`` with text logs."""
    writer = _hot.get("writer")
    return writer.put if writer is not None else None


def iso_timestamp(ns: int, _cache: list[Any] = [None, ""]) -> str:  # noqa: B006
    """``datetime.fromtimestamp(ns / 1e9, UTC).isoformat()`` with ``Z``, as structlog writes
    it (microseconds, truncated, omitted when zero); the date part is cached per second."""
    second, micro = divmod(ns // 1000, 1_000_000)
    if _cache[0] != second:
        _cache[1] = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        _cache[0] = second
    prefix: str = _cache[1]
    return f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"


def iso_timestamp_bytes(ns: int, _cache: list[Any] = [None, b""]) -> bytes:  # noqa: B006
    """:func:`iso_timestamp` as bytes, for lines filled into byte templates."""
    second, micro = divmod(ns // 1000, 1_000_000)
    if _cache[0] != second:
        _cache[1] = datetime.fromtimestamp(second, UTC).isoformat()[:19].encode()
        _cache[0] = second
    prefix: bytes = _cache[1]
    return b"%b.%06dZ" % (prefix, micro) if micro else prefix + b"Z"


def hot_logger(name: str) -> HotLogger:
    """A logger for lines written on every request (cheap with JSON logs, see above)."""
    writer = _hot.get("writer")
    if writer is not None:
        return _JsonLineLogger(name, writer)
    return structlog.get_logger(name)  # type: ignore[no-any-return]


class _JsonLineLogger:
    """Renders ``info`` lines as structlog's JSON renderer does, without its processor chain."""

    __slots__ = ("_name", "_writer")

    def __init__(self, name: str, writer: _LineWriter) -> None:
        self._name = name
        self._writer = writer

    def info(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        fields["level"] = "info"
        fields["logger"] = self._name
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._writer.put(orjson.dumps(fields, default=str) + b"\n")


def _render_failure(exc: Exception) -> bytes:
    fields = {
        "error": repr(exc),
        "event": "log line failed to render",
        "level": "error",
        "logger": __name__,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)


class _LineWriter:
    """Writes whole lines to the log handler's stream from a background thread, in batches
    every ``FLUSH_INTERVAL``; lines left at exit are flushed."""

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self._handler = handler
        self._queue: queue.SimpleQueue[bytes | Record | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.put = self._queue.put
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        # Wakes on a timer, not per line: a thread woken for every line would take the GIL
        # from the event loop once per request.
        while True:
            closing = self._closing.wait(FLUSH_INTERVAL)
            batch = []
            while True:
                try:
                    line = self._queue.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    continue
                if isinstance(line, tuple):
                    try:
                        line = line[0](line)
                    except Exception as exc:  # a line that cannot render must not stop the writer
                        line = _render_failure(exc)
                batch.append(line)
            if batch:
                self._write(b"".join(batch))
            if closing:
                return

    def _write(self, data: bytes) -> None:
        stream = self._handler.stream
        with self._handler.lock or threading.Lock():
            try:
                stream.flush()
                buffer = getattr(stream, "buffer", None)
                if buffer is not None:
                    buffer.write(data)
                    buffer.flush()
                else:
                    stream.write(data.decode())
                    stream.flush()
            except (OSError, ValueError):  # a closed stream at exit: nothing left to tell
                pass

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        if self._thread.is_alive():
            self._closing.set()
            self._thread.join(5)
