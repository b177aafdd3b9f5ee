"""Registers the runner ``local`` with MastraAdmin's plugin manager."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.runners.local._runner import LocalProcessRunner
from mastra_admin.runners.local._settings import LocalRunnerSettings

__all__ = ["create_runner", "mastra_admin_providers"]


def create_runner(settings: LocalRunnerSettings, context: ProviderContext) -> LocalProcessRunner:
    """The factory: the runner copies projects through the configured source."""
    if context.source is None:
        raise Unavailable("the local runner needs a project source; configure [source]")
    return LocalProcessRunner(context.source, settings, data_dir=context.data_dir)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="runner",
            name="local",
            settings_model=LocalRunnerSettings,
            factory=create_runner,
            description="Builds projects with npm/pnpm/yarn/bun and runs their servers "
            "as local processes.",
        )
    ]
