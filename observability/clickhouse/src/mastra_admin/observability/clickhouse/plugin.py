"""The ``mastra_admin`` plugin of this distribution: observability provider ``clickhouse``
and the ``ingest`` and ``clickhouse migrate`` commands."""

from __future__ import annotations

from typing import Any

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.observability.clickhouse._backend import ClickHouseObservability
from mastra_admin.observability.clickhouse._settings import ClickHouseSettings

__all__ = ["PROVIDER", "create_observability", "mastra_admin_cli", "mastra_admin_providers"]


def create_observability(
    settings: ClickHouseSettings, context: ProviderContext
) -> ClickHouseObservability:
    """The factory: a ClickHouse server when ``url`` (or ``CLICKHOUSE_URL``) is set,
    else the embedded engine in ``{data_dir}/clickhouse``. Not initialised
    (``MastraAdmin.init`` does that)."""
    return ClickHouseObservability(settings, data_dir=context.data_dir)


PROVIDER = ProviderSpec(
    kind="observability",
    name="clickhouse",
    settings_model=ClickHouseSettings,
    factory=create_observability,
    description="Traces, spans, logs, metrics, scores and feedback in ClickHouse; the "
    "embedded engine (chDB) when no server is set.",
)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [PROVIDER]


@hookimpl
def mastra_admin_cli(group: Any) -> None:
    from mastra_admin.observability.clickhouse._cli import clickhouse_group, ingest_command

    if "ingest" not in getattr(group, "commands", {}):
        group.add_command(ingest_command)
    group.add_command(clickhouse_group)
