"""``mastra-admin migrate [--check]``: apply or list the admin schema's migrations."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from mastra_admin.core.errors import MastraAdminError

from ._migrations import MigrationStatus
from ._settings import PgSettings
from ._storage import PgAdminStorage

__all__ = ["main", "migrate_command", "pg_group", "run_migrate"]


def _installation_settings() -> Any:
    """The installation's settings; inside ``mastra-admin`` with its ``--config`` and
    ``--data-dir`` (the root command keeps them in its context object)."""
    from mastra_admin.core.settings import MastraAdminSettings, load_settings

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, dict):
        if isinstance(obj.get("settings"), MastraAdminSettings):
            return obj["settings"]
        overrides = {k: v for k, v in (obj.get("overrides") or {}).items() if v is not None}
        return load_settings(obj.get("config"), **overrides)
    return load_settings()


def _settings() -> tuple[PgSettings, Path]:
    """The ``[storage]`` settings of this installation, as the server would read them."""
    from mastra_admin.core.compose import provider_settings

    from .plugin import PROVIDER

    try:
        settings = _installation_settings()
        provider = settings.section("storage").provider
        if provider != "pg":
            raise click.ClickException(
                f"the storage provider is {provider!r}; migrate applies to 'pg' only"
            )
        pg = provider_settings(PROVIDER, settings)
    except MastraAdminError as exc:
        raise click.ClickException(exc.message) from exc
    if not isinstance(pg, PgSettings):
        raise click.ClickException("the pg provider gave unexpected settings")
    return pg, Path(settings.data_dir).expanduser().resolve() / "postgres"


async def run_migrate(settings: PgSettings, data_dir: Path, *, check_only: bool) -> MigrationStatus:
    """Open the storage without seeding anything, migrate (or check), close."""
    storage = PgAdminStorage(settings=settings, data_dir=data_dir)
    try:
        await storage.connect()
        return await storage.migrate(check_only=check_only)
    finally:
        await storage.close()


@click.command("migrate")
@click.option(
    "--check",
    is_flag=True,
    help="Only report: exit 1 when migrations are pending (nothing is changed).",
)
def migrate_command(check: bool) -> None:
    """Create or upgrade the admin database schema (PostgreSQL)."""
    settings, data_dir = _settings()
    try:
        status = asyncio.run(run_migrate(settings, data_dir, check_only=check))
    except MastraAdminError as exc:
        raise click.ClickException(exc.message) from exc
    schema = settings.schema_name
    for done in status.applied:
        click.echo(f"applied  {done.version:04d}_{done.name}  {done.applied_at:%Y-%m-%d %H:%M}")
    if check:
        for pending in status.pending:
            click.echo(f"pending  {pending.version:04d}_{pending.name}")
        if status.pending:
            click.echo(f"schema {schema!r}: {len(status.pending)} migration(s) pending")
            sys.exit(1)
        click.echo(f"schema {schema!r} is up to date")
        return
    click.echo(
        f"schema {schema!r}: {len(status.newly_applied)} migration(s) applied now, "
        f"{len(status.applied)} in total"
    )


@click.group("pg")
def pg_group() -> None:
    """PostgreSQL storage commands."""


pg_group.add_command(migrate_command)
main = pg_group
