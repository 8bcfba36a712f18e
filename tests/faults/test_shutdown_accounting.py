"""Shutdown with the history store down (SPEC §13): the rows still buffered are counted in
one error line per shutdown, spilled to ``HISTORY_SPILL_PATH`` and replayed at the next
start, and the exit code says so. Real ``tokenpulse serve`` processes, PostgreSQL behind
the fault proxy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from tests.fakes._loopback import free_port
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults.proxy import TcpProxy
from tests.faults.test_leadership import Processes, _is
from tests.helpers import in_memory_settings, wait_for
from tokenpulse.runtime import create_runtime
from tokenpulse.store.history.models import ltp_samples

DEADLINE = 20.0
PRICE = Decimal("75555.25")


async def _count_price(url: str) -> int:
    return await _count(url, PRICE)


def _log_lines(path: Path, event: str) -> list[dict[str, object]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            lines.append(entry)
    return lines


async def test_rows_left_at_shutdown_are_counted_spilled_and_replayed(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    pg_proxy: TcpProxy,
    proxied_pg_url: str,
    pg_test_url: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORT": str(port),
        "SOURCES": "kraken",
        "KRAKEN_WS_URL": kraken_ws.url,
        "KRAKEN_REST_URL": kraken_rest.base_url,
        "DATABASE_URL": proxied_pg_url,
        "SHUTDOWN_TIMEOUT": "3s",
        "LOG_LEVEL": "info",
    }
    processes = Processes()
    try:
        first = processes.serve(env, tmp_path, "first")

        async def serving() -> bool:
            try:
                return (await http.get(f"{base}/api/v1/ltp?pair=BTC/USD")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(serving, DEADLINE, message="the first process serving")
        pg_proxy.cut()
        await kraken_ws.send_ticker("BTC/USD", last=PRICE)

        async def buffered() -> bool:
            metrics = (await http.get(f"{base}/metrics")).text
            return "tokenpulse_history_buffered_rows 0.0" not in metrics

        await wait_for(buffered, DEADLINE, message="rows buffered while PostgreSQL is down")
        first.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.wait, 30)
        (line,) = _log_lines(tmp_path / "first.log", "history rows not written at shutdown")
        spill = tmp_path / "data" / "history-spill.jsonl"
        print(f"\nFIGURE shutdown with PostgreSQL down: exit {code}, {line['rows']} spilled")
        assert code != 0
        assert line["level"] == "error"
        assert line["rows"]["ltp_samples"] >= 1  # type: ignore[index]
        assert line["spilled_to"] == str(Path("data") / "history-spill.jsonl")
        assert spill.exists()
        assert b"75555.25" in spill.read_bytes()

        pg_proxy.restore()
        second = processes.serve(env, tmp_path, "second")
        await wait_for(serving, DEADLINE, message="the second process serving")

        async def replayed() -> bool:
            return await _count_price(pg_test_url) == 1

        await wait_for(replayed, DEADLINE, message="the spilled row written at the next start")
        assert not spill.exists()
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0
        assert _log_lines(
            tmp_path / "second.log", "replaying history rows spilled at the last shutdown"
        )
    finally:
        processes.close()


async def test_without_a_spill_file_the_lost_rows_are_counted_and_the_exit_code_says_so(
    pg_proxy: TcpProxy, proxied_pg_url: str
) -> None:
    settings = in_memory_settings(
        history_enabled=True,
        database_url=proxied_pg_url,
        history_spill_path="",
        shutdown_timeout="2s",
    )
    runtime = create_runtime(settings)
    writer = runtime.container.market.writer if runtime.container.market else None
    assert writer is not None
    await runtime.start()
    try:
        await wait_for(runtime.container.prices.views, DEADLINE, message="replayed prices")
        pg_proxy.cut()
        await wait_for(lambda: writer.unwritten()["ltp_samples"], DEADLINE, message="buffered")
    finally:
        with capture_logs() as logs:
            await runtime.stop()
    (line,) = [e for e in logs if e["event"] == "history rows not written at shutdown"]
    assert line["log_level"] == "error"
    assert line["rows"]["ltp_samples"] >= 1
    assert line["spilled_to"] is None
    assert runtime.exit_code == 1
    assert not (Path.cwd() / "data" / "history-spill.jsonl").exists()  # the default is off


async def test_two_instances_a_leader_stopped_with_postgres_down_hands_over_and_loses_nothing(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    pg_proxy: TcpProxy,
    proxied_pg_url: str,
    pg_test_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """Two ``ROLE=all`` processes, PostgreSQL cut: SIGTERM the leader (a rolling deploy) —
    it counts and spills its rows and exits 1; the other takes over and buffers what it
    ingests; PostgreSQL returns; the first one restarts and replays its spill. Every price
    ingested during the outage, by either instance, ends up in the history (the spilled row
    may also reach it through the new leader, whose feed snapshot repeats the last trade)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SOURCES": "kraken",
        "KRAKEN_WS_URL": kraken_ws.url,
        "KRAKEN_REST_URL": kraken_rest.base_url,
        "DATABASE_URL": proxied_pg_url,
        "CACHE_BACKEND": "redis",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SHUTDOWN_TIMEOUT": "3s",
        "LOG_LEVEL": "info",
    }
    after = Decimal("75556.75")  # ingested by the second instance during the outage
    processes = Processes()
    bases, folders = [], []
    try:
        for name in ("first", "second"):
            port = free_port()
            folder = tmp_path / name
            folder.mkdir()
            processes.serve({**env, "PORT": str(port)}, folder, name)
            bases.append(f"http://127.0.0.1:{port}")
            folders.append((folder, port))
            if name == "first":
                await wait_for(lambda: _is(http, bases[0], "held"), 60, message="a leader")
        await wait_for(lambda: _is(http, bases[1], "not held"), 60, message="a follower")
        pg_proxy.cut()
        price_at = datetime.now(UTC)
        await kraken_ws.send_ticker("BTC/USD", last=PRICE, timestamp=price_at)

        async def serves(base: str, price: Decimal) -> bool:
            answer = await http.get(f"{base}/api/v1/ltp?pair=BTC/USD")
            return answer.status_code == 200 and answer.json()["ltp"][0]["amount"] == float(price)

        # The leader ingested it from its feed (not still on the REST fallback of its start).
        await wait_for(lambda: serves(bases[0], PRICE), DEADLINE, message="the leader ingests")

        async def buffered() -> bool:
            metrics = (await http.get(f"{bases[0]}/metrics")).text
            return "tokenpulse_history_buffered_rows 0.0" not in metrics

        await wait_for(buffered, DEADLINE, message="the leader buffers while PostgreSQL is down")
        first = processes.started[0]
        first.send_signal(signal.SIGTERM)
        await wait_for(lambda: _is(http, bases[1], "held"), DEADLINE, message="the hand-over")
        code = await asyncio.to_thread(first.wait, 30)
        (line,) = _log_lines(folders[0][0] / "first.log", "history rows not written at shutdown")
        await wait_for(lambda: kraken_ws.connections == 1, DEADLINE, message="its feed")

        # One sample per second, the later reading wins (SPEC §5.2): a take-over quicker than a
        # second would file both prices under one second and keep only ``after``.
        await wait_for(
            lambda: int(time.time()) > int(price_at.timestamp()), 2, message="the next second"
        )
        after_at = datetime.now(UTC)
        await kraken_ws.send_ticker("BTC/USD", last=after, timestamp=after_at)
        await wait_for(lambda: serves(bases[1], after), DEADLINE, message="the new leader ingests")

        async def second_buffered() -> bool:
            metrics = (await http.get(f"{bases[1]}/metrics")).text
            return "tokenpulse_history_buffered_rows 0.0" not in metrics

        await wait_for(second_buffered, DEADLINE, message="the new leader buffers")
        pg_proxy.restore()
        restarted = processes.serve({**env, "PORT": str(folders[0][1])}, folders[0][0], "again")
        await wait_for(lambda: _is(http, bases[0], "not held"), 60, message="the restart serving")

        written: list[bool] = []

        async def everything_written() -> bool:
            written[:] = [
                await _kept(pg_test_url, price_at, PRICE),
                await _kept(pg_test_url, after_at, after),
            ]
            return written == [True, True]

        try:
            await wait_for(everything_written, 60, message="both instances' rows written")
        except AssertionError:
            engine = create_async_engine(pg_test_url)
            async with engine.connect() as conn:
                recent = (
                    await conn.execute(
                        sa.select(ltp_samples)
                        .where(ltp_samples.c.pair == "BTC/USD")
                        .order_by(ltp_samples.c.ts.desc())
                        .limit(8)
                    )
                ).all()
            await engine.dispose()
            text = (await http.get(f"{bases[1]}/metrics")).text
            seen = [line for line in text.splitlines() if "history" in line and "#" not in line]
            raise AssertionError(
                f"rows of the two prices: {written}; latest {recent}; the new leader: {seen}"
            ) from None
        restarted.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(restarted.wait, 30) == 0
    finally:
        processes.close()
    print(
        f"\nFIGURE shutdown with PostgreSQL down, two instances: the stopped leader exited "
        f"{code} with {line['rows']} spilled, the other took over and buffered, 0 rows lost "
        f"(each price's second holds it or a later reading: {written})"
    )
    assert code == 1
    assert line["rows"]["ltp_samples"] >= 1  # type: ignore[index]
    assert not (folders[0][0] / "data" / "history-spill.jsonl").exists()  # replayed
    assert _log_lines(
        folders[0][0] / "again.log", "replaying history rows spilled at the last shutdown"
    )


async def _kept(url: str, at: datetime, price: Decimal) -> bool:
    """The row of ``at``'s second holds ``price``, or a reading observed later in that second
    (one sample per second, the later reading wins: the new leader's first REST reading at a
    take-over can share a second with the old leader's last trade)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(ltp_samples.c.price, ltp_samples.c.observed_us).where(
                        ltp_samples.c.pair == "BTC/USD",
                        ltp_samples.c.ts == at.replace(microsecond=0),
                    )
                )
            ).first()
    finally:
        await engine.dispose()
    if row is None:
        return False
    observed = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return bool(row.price == price or (row.observed_us or 0) > observed)


async def _count(url: str, price: Decimal) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(ltp_samples)
                .where(ltp_samples.c.price == price)
            )
    finally:
        await engine.dispose()
    return int(count or 0)
