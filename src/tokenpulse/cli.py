"""The ``tokenpulse`` command line (Typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tokenpulse import __version__
from tokenpulse import cli_db as _cli_db
from tokenpulse import cli_watch as _cli_watch
from tokenpulse.cli_keys import keys_app
from tokenpulse.settings import ConfigError, LoadedSettings, describe_settings, load_settings

EXIT_CONFIG = 2

app = typer.Typer(
    name="tokenpulse",
    help="Self-hosted real-time crypto market data.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
db_app = typer.Typer(help="The history database (migrations, backup).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        "-config",  # the Go service's flag form: `serve -config configs/config.yaml`
        help="YAML configuration file, ours or the Go service's layout (default: ./config.yaml)",
    ),
]


def _load(config: Path | None, overrides: dict[str, Any] | None = None) -> LoadedSettings:
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        _config_failed(exc)


def _config_failed(exc: ConfigError) -> NoReturn:
    typer.echo("tokenpulse: invalid configuration:", err=True)
    for problem in exc.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(EXIT_CONFIG) from None


def _refused(reason: Exception | None) -> None:
    """Exit 2 when the runtime refused to start (e.g. a live start on a replay store)."""
    if reason is not None:  # SPEC §3.6
        typer.echo(f"tokenpulse: {reason}", err=True)
        raise typer.Exit(2)


def _serve(loaded: LoadedSettings) -> None:
    import uvicorn

    from tokenpulse._gc import tune_gc
    from tokenpulse.api.app import create_app
    from tokenpulse.api.limits import bounded_httptools, head_cap, limits_for
    from tokenpulse.api.server import Server, run_granian
    from tokenpulse.observability.logging import configure_logging
    from tokenpulse.runtime import create_runtime

    settings = loaded.settings
    configure_logging(settings.log_level, settings.log_format)
    try:
        runtime = create_runtime(settings)  # checks SUPPORTED_PAIRS against the venues' lists
    except ConfigError as exc:
        _config_failed(exc)
    application = create_app(runtime.container, lifecycle=runtime)
    limits = limits_for(settings)
    tune_gc()
    if settings.server == "granian":
        served = run_granian(
            application,
            host=settings.host,
            port=settings.port,
            max_head_bytes=head_cap(limits),
            shutdown_timeout=settings.shutdown_timeout,
            on_exit=application.streams.drain,
            exit_code=lambda: runtime.exit_code,
        )
        _refused(runtime.refused)
        if not served:
            raise typer.Exit(1)
        if runtime.exit_code:  # history rows left unwritten (logged, spilled when configured)
            raise typer.Exit(runtime.exit_code)
        return
    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=bounded_httptools(limits),  # a head past MAX_HEADER_BYTES: 431
        h11_max_incomplete_event_size=head_cap(limits),
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # the edge middleware applies FORWARDED_ALLOW_IPS itself
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        log_config=None,
        log_level=settings.log_level,
    )
    server = Server(config, on_exit=application.streams.drain, exit_code=lambda: runtime.exit_code)
    try:
        server.run()  # uvicorn's own runner applies loop="uvloop"; asyncio.run() would not
    except SystemExit:  # uvicorn exits 3 when the start failed
        if runtime.refused is None:
            raise
    _refused(runtime.refused)
    if not server.started:
        raise typer.Exit(1)
    if runtime.exit_code:  # history rows left unwritten (logged, spilled when configured)
        raise typer.Exit(runtime.exit_code)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (PORT)")] = None,
    role: Annotated[str | None, typer.Option(help="all, api or ingest (ROLE)")] = None,
) -> None:
    """Run the service until SIGTERM/SIGINT."""
    overrides = {
        k: v for k, v in {"host": host, "port": port, "role": role}.items() if v is not None
    }
    _serve(_load(config, overrides))


@app.command()
def replay(
    config: ConfigOption = None,
    path: Annotated[Path | None, typer.Option(help="Recording to play (REPLAY_PATH)")] = None,
    speed: Annotated[float | None, typer.Option(help="Speed-up factor (REPLAY_SPEED)")] = None,
) -> None:
    """Run the service on recorded market data only: no network needed."""
    overrides: dict[str, Any] = {"sources": "replay"}
    if path is not None:
        overrides["replay_path"] = str(path)
    if speed is not None:
        overrides["replay_speed"] = speed
    _serve(_load(config, overrides))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print every effective value and where it came from."""
    loaded = _load(config)
    rows = describe_settings(loaded)
    width = max(len(name) for name, _, _ in rows)
    typer.echo("configuration is valid")
    for name, value, origin in rows:
        typer.echo(f"{name:<{width}}  {value!s:<40}  ({origin})")


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOption = None,
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the history database (DATABASE_URL) to the current schema."""
    import asyncio

    from tokenpulse.domain.errors import StoreError
    from tokenpulse.store.history import migrate

    settings = _load(config).settings
    try:
        asyncio.run(migrate.upgrade(settings.database_url, revision))
        current = asyncio.run(migrate.current_revision(settings.database_url))
    except StoreError as exc:
        typer.echo(f"tokenpulse: migration failed: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"history database at revision {current}")


@db_app.command("current")
def db_current(config: ConfigOption = None) -> None:
    """Print the history database's schema revision and the one this version needs."""
    import asyncio

    from tokenpulse.domain.errors import StoreError
    from tokenpulse.store.history import migrate

    settings = _load(config).settings
    try:
        current = asyncio.run(migrate.current_revision(settings.database_url))
    except StoreError as exc:
        typer.echo(f"tokenpulse: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"current: {current or 'empty'}  head: {migrate.head()}")


@app.command()
def pairs(
    config: ConfigOption = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch each enabled venue's list into the cache")
    ] = False,
) -> None:
    """List the pairs the enabled venues list (valid SUPPORTED_PAIRS) and where each list
    comes from; ``--refresh`` fetches the venues' current lists into PAIR_LISTS_DIR first."""
    from tokenpulse._pair_lists import (
        LIST_PATHS,
        fetch_pair_list,
        offline_pair_list,
        registry_of,
    )

    try:
        settings = load_settings(config).settings
    except ConfigError as exc:
        if not refresh or not all(p.startswith("SUPPORTED_PAIRS") for p in exc.problems):
            _config_failed(exc)
        # a pair listed since the cache was written: refreshing the lists is the fix
        settings = _load(config, {"supported_pairs": "BTC/USD"}).settings
    venues = [v for v in settings.sources if v in LIST_PATHS] or ["kraken"]
    urls = {
        "kraken": settings.kraken_rest_url,
        "coinbase": settings.coinbase_rest_url,
        "binance": settings.binance_rest_url,
    }
    failed = False
    lists = {}
    for venue in venues:
        if refresh:
            fetched = fetch_pair_list(
                venue,
                urls[venue],
                timeout=settings.pair_lists_timeout,
                cache_dir=settings.pair_lists_dir,
            )
            if isinstance(fetched, str):
                failed = True
                typer.echo(f"tokenpulse: {venue} pair list not fetched: {fetched}", err=True)
        lists[venue] = offline_pair_list(venue, settings.pair_lists_dir)
        typer.echo(f"# {venue}: {lists[venue].describe()}, {len(lists[venue].pairs)} pairs")
    registry = registry_of({v: pl for v, pl in lists.items() if pl.origin != "none"})
    for pair in registry.pairs:
        on = [v for v, pl in lists.items() if pair in pl.pairs]
        kraken = registry.kraken.get(pair)
        names = (
            f"  kraken: {kraken.rest_key} / {kraken.altname} / {kraken.wsname}" if kraken else ""
        )
        typer.echo(f"{pair!s:<14} {','.join(on):<24}{names}")
    if failed:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


# Commands kept in modules of their own (cli.py stays short): `watch`, `db backup|restore`.
_cli_watch.register(app)
_cli_db.register(db_app, _load)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="tokenpulse")
    sys.exit(0)
