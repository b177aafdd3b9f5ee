"""The ``mastra_admin`` plugin of this distribution: storage provider ``pg`` and the
``migrate`` command."""

from __future__ import annotations

from typing import Any

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec

from ._settings import PgSettings
from ._storage import PgAdminStorage

__all__ = ["PROVIDER", "create_storage", "mastra_admin_cli", "mastra_admin_providers"]


def create_storage(settings: PgSettings, context: ProviderContext) -> PgAdminStorage:
    """The factory: a server when ``url``/``host`` is set, else the embedded one in
    ``{data_dir}/postgres``. Not initialised (``MastraAdmin.init`` does that)."""
    return PgAdminStorage(settings=settings, data_dir=context.data_dir / "postgres")


PROVIDER = ProviderSpec(
    kind="storage",
    name="pg",
    settings_model=PgSettings,
    factory=create_storage,
    description="PostgreSQL (15+) via psycopg 3; an embedded PostgreSQL when no server is set.",
)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [PROVIDER]


@hookimpl
def mastra_admin_cli(group: Any) -> None:
    """``mastra-admin pg migrate [--check]``, and ``mastra-admin migrate`` itself unless
    the command line already has one (the server's migrates every schema)."""
    from ._cli import migrate_command, pg_group

    group.add_command(pg_group)
    if "migrate" not in group.commands:
        group.add_command(migrate_command)
