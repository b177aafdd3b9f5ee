"""Registers the runner ``docker`` with MastraAdmin's plugin manager."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.runners.docker._runner import DockerRunner
from mastra_admin.runners.docker._settings import DockerRunnerSettings

__all__ = ["create_runner", "mastra_admin_providers"]


def create_runner(settings: DockerRunnerSettings, context: ProviderContext) -> DockerRunner:
    """The factory: the runner copies projects through the configured source."""
    if context.source is None:
        raise Unavailable("the docker runner needs a project source; configure [source]")
    return DockerRunner(context.source, settings, data_dir=context.data_dir)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="runner",
            name="docker",
            settings_model=DockerRunnerSettings,
            factory=create_runner,
            description="Builds projects in build containers and runs each server in a "
            "container of its own on Docker Engine.",
        )
    ]
