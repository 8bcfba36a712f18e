"""What the fake market-data providers share: a real HTTP server on loopback (uvicorn).

A fake is an ASGI app (so it also works in-process behind ``httpx.ASGITransport``) that
``async with`` serves on ``127.0.0.1`` on a free port, like ``tests/fakes/kraken_rest.py``.

Servers bind port 0 (the kernel picks, atomically). A test that needs a port number *before*
anything listens on it (a server that is down, then comes up; a restart on the same port)
takes one from :func:`free_port`: a block of ports of this xdist worker's own, below the
kernel's ephemeral range, so neither another worker nor an outgoing connection gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


#: Where :func:`free_port` takes ports from: registered/user ports the kernel never hands out
#: for ``bind(0)`` or ``connect`` (those come from ``ip_local_port_range``, 32768+ on Linux).
PORT_RANGE = (10_000, 32_000)
MAX_WORKERS = 16


def _worker_index() -> int:
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) % MAX_WORKERS if match else MAX_WORKERS - 1


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as file:
            return int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _port_block() -> Iterator[int]:
    """This worker's ports, endlessly, from a random start (so two test runs on one machine
    are unlikely to walk the same ports at the same time)."""
    low, high = PORT_RANGE
    high = min(high, _ephemeral_low())
    size = max((high - low) // MAX_WORKERS, 1)
    first = low + _worker_index() * size
    start = random.randrange(size)
    return (first + (start + step) % size for step in itertools.count())


_PORTS = _port_block()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, and that no other xdist worker
    and no outgoing connection will take: see the module docstring."""
    for _ in range(1000):
        port = next(_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone else's (another program on the machine): skip it
            return port
    raise RuntimeError("no free port in this worker's block")


@dataclass
class Fault:
    """Answer the next ``times`` requests (None: all) with ``status``, optionally a body."""

    status: int
    times: int | None
    retry_after: float | None = None
    body: bytes | None = None

    def take(self) -> bool:
        """Whether the fault applies to this request, using up one of its ``times``."""
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass
class Request:
    """One request the fake received."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class LoopbackFake:
    """Base of the fake providers: request log, faults, and the uvicorn lifecycle."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""

    def fail_with(
        self, status: int, times: int | None = 1, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` requests (None: all) with HTTP ``status``."""
        self._faults.append(Fault(status, times, retry_after))

    def reset(self) -> None:
        """Back to healthy answers (the request log is kept)."""
        self._faults.clear()

    def requests_to(self, path_part: str) -> list[Request]:
        """The logged requests whose path contains ``path_part``."""
        return [request for request in self.requests if path_part in request.path]

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._server, self._task, self.base_url = await serve_on_loopback(self, self.name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await stop_serving(self._server, self._task)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        request = Request(
            path=scope["path"],
            params=dict(parse_qsl(scope["query_string"].decode("latin-1"))),
            headers=headers,
        )
        self.requests.append(request)
        if scope["method"] != "GET":
            await respond(send, 405, b"only GET here", content_type=b"text/plain")
            return
        for fault in self._faults:
            if fault.take():
                await self.answer_fault(send, fault)
                return
        await self.handle(request, send)

    async def handle(self, request: Request, send: Send) -> None:
        """Answer a healthy request (subclasses)."""
        raise NotImplementedError

    async def answer_fault(self, send: Send, fault: Fault) -> None:
        """Answer with a fault (subclasses give it their provider's error body)."""
        body = fault.body or f"HTTP {fault.status} from the fake".encode()
        await respond(send, fault.status, body, retry_after(fault), content_type=b"text/plain")


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers: the test runner keeps Ctrl+C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_on_loopback(
    app: Callable[[Scope, Receive, Send], Awaitable[None]], name: str
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve ``app`` with uvicorn on ``127.0.0.1`` on a free port in a background task.

    Returns the server, its task and the base URL, once it accepts connections.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError(f"{name} stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not start within 10s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


async def stop_serving(server: uvicorn.Server | None, task: asyncio.Task[None] | None) -> None:
    """Stop a server started by :func:`serve_on_loopback` and wait for it to finish."""
    if server is not None:
        server.should_exit = True
    if task is not None:
        await task


def retry_after(fault: Fault) -> list[tuple[bytes, bytes]]:
    """The ``Retry-After`` header of a fault, if it has one."""
    if fault.retry_after is None:
        return []
    value = fault.retry_after
    text = str(int(value)) if float(value).is_integer() else repr(float(value))
    return [(b"retry-after", text.encode())]


def to_json(body: object) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(body, separators=(",", ":")).encode()


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    content_type: bytes = b"application/json; charset=utf-8",
) -> None:
    """Send a whole HTTP answer."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
