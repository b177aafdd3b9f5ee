"""Registers the local project source as the ``source`` provider named ``local``."""

from __future__ import annotations

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.sources.local._provider import LocalProjectSource
from mastra_admin.sources.local._settings import LocalSourceSettings

__all__ = ["create_source", "mastra_admin_providers"]


def create_source(settings: LocalSourceSettings, context: ProviderContext) -> LocalProjectSource:
    """The provider factory: a ``LocalProjectSource`` from its settings section."""
    del context
    return LocalProjectSource(settings)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="source",
            name="local",
            settings_model=LocalSourceSettings,
            factory=create_source,
            description="Mastra projects in folders on this machine (PROJECTS_DIR).",
        )
    ]
