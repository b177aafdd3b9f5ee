"""Registers the runner ``limited`` with MastraAdmin's plugin manager."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.runners.limited._runner import LimitedProcessRunner
from mastra_admin.runners.limited._settings import LimitedRunnerSettings

__all__ = ["create_runner", "mastra_admin_providers"]


def create_runner(
    settings: LimitedRunnerSettings, context: ProviderContext
) -> LimitedProcessRunner:
    """The factory: projects are copied through the configured source."""
    if context.source is None:
        raise Unavailable("the limited runner needs a project source; configure [source]")
    return LimitedProcessRunner(context.source, settings, data_dir=context.data_dir)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="runner",
            name="limited",
            settings_model=LimitedRunnerSettings,
            factory=create_runner,
            description="Local processes at a lower CPU priority, with open-file and "
            "heap limits (prlimit and nice).",
        )
    ]
