"""``tokenpulse watch BTC/USD ETH bitcoin``: a live terminal table (Rich) from the streams.

A target with a ``/`` or ``-`` is a pair (``BTC/USD``, ``eth-usd``); anything else a token (id,
symbol, CMC or CoinGecko id). Updates come over SSE through the Python client
(``tokenpulse_client``, httpx only), which reconnects and resubscribes by itself; the header
shows the link (connected / reconnecting) and each row its value's age: green while fresh,
yellow past half of ``--stale-after``, red once the service flags it stale. Price and velocity
carry an arrow for their last move. Ctrl-C leaves quietly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import typer

DEFAULT_URL = "http://127.0.0.1:8080"
REFRESH_S = 0.25
UP, DOWN, FLAT = "▲", "▼", "▶"


@dataclass
class Row:
    """What the table shows for one pair or token."""

    kind: str
    id: str
    state: dict[str, Any] = field(default_factory=dict)
    price_move: str = ""
    velocity_move: str = ""
    seen_at: float = 0.0  # monotonic time of the last message
    age_at_seen_ms: int = 0


@dataclass
class Board:
    """Every row and the link's state; updated by the stream, drawn by :func:`render`."""

    url: str
    stale_after_ms: int
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    link: str = "connecting"
    reconnects: int = 0

    def status(self, status: str) -> None:
        """The stream's ``on_status`` callback."""
        if status == "reconnecting" and self.link == "connected":
            self.reconnects += 1
        self.link = status

    def apply(self, kind: str, ident: str, state: dict[str, Any], ts: int | None) -> None:
        """Take one update (the merged full state of its key)."""
        row = self.rows.setdefault((kind, ident), Row(kind, ident))
        price_key = "amount" if kind == "pair" else "price_usd"
        row.price_move = _move(row.state.get(price_key), state.get(price_key), row.price_move)
        if kind == "token":
            row.velocity_move = _move(
                row.state.get("velocity"), state.get("velocity"), row.velocity_move
            )
        row.state = dict(state)
        row.seen_at = time.monotonic()
        age = state.get("age_ms")
        row.age_at_seen_ms = age if isinstance(age, int) else 0
        if isinstance(ts, int):  # the age was computed at send time: add the trip since
            row.age_at_seen_ms += max(0, int(time.time() * 1000) - ts)


def _move(before: Any, after: Any, previous: str) -> str:
    if not isinstance(before, int | float | Decimal) or not isinstance(
        after, int | float | Decimal
    ):
        return previous
    if after > before:
        return UP
    if after < before:
        return DOWN
    return previous or FLAT


def _number(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float | Decimal | str) or isinstance(value, bool):
        return "—"
    number = Decimal(str(value))
    if abs(number) >= 1_000_000_000:
        return f"{number / 1_000_000_000:,.2f} B"
    if abs(number) >= 1_000_000:
        return f"{number / 1_000_000:,.2f} M"
    if abs(number) < 1:
        return f"{number:.6g}"
    return f"{number:,.{digits}f}"


def _age_style(row: Row, age_ms: int, stale_after_ms: int) -> str:
    if row.state.get("stale") is True or age_ms > stale_after_ms:
        return "bold red"
    if age_ms > stale_after_ms // 2:
        return "yellow"
    return "green"


