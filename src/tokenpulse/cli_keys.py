"""``tokenpulse keys …``: manage stored API keys (SPEC §8.1) from the command line.

Each command opens the history database (``DATABASE_URL``; SQLite is migrated in place like
the service does, PostgreSQL must be at head: ``tokenpulse db upgrade``), needs
``AUTH_KEY_PEPPER``, and prints a table or, with ``--json``, one JSON document. A change is
announced on the Redis bus and counted in the keys' shared revision when
``CACHE_BACKEND=redis``, so running instances apply it within a second; a single in-process
instance picks it up at its next ``AUTH_KEYS_REFRESH``.

Exit codes: 0 done, 1 no such key or the database failed, 2 invalid configuration or input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from tokenpulse.settings import ConfigError, Settings, load_settings

EXIT_FAILED = 1
EXIT_INVALID = 2
T = TypeVar("T")

keys_app = typer.Typer(help="Manage stored API keys (needs AUTH_KEY_PEPPER).", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
KeyIdArgument = Annotated[str, typer.Argument(help="The key id (the part after tp_live_)")]
COLUMNS = ("key_id", "name", "owner", "tier", "role", "status", "created_at", "expires_at")


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(config).settings
    except ConfigError as exc:
        typer.echo("tokenpulse: invalid configuration:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    if not settings.auth_key_pepper:
        typer.echo(
            "tokenpulse: AUTH_KEY_PEPPER is not set: stored keys are hashed with it "
            "(e.g. AUTH_KEY_PEPPER=$(openssl rand -base64 32))",
            err=True,
        )
        raise typer.Exit(EXIT_INVALID)
    return settings


def _run(config: Path | None, action: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``action(key_service)`` against the configured database; map errors to exit codes."""
    from tokenpulse.domain.errors import InvalidParameter, StoreError, TokenNotFound

    settings = _settings(config)

    async def main() -> T:
        from tokenpulse.services.access.keys import KeyService
        from tokenpulse.store.history import migrate
        from tokenpulse.store.keys import SqlKeyStore

        url = settings.database_url
        if url.startswith("sqlite"):
            await migrate.upgrade(url)
        elif await migrate.current_revision(url) != migrate.head():
            raise StoreError("the database is not at the current schema: run tokenpulse db upgrade")
        store = SqlKeyStore.from_url(url)
        redis_client: Any = None
        bus: Any = None
        revision: Any = None
        if settings.cache_backend == "redis":
            from tokenpulse.bus.redis import RedisBus
            from tokenpulse.store.cache.redis import from_url
            from tokenpulse.store.keyrevision import RedisKeyRevision

            redis_client = from_url(settings.effective_redis_url)
            bus = RedisBus(redis_client, prefix=settings.redis_key_prefix + "bus:")
            revision = RedisKeyRevision(redis_client, key_prefix=settings.redis_key_prefix)
        service = KeyService(store, pepper=settings.auth_key_pepper, bus=bus, revision=revision)
        try:
            return await action(service)
        finally:
            await store.close()
            if bus is not None:
                await bus.close()  # publishes the announcement still queued
            if redis_client is not None:
                await redis_client.aclose()

    try:
        return asyncio.run(main())
    except TokenNotFound as exc:
        typer.echo(f"tokenpulse: {exc.message}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except InvalidParameter as exc:
        typer.echo(f"tokenpulse: {exc.message}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except StoreError as exc:
        typer.echo(f"tokenpulse: {exc.message}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _print(rows: list[dict[str, Any]], as_json: bool, *, secret: str | None = None) -> None:
    if as_json:
        document: Any = rows if secret is None and len(rows) != 1 else rows[0]
        if secret is not None:
            document = {"key": secret, **rows[0]}
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    if secret is not None:
        typer.echo(f"key: {secret}")
        typer.echo("(shown once: store it now, it cannot be shown again)")
    widths = {c: max(len(c), *(len(str(r.get(c) or "-")) for r in rows)) for c in COLUMNS}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip())
    for row in rows:
        typer.echo("  ".join(str(row.get(c) or "-").ljust(widths[c]) for c in COLUMNS).rstrip())


def _json_of(record: Any) -> dict[str, Any]:
    from tokenpulse.api.access.schemas import key_json

    return key_json(record)


def _duration(text: str, name: str) -> float:
    from tokenpulse.domain.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        typer.echo(f"tokenpulse: {name} must be a duration such as 90d or 12h", err=True)
        raise typer.Exit(EXIT_INVALID) from None


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the key is for")],
    owner: Annotated[str, typer.Option(help="Who holds it")] = "",
    tier: Annotated[str, typer.Option(help="free, pro or enterprise")] = "free",
    role: Annotated[str, typer.Option(help="reader, analyst or admin")] = "reader",
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d")] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(help="Allowed origin")] = None,
    allow_ip: Annotated[list[str] | None, typer.Option(help="Allowed IP or network")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once."""
    from tokenpulse.domain.time import utcnow

    seconds = _duration(expires_in, "--expires-in") if expires_in else None

    async def action(keys: Any) -> tuple[Any, str]:
        expires_at = utcnow() + timedelta(seconds=seconds) if seconds else None
        result: tuple[Any, str] = await keys.create(
            name=name,
            owner=owner,
            tier=tier,
            role=role,
            expires_at=expires_at,
            allowed_origins=allow_origin or (),
            allowed_ips=allow_ip or (),
        )
        return result

    record, text = _run(config, action)
    _print([_json_of(record)], as_json, secret=text)


@keys_app.command("list")
def list_keys(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List every key (never a secret)."""

    async def action(keys: Any) -> list[Any]:
        result: list[Any] = await keys.list()
        return result

    rows = [_json_of(r) for r in _run(config, action)]
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif rows:
        _print(rows, False)
    else:
        typer.echo("no keys")


def _one(config: Path | None, as_json: bool, action: Callable[[Any], Awaitable[Any]]) -> None:
    _print([_json_of(_run(config, action))], as_json)


@keys_app.command("show")
def show(key_id: KeyIdArgument, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show one key."""
    _one(config, as_json, lambda keys: keys.show(key_id))


@keys_app.command("revoke")
def revoke(key_id: KeyIdArgument, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Revoke a key (refused on every instance; its session tokens stop working)."""
    _one(config, as_json, lambda keys: keys.revoke(key_id))


@keys_app.command("rotate")
def rotate(
    key_id: KeyIdArgument,
    grace: Annotated[
        str | None, typer.Option(help="Old secret valid for (AUTH_ROTATE_GRACE)")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a key a new secret (printed once); the old one works during the grace period."""
    seconds = _duration(grace, "--grace") if grace is not None else None

    async def action(keys: Any) -> tuple[Any, str]:
        chosen = seconds if seconds is not None else _settings(config).auth_rotate_grace
        result: tuple[Any, str] = await keys.rotate(key_id, grace=chosen)
        return result

    record, text = _run(config, action)
    _print([_json_of(record)], as_json, secret=text)


@keys_app.command("set-tier")
def set_tier(
    key_id: KeyIdArgument,
    tier: Annotated[str, typer.Argument(help="free, pro or enterprise")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a key's tier."""
    _one(config, as_json, lambda keys: keys.set_tier(key_id, tier))


@keys_app.command("set-role")
def set_role(
    key_id: KeyIdArgument,
    role: Annotated[str, typer.Argument(help="reader, analyst or admin")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a key's role."""
    _one(config, as_json, lambda keys: keys.set_role(key_id, role))
