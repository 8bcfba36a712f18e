"""``tokenpulse db backup PATH`` and ``tokenpulse db restore PATH`` (the history database).

Kept apart from cli.py, which registers them on its ``db`` group through :func:`register`.
The work is in :mod:`tokenpulse.store.history.backup`: SQLite's online backup API (the service
may keep running), or ``pg_dump``/``pg_restore`` for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tokenpulse.settings import LoadedSettings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (default: ./config.yaml)"),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="overwrite an existing backup file / non-empty database")
]


def register(db_app: typer.Typer, load: Callable[[Path | None], LoadedSettings]) -> None:
    """Add ``backup`` and ``restore`` to the ``db`` command group."""

    @db_app.command("backup")
    def db_backup(
        path: Annotated[Path, typer.Argument(help="the backup file to write")],
        config: ConfigOption = None,
        force: ForceOption = False,
    ) -> None:
        """Back up the history database (DATABASE_URL) into PATH, online.

        SQLite: a consistent copy through SQLite's backup API while the service runs.
        PostgreSQL: pg_dump --format=custom (restore it with `tokenpulse db restore`).
        """
        from tokenpulse.domain.errors import StoreError
        from tokenpulse.store.history.backup import backup

        settings = load(config).settings
        try:
            result = backup(settings.database_url, path, overwrite=force)
        except StoreError as exc:
            typer.echo(f"tokenpulse: backup failed: {exc.message}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"backed up {result.kind} {result.source} to {result.target} "
                   f"({result.size_bytes} bytes)")  # fmt: skip

    @db_app.command("restore")
    def db_restore(
        path: Annotated[Path, typer.Argument(help="a file written by `tokenpulse db backup`")],
        config: ConfigOption = None,
        force: ForceOption = False,
    ) -> None:
        """Restore a backup into the history database (DATABASE_URL); stop the service first.

        Into an existing, non-empty database only with --force (which replaces its contents).
        """
        from tokenpulse.domain.errors import StoreError
        from tokenpulse.store.history.backup import restore

        settings = load(config).settings
        try:
            result = restore(path, settings.database_url, overwrite=force)
        except StoreError as exc:
            typer.echo(f"tokenpulse: restore failed: {exc.message}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"restored {result.source} into {result.kind} {result.target}")


__all__ = ["register"]