def render(board: Board) -> Any:
    """The table for the current state (ages move on between messages)."""
    from rich.table import Table
    from rich.text import Text

    link_style = {"connected": "green", "reconnecting": "bold red"}.get(board.link, "yellow")
    title = Text.assemble(
        ("tokenpulse ", "bold"),
        (board.url, "cyan"),
        "  ",
        (f"● {board.link}", link_style),
        (f"  reconnects: {board.reconnects}" if board.reconnects else "", "dim"),
    )
    table = Table(title=title, expand=False)
    for column, justify in (
        ("", "left"),
        ("pair / token", "left"),
        ("price", "right"),
        ("24h volume", "right"),
        ("market cap", "right"),
        ("velocity", "right"),
        ("source", "left"),
        ("age", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    if not board.rows:
        table.add_row("", Text("waiting for the first update…", "dim"))
    now = time.monotonic()
    for row in sorted(board.rows.values(), key=lambda r: (r.kind, r.id)):
        state = row.state
        age_ms = row.age_at_seen_ms + int((now - row.seen_at) * 1000)
        style = _age_style(row, age_ms, board.stale_after_ms)
        stale = " STALE" if "red" in style else ""
        if row.kind == "pair":
            cells = (state.get("amount"), state.get("volume_24h"), None, None)
            name = row.id
        else:
            cells = (
                state.get("price_usd"),
                state.get("volume_24h_usd"),
                state.get("market_cap_usd"),
                state.get("velocity"),
            )
            name = f"{state.get('symbol') or ''} {row.id}".strip()
        price_style = {UP: "green", DOWN: "red"}.get(row.price_move, "")
        velocity = Text("—") if cells[3] is None else Text(_number(cells[3], 4))
        if row.kind == "token" and row.velocity_move:
            velocity.append(
                f" {row.velocity_move}", {UP: "green", DOWN: "red"}.get(row.velocity_move, "")
            )
        table.add_row(
            Text(row.kind, "dim"),
            Text(name, "bold"),
            Text(f"{_number(cells[0])} {row.price_move}".strip(), price_style),
            _number(cells[1]) if cells[1] is not None else "—",
            _number(cells[2]) if cells[2] is not None else "—",
            velocity,
            str(state.get("source") or "—"),
            Text(f"{age_ms / 1000:.1f}s{stale}", style),
        )
    return table


def split_targets(targets: list[str]) -> tuple[list[str], list[str]]:
    """Pairs (``BTC/USD``, ``eth-usd``) and tokens (everything else), in the order given."""
    pairs = [t for t in targets if "/" in t or "-" in t]
    tokens = [t for t in targets if t not in pairs]
    return pairs, tokens


async def watch(url: str, api_key: str | None, targets: list[str], stale_after_ms: int) -> None:
    """Draw the board until cancelled (Ctrl-C) or the service refuses the subscription."""
    from rich.console import Console
    from rich.live import Live

    from tokenpulse_client import AsyncTokenpulseClient

    pairs, tokens = split_targets(targets)
    board = Board(url, stale_after_ms)
    console = Console()
    async with AsyncTokenpulseClient(url, api_key) as client:
        updates = client.stream(pairs, tokens, transport="sse", on_status=board.status)

        async def consume() -> None:
            async for update in updates:
                board.apply(update.kind, update.id, dict(update.state), update.ts)

        consumer = asyncio.create_task(consume())
        try:
            with Live(render(board), console=console, auto_refresh=False) as live:
                while not consumer.done():
                    await asyncio.wait({consumer}, timeout=REFRESH_S)
                    live.update(render(board), refresh=True)
            consumer.result()
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the ``tokenpulse`` command line."""

    @app.command("watch")
    def watch_command(
        targets: Annotated[
            list[str], typer.Argument(help="pairs (BTC/USD) and tokens (ETH, bitcoin) to watch")
        ],
        url: Annotated[
            str, typer.Option("--url", envvar="TOKENPULSE_URL", help="the service's base URL")
        ] = DEFAULT_URL,
        api_key: Annotated[
            str | None,
            typer.Option("--api-key", envvar="TOKENPULSE_API_KEY", help="X-API-Key, if needed"),
        ] = None,
        stale_after: Annotated[
            float, typer.Option("--stale-after", help="seconds after which a value shows red")
        ] = 60.0,
    ) -> None:
        """A live table of pairs and tokens from the service's streams (Ctrl-C to leave)."""
        try:
            import tokenpulse_client  # noqa: F401
        except ImportError:
            typer.echo(
                "tokenpulse watch needs the Python client: pip install ./clients/python", err=True
            )
            raise typer.Exit(1) from None
        from tokenpulse_client import StreamError, TokenpulseError

        try:
            asyncio.run(watch(url, api_key, targets, int(stale_after * 1000)))
        except KeyboardInterrupt:
            typer.echo("tokenpulse watch: stopped", err=True)
        except (StreamError, TokenpulseError) as exc:
            typer.echo(f"tokenpulse watch: {exc}", err=True)
            raise typer.Exit(1) from None


__all__ = ["Board", "register", "render", "split_targets", "watch"]
