"""Request limits (SPEC §8.5): 431 past the header caps, 413 past the body cap, chunked too."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import OFFLINE, serve_process
from tests.server import app_settings, running_app


async def test_too_many_headers_or_header_bytes_get_431_in_the_path_shape(
    http: httpx.AsyncClient,
) -> None:
    settings = app_settings(**OFFLINE, max_header_count=20, max_header_bytes=4096)
    async with running_app(settings) as app:
        many = {f"x-extra-{index}": "1" for index in range(25)}
        ltp = await http.get(f"{app.base_url}/api/v1/ltp", headers=many)
        assert ltp.status_code == 431
        assert ltp.json()["error"] == "HEADERS_TOO_LARGE"  # the Go service's flat shape
        assert ltp.headers["x-request-id"]
        big = {"x-big": "a" * 5000}
        pairs = await http.get(f"{app.base_url}/api/v1/pairs", headers=big)
        assert pairs.status_code == 431
        assert pairs.json()["error"]["code"] == "HEADERS_TOO_LARGE"
        assert pairs.json()["request_id"] == pairs.headers["x-request-id"]
        # Just under both caps: served.
        fine = {"x-fine": "a" * 3000, **{f"x-extra-{index}": "1" for index in range(10)}}
        assert (await http.get(f"{app.base_url}/api/v1/pairs", headers=fine)).status_code == 200


async def _chunked_upload(port: int, path: str, total: int) -> tuple[bytes, int]:
    """POST a chunked body of ``total`` bytes in 64 KiB chunks while reading the answer;
    returns (the answer's head, bytes of body sent when it came)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n".encode()
    )
    answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
    sent = 0
    try:
        while sent < total and not answer.done():
            writer.write(chunk)
            await writer.drain()
            sent += 64 * 1024
    except ConnectionError:
        pass  # the server answered and closed: the answer is already in
    try:
        head = await asyncio.wait_for(answer, 10)
    finally:
        writer.close()
    return head, sent


async def test_a_chunked_body_over_the_cap_is_refused_without_reading_it_all() -> None:
    async with running_app(app_settings(**OFFLINE, max_body_bytes=64 * 1024)) as app:
        port = int(app.base_url.rsplit(":", 1)[1])
        head, sent = await _chunked_upload(port, "/api/v1/ltp/refresh", 13 * 1024 * 1024)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert sent < 4 * 1024 * 1024, f"{sent} bytes sent before the 413"


async def test_a_content_length_over_the_cap_is_413(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE, max_body_bytes=2048)) as app:
        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh", content=b"x" * 4096)
        assert response.status_code == 413
        assert response.json()["error"] == "PAYLOAD_TOO_LARGE"
        small = await http.post(f"{app.base_url}/api/v1/ltp/refresh", content=b"x" * 1024)
        assert small.status_code != 413


@pytest.mark.parametrize("http_server", ["uvicorn", "granian"])
def test_the_server_refuses_a_64_mb_header_quickly_without_buffering_it(
    tmp_path: Path, http_server: str
) -> None:
    """Either production server cuts a 64 MB head short: uvicorn (httptools) answers 431 with
    our error body; Granian (hyper) answers a bare 431 once the head outgrows its buffer and
    closes at once, so the client may see the reset instead (heads under that buffer reach
    the edge and get the body)."""
    with serve_process(tmp_path, SERVER=http_server) as server:
        before = server.rss_kib()

        async def send_huge_header() -> tuple[bytes, int, float]:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /api/v1/ltp HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            answer = asyncio.ensure_future(reader.read(65536))
            sent, block = 0, b"a" * (256 * 1024)
            try:
                while sent < 64 * 1024 * 1024 and not answer.done():
                    writer.write(block)
                    await writer.drain()
                    sent += len(block)
            except OSError:
                pass  # the server closed the connection: the answer is already in
            try:
                head = await asyncio.wait_for(answer, 10)
            except OSError:  # reset: the server closed with our bytes unread (no lingering)
                head = b""
            with contextlib.suppress(OSError):
                writer.close()
            return head, sent, time.monotonic() - started

        async def four() -> list[tuple[bytes, int, float]]:
            return await asyncio.gather(*(send_huge_header() for _ in range(4)))

        for head, sent, took in asyncio.run(four()):
            if http_server == "uvicorn":
                assert head.startswith(b"HTTP/1.1 431"), head[:200]
                assert b'"HEADERS_TOO_LARGE"' in head
            else:  # hyper answers 431 and closes; the reset may overtake the answer
                assert head == b"" or head.startswith(b"HTTP/1.1 431"), head[:200]
            # cut short: far less than the 64 MB arrived (loopback buffers and a busy
            # machine let several MB through before the answer is read)
            assert sent < 16 * 1024 * 1024
            assert took < 5
        assert server.rss_kib() - before < 32 * 1024, "memory grew by more than 32 MiB"
        with httpx.Client(timeout=5) as client:  # still serving
            assert client.get(f"{server.base_url}/health").status_code == 200
