"""Cost model (SPEC §12, issue 14): how each cost grows, and what 1 000 000 clients take.

It measures what the other benchmarks do not, and reads what they did:

1. **Message sizes** — starts ``tokenpulse serve`` on the replay source with the Redis
   cache and bus, and for ``--sample`` seconds reads (a) one SSE stream of BTC/USD
   (bytes per ``ltp_update`` event on the wire) and (b) the Redis bus channel (bytes per
   ``PUBLISH`` payload between instances).
2. **Redis pub/sub fan-out** — one publisher pipelining ``PUBLISH`` of a payload that size
   to S pattern subscribers (``PSUBSCRIBE <prefix>*``, as every instance listens), for S in
   ``--subscribers``: deliveries/s and Redis's own CPU time per delivery (``/proc``).
3. **Per-instance costs** — from the newest ``bench/results/fanout-*.json`` (CPU per
   delivered message, RSS per idle connection) and ``bench/results/ingest-*.json`` (CPU per
   applied tick), unless given with ``--fanout`` / ``--ingest``.

Then it computes, for ``--clients`` stream clients each on ``--keys`` keys at ``--rate``
updates/s: instances needed (CPU- and memory-bound), Redis deliveries/s and its share of
one core, Redis egress and client egress bandwidth. Every figure it prints is derived from
those measurements and the stated assumptions (the flags); none is typed in.

    .venv/bin/python bench/costmodel.py --no-write
    .venv/bin/python bench/costmodel.py --subscribers 1,10,100,300 --memory-gib 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _report import append_markdown, git_revision, machine_info
from _server import LOOPBACK, PASSTHROUGH_ENV, ServerProcess, free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIO_EVENT_OVERHEAD = len('42["ltp_update",]')  # Socket.IO packet around the same JSON
MESSAGE_MARKER = b"*3\r\n$7\r\nmessage\r\n"  # a SUBSCRIBE push: then channel, payload
WS_FRAME_HEADER = 4  # a server→client WebSocket frame of 126..65535 bytes: 2 + 2 length bytes


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _resp(*parts: bytes) -> bytes:
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        out += b"$%d\r\n%s\r\n" % (len(part), part)
    return out


class _Redis:
    """A bare RESP connection: enough to publish, subscribe and ask INFO, at C speed."""

    def __init__(self, host: str, port: int, db: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        if db:
            self.call(b"SELECT", str(db).encode())

    def call(self, *parts: bytes) -> bytes:
        self.sock.sendall(_resp(*parts))
        return self.sock.recv(1 << 16)

    def close(self) -> None:
        self.sock.close()


def _redis_pid(host: str, port: int) -> int:
    conn = _Redis(host, port, 0)
    try:
        info = b""
        conn.sock.sendall(_resp(b"INFO", b"server"))
        while b"process_id:" not in info or not info.endswith(b"\r\n\r\n"):
            chunk = conn.sock.recv(1 << 16)
            if not chunk:
                break
            info += chunk
    finally:
        conn.close()
    for line in info.decode().splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("INFO server did not name Redis's process_id")


# --- 1. message sizes --------------------------------------------------------------------


def _sse_event_sizes(port: int, api_key: str, seconds: float) -> list[int]:
    sock = socket.create_connection((LOOPBACK, port), timeout=5)
    sock.sendall(
        b"GET /api/v1/ltp/live?pair=BTC/USD HTTP/1.1\r\nHost: bench\r\n"
        b"X-API-Key: " + api_key.encode() + b"\r\nAccept: text/event-stream\r\n\r\n"
    )
    buffer, sizes, deadline = b"", [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if b"event: ltp_update" in event and b'"base_seq"' in event:
                sizes.append(len(event) + 2)
    sock.close()
    return sizes


def _bus_payload_sizes(url: tuple[str, int, int], prefix: str, seconds: float) -> list[int]:
    host, port, db = url
    conn = _Redis(host, port, db)
    conn.sock.sendall(_resp(b"SUBSCRIBE", (prefix + "bus:ltp").encode()))
    conn.sock.settimeout(0.5)
    buffer, sizes, deadline = b"", [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            buffer += conn.sock.recv(1 << 16)
        except TimeoutError:
            continue
        # *3\r\n$7\r\nmessage\r\n$<n>\r\n<channel>\r\n$<n>\r\n<payload>\r\n
        while (start := buffer.find(MESSAGE_MARKER)) >= 0:
            rest = buffer[start + len(MESSAGE_MARKER) :]
            parts: list[bytes] = []
            while len(parts) < 2:
                header_end = rest.find(b"\r\n")
                if header_end < 0:
                    break
                length = int(rest[1:header_end])
                if len(rest) < header_end + 2 + length + 2:
                    break
                parts.append(rest[header_end + 2 : header_end + 2 + length])
                rest = rest[header_end + 2 + length + 2 :]
            if len(parts) < 2:
                break
            sizes.append(len(parts[1]))
            buffer = rest
    conn.close()
    return sizes


def measure_sizes(redis: tuple[str, int, int], seconds: float) -> dict[str, Any]:
    """Start a replay server on the Redis bus; bytes per SSE event and per bus payload."""
    port, api_key = free_port(), secrets.token_urlsafe(24)
    prefix = f"tp-costmodel-{secrets.token_hex(4)}:"
    host, redis_port, db = redis
    env = {
        "SOURCES": "replay",
        "REPLAY_SPEED": "36000",
        "AUTH_ENABLED": "true",
        "AUTH_API_KEY": api_key,
        "CACHE_BACKEND": "redis",
        "REDIS_URL": f"redis://{host}:{redis_port}/{db}",
        "REDIS_KEY_PREFIX": prefix,
        "LOG_LEVEL": "warning",
        "HOST": LOOPBACK,
        "PORT": str(port),
        "SHUTDOWN_TIMEOUT": "10s",
    }
    with tempfile.TemporaryDirectory(prefix="tokenpulse-costmodel-") as tmp:
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp}/bench.db"
        inherited = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        server = ServerProcess(
            [sys.executable, "-m", "tokenpulse", "serve"],
            {**inherited, **env},
            Path(tmp),
            Path(tmp) / "log",
        )
        with server:
            server.wait_ready(port, "/api/v1/ltp?pair=BTC/USD", {"X-API-Key": api_key}, 60)
            sse = _sse_event_sizes(port, api_key, seconds)
            bus = _bus_payload_sizes(redis, prefix, seconds)
            server.stop(20)
    if not sse or not bus:
        raise RuntimeError(f"no sample: {len(sse)} SSE events, {len(bus)} bus payloads")
    sse_mean = sum(sse) / len(sse)
    bus_mean = sum(bus) / len(bus)
    # The Socket.IO frame carries the SSE event's JSON: measured SSE size minus its
    # "event: ...\nid: ...\ndata: " framing, plus the Socket.IO packet and WebSocket header.
    return {
        "sse_events": len(sse),
        "sse_event_bytes": round(sse_mean, 1),
        "bus_payloads": len(bus),
        "bus_payload_bytes": round(bus_mean, 1),
        "sio_frame_bytes_estimate": round(bus_mean + SIO_EVENT_OVERHEAD + WS_FRAME_HEADER, 1),
    }


# --- 2. Redis pub/sub fan-out ------------------------------------------------------------


async def _subscriber_counts(
    host: str, port: int, pattern: bytes, n: int, stop: asyncio.Event, ready: asyncio.Event
) -> tuple[int, int]:
    """n PSUBSCRIBE connections that count pmessages; (messages, disconnects)."""
    counts, dropped = [0] * n, [0]

    async def one(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(_resp(b"PSUBSCRIBE", pattern))
        await reader.readuntil(b":1\r\n")
        subscribed[0] += 1
        if subscribed[0] == n:
            ready.set()
        tail = b""
        marker = b"$8\r\npmessage\r\n"
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 18), 0.5)
            except TimeoutError:
                continue
            if not chunk:
                dropped[0] += 1
                return
            data = tail + chunk
            counts[index] += data.count(marker)
            tail = data[-(len(marker) - 1) :]
        writer.close()

    subscribed = [0]
    await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts), dropped[0]


def _publish_loop(host: str, port: int, channel: bytes, payload: bytes, seconds: float) -> int:
    conn = _Redis(host, port, 0)
    batch = _resp(b"PUBLISH", channel, payload) * 200
    published, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.sock.sendall(batch)
        replies = 0
        while replies < 200:
            replies += conn.sock.recv(1 << 16).count(b"\r\n")
        published += 200
    conn.close()
    return published


async def _fanout_once(
    host: str, port: int, redis_pid: int, subscribers: int, payload: bytes, seconds: float
) -> dict[str, Any]:
    prefix = f"tp-costmodel-{secrets.token_hex(4)}:".encode()
    stop, ready = asyncio.Event(), asyncio.Event()
    counting = asyncio.create_task(
        _subscriber_counts(host, port, prefix + b"*", subscribers, stop, ready)
    )
    await asyncio.wait_for(ready.wait(), 30)
    cpu_before, wall_before = _cpu_seconds(redis_pid), time.monotonic()
    published = await asyncio.to_thread(
        _publish_loop, host, port, prefix + b"ltp", payload, seconds
    )
    # Let the subscribers drain what Redis already queued for them, then count.
    await asyncio.sleep(0.5)
    wall = time.monotonic() - wall_before
    redis_cpu = _cpu_seconds(redis_pid) - cpu_before
    stop.set()
    delivered, dropped = await counting
    return {
        "subscribers": subscribers,
        "published_per_s": round(published / seconds),
        "delivered_per_s": round(delivered / wall),
        "delivered_ratio": round(delivered / max(1, published * subscribers), 4),
        "redis_cpu_us_per_delivery": round(1e6 * redis_cpu / max(1, delivered), 3),
        "redis_cpu_us_per_publish": round(1e6 * redis_cpu / max(1, published), 2),
        "disconnected_subscribers": dropped,
    }


# --- 3 + model -----------------------------------------------------------------------------


def _newest(kind: str) -> Path | None:
    files = sorted(RESULTS_DIR.glob(f"{kind}-*.json"))
    return files[-1] if files else None


def _loaded_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in record["rows"] if r["rate"] > 0 and r.get("messages_per_s")]


def _idle_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in record["rows"] if r["rate"] <= 0 and r.get("rss_loaded_kib")]


def _newest_with(rows_of: Any) -> Path | None:
    for path in sorted(RESULTS_DIR.glob("fanout-*.json"), reverse=True):
        if rows_of(json.loads(path.read_text())):
            return path
    return None


def per_instance(fanout: dict[str, Any], fanout_idle: dict[str, Any]) -> dict[str, Any]:
    """CPU per delivered message (loaded run) and RSS per idle connection (idle run)."""
    loaded, idle = _loaded_rows(fanout), _idle_rows(fanout_idle)
    if not loaded or not idle:
        raise RuntimeError("need a fanout run with rate > 0 and one with --rate 0")
    busy = max(loaded, key=lambda r: r["clients"])
    still = max(idle, key=lambda r: r["clients"])
    cpu_us = busy.get("server_cpu_us_per_message") or (
        1e6 * busy["server_cpu_pct"] / 100 / busy["messages_per_s"]
    )
    return {
        "loaded_row": f"{busy['transport']} x {busy['clients']:,} at {busy['rate']:g}/s",
        "cpu_us_per_message": round(cpu_us, 2),
        "idle_row": f"{still['transport']} x {still['clients']:,} idle",
        "kib_per_connection": round(
            (still["rss_loaded_kib"] - still["rss_idle_kib"]) / still["clients"], 1
        ),
        "rss_base_mib": round(still["rss_idle_kib"] / 1024, 1),
    }


def model(
    args: argparse.Namespace,
    costs: dict[str, Any],
    sizes: dict[str, Any],
    redis_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """Instances, Redis load and bandwidth for ``--clients`` stream clients."""
    per_client_msgs = args.keys * args.rate
    cpu_capacity_msgs = args.headroom * 1e6 / costs["cpu_us_per_message"]
    cpu_clients = cpu_capacity_msgs / per_client_msgs
    mem_clients = (
        (args.memory_gib * 1024 - costs["rss_base_mib"]) * 1024 / costs["kib_per_connection"]
    )
    clients_per_instance = math.floor(min(cpu_clients, mem_clients))
    instances = math.ceil(args.clients / clients_per_instance)
    # Every instance hears every update once over Redis (one PSUBSCRIBE per instance).
    bus_updates = args.pairs * args.pair_rate
    deliveries = bus_updates * instances
    # Redis CPU per PUBLISH grows linearly with the subscribers it is copied to: fit
    # a + b x S through the two runs with the most subscribers.
    low, high = sorted(redis_rows, key=lambda r: r["subscribers"])[-2:]
    slope = (high["redis_cpu_us_per_publish"] - low["redis_cpu_us_per_publish"]) / max(
        1, high["subscribers"] - low["subscribers"]
    )
    intercept = max(0.0, high["redis_cpu_us_per_publish"] - slope * high["subscribers"])
    redis_cpu_share = bus_updates * (intercept + slope * instances) / 1e6
    # The alternative: a channel per key, each instance subscribed only to the keys its
    # clients watch (--served-keys of them), so an update reaches only those instances.
    served = min(args.pairs, args.served_keys)
    keyed_deliveries = served * args.pair_rate * instances
    keyed_cpu_share = (bus_updates * intercept + keyed_deliveries * slope) / 1e6
    client_msgs = args.clients * per_client_msgs
    frame = sizes["sio_frame_bytes_estimate"]
    return {
        "per_client_msgs_per_s": per_client_msgs,
        "cpu_bound_clients_per_instance": math.floor(cpu_clients),
        "memory_bound_clients_per_instance": math.floor(mem_clients),
        "clients_per_instance": clients_per_instance,
        "bound_by": "CPU" if cpu_clients <= mem_clients else "memory",
        "instances": instances,
        "client_msgs_per_s": client_msgs,
        "bus_updates_per_s": bus_updates,
        "redis_deliveries_per_s": deliveries,
        "redis_us_per_publish_fit": f"{intercept:.2f} + {slope:.3f} x S",
        "redis_core_share": round(redis_cpu_share, 3),
        "redis_egress_mbit_s": round(deliveries * sizes["bus_payload_bytes"] * 8 / 1e6, 1),
        "keyed_redis_deliveries_per_s": keyed_deliveries,
        "keyed_redis_core_share": round(keyed_cpu_share, 3),
        "keyed_redis_egress_mbit_s": round(
            keyed_deliveries * sizes["bus_payload_bytes"] * 8 / 1e6, 1
        ),
        "client_egress_gbit_s": round(client_msgs * frame * 8 / 1e9, 2),
        "client_egress_per_instance_mbit_s": round(
            clients_per_instance * per_client_msgs * frame * 8 / 1e6, 1
        ),
    }


def _table(header: tuple[str, ...], align: str, rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(record: dict[str, Any]) -> str:
    """The BENCHMARKS.md section: costs, Redis pub/sub runs, and the model."""
    a, c, s, m = record["assumptions"], record["per_instance"], record["sizes"], record["model"]
    machine, inputs = record["machine"], record["inputs"]
    costs = _table(
        ("cost", "grows with", "measured", "from"),
        ("---", "---", "---:", "---"),
        [
            (
                "memory per connection",
                "connections",
                f"{c['kib_per_connection']} KiB",
                c["idle_row"],
            ),
            (
                "CPU per delivered message",
                "connections x subscriptions x update rate",
                f"{c['cpu_us_per_message']} µs",
                c["loaded_row"],
            ),
            (
                "CPU per applied tick",
                "pairs x their tick rate",
                f"{c.get('cpu_us_per_tick', 'n/a')} µs",
                inputs.get("ingest"),
            ),
            (
                "bytes per SSE event",
                "messages",
                f"{s['sse_event_bytes']} B",
                f"{s['sse_events']} BTC/USD events",
            ),
            (
                "bytes per Socket.IO frame",
                "messages",
                f"{s['sio_frame_bytes_estimate']} B",
                "bus payload + packet + WS header",
            ),
            (
                "bytes per bus payload",
                "instances x updates",
                f"{s['bus_payload_bytes']} B",
                f"{s['bus_payloads']} payloads",
            ),
        ],
    )
    redis = _table(
        (
            "S",
            "published/s",
            "delivered/s",
            "delivered/expected",
            "Redis CPU µs/delivery",
            "dropped subscribers",
        ),
        ("---:",) * 6,
        [
            (
                f"{r['subscribers']:,}",
                f"{r['published_per_s']:,}",
                f"{r['delivered_per_s']:,}",
                f"{r['delivered_ratio']:.3f}",
                f"{r['redis_cpu_us_per_delivery']:.3f}",
                r["disconnected_subscribers"],
            )
            for r in record["redis"]
        ],
    )
    result = _table(
        ("quantity", "value"),
        ("---", "---:"),
        [
            ("clients per instance, CPU-bound", f"{m['cpu_bound_clients_per_instance']:,}"),
            ("clients per instance, memory-bound", f"{m['memory_bound_clients_per_instance']:,}"),
            (f"instances needed ({m['bound_by']}-bound)", f"{m['instances']:,}"),
            ("messages to clients per second", f"{m['client_msgs_per_s']:,.0f}"),
            (
                "today (one PSUBSCRIBE to all): Redis deliveries/s = bus updates x instances",
                f"{m['redis_deliveries_per_s']:,.0f}",
            ),
            ("Redis CPU µs per PUBLISH (fit over S subscribers)", m["redis_us_per_publish_fit"]),
            ("today: Redis core share (1.0 = one core saturated)", f"{m['redis_core_share']:.3f}"),
            ("today: Redis egress", f"{m['redis_egress_mbit_s']:,} Mbit/s"),
            (
                f"per-key channels, {a['served_keys']} keys per instance: Redis deliveries/s",
                f"{m['keyed_redis_deliveries_per_s']:,.0f}",
            ),
            ("per-key channels: Redis core share", f"{m['keyed_redis_core_share']:.3f}"),
            ("per-key channels: Redis egress", f"{m['keyed_redis_egress_mbit_s']:,} Mbit/s"),
            ("client egress, all instances", f"{m['client_egress_gbit_s']:,} Gbit/s"),
            ("client egress per instance", f"{m['client_egress_per_instance_mbit_s']:,} Mbit/s"),
        ],
    )
    return "\n".join(
        [
            "",
            f"## costmodel — {record['started_at']} — {record.get('label') or 'cost model'}",
            "",
            f"- **Commit:** `{record['git'].get('commit')}`; machine: "
            f"{machine.get('cpus_available')} CPUs ({machine.get('cpu_model')}), shared by "
            "Redis and the load",
            f"- **Inputs:** `{inputs['fanout']}`, `{inputs['fanout_idle']}`, "
            f"`{inputs.get('ingest')}`",
            f"- **Command:** `.venv/bin/python bench/costmodel.py {record['argv']}`",
            "",
            "How each cost grows (one instance, one event loop):",
            "",
            costs,
            "",
            f"Redis pub/sub: one publisher pipelining `PUBLISH` of "
            f"{s['bus_payload_bytes']:.0f}-byte payloads to S pattern subscribers:",
            "",
            redis,
            "",
            f"{a['clients']:,} stream clients, {a['keys']} key(s) each at {a['rate']:g} "
            f"updates/s; {a['pairs']} pairs at {a['pair_rate']:g} updates/s on the bus; "
            f"instances of one core at {a['headroom']:.0%} load and {a['memory_gib']} GiB:",
            "",
            result,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fanout", type=Path, help="loaded fanout JSON (default: newest)")
    parser.add_argument("--fanout-idle", type=Path, help="idle fanout JSON (default: newest)")
    parser.add_argument("--ingest", type=Path, help="ingest result JSON (default: newest)")
    parser.add_argument("--redis", default="127.0.0.1:6379/15", help="host:port/db")
    parser.add_argument("--subscribers", default="1,10,100", help="S values for pub/sub")
    parser.add_argument("--seconds", type=float, default=3.0, help="pub/sub run per S")
    parser.add_argument("--sample", type=float, default=4.0, help="message-size sample, s")
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1, help="keys per client")
    parser.add_argument("--rate", type=float, default=10.0, help="updates/s per key")
    parser.add_argument("--pairs", type=int, default=500, help="pairs on the bus")
    parser.add_argument("--pair-rate", type=float, default=10.0, help="updates/s per pair")
    parser.add_argument(
        "--served-keys", type=int, default=50, help="distinct keys one instance's clients watch"
    )
    parser.add_argument("--memory-gib", type=float, default=4.0, help="RAM per instance")
    parser.add_argument("--headroom", type=float, default=0.7, help="CPU share to plan for")
    parser.add_argument("--label")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    fanout_path = args.fanout or _newest_with(_loaded_rows)
    idle_path = args.fanout_idle or _newest_with(_idle_rows)
    if fanout_path is None or idle_path is None:
        print(
            "need bench/results/fanout-*.json with a loaded run and an idle run (--rate 0):"
            " run bench/fanout.py first",
            file=sys.stderr,
        )
        return 2
    costs = per_instance(json.loads(fanout_path.read_text()), json.loads(idle_path.read_text()))
    ingest_path = args.ingest or _newest("ingest")
    if ingest_path is not None:
        ingest = json.loads(ingest_path.read_text())
        live = ingest.get("live") or {}
        if live.get("server_cpu_us_per_frame"):
            # every frame is one tick applied (the live run applies all it parses)
            costs["cpu_us_per_tick"] = live["server_cpu_us_per_frame"]
    host_port, _, db = args.redis.partition("/")
    host, _, port = host_port.partition(":")
    redis = (host, int(port or 6379), int(db or 0))
    started = datetime.now(UTC)
    sizes = measure_sizes(redis, args.sample)
    payload = b"x" * round(sizes["bus_payload_bytes"])
    redis_pid = _redis_pid(redis[0], redis[1])
    redis_rows = [
        asyncio.run(_fanout_once(redis[0], redis[1], redis_pid, int(s), payload, args.seconds))
        for s in args.subscribers.split(",")
    ]
    record = {
        "benchmark": "costmodel",
        "label": args.label,
        "started_at": f"{started:%Y-%m-%d %H:%M:%S} UTC",
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "git": git_revision(REPO_ROOT),
        "machine": machine_info(),
        "inputs": {
            "fanout": str(fanout_path.resolve().relative_to(REPO_ROOT)),
            "fanout_idle": str(idle_path.resolve().relative_to(REPO_ROOT)),
            "ingest": str(ingest_path.resolve().relative_to(REPO_ROOT)) if ingest_path else None,
        },
        "assumptions": {
            k: getattr(args, k)
            for k in (
                "clients",
                "keys",
                "rate",
                "pairs",
                "pair_rate",
                "served_keys",
                "memory_gib",
                "headroom",
            )
        },
        "per_instance": costs,
        "sizes": sizes,
        "redis": redis_rows,
    }
    record["model"] = model(args, costs, sizes, redis_rows)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"costmodel-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    section = markdown(record)
    print(section)
    if not args.no_write:
        append_markdown(BENCHMARKS_MD, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
