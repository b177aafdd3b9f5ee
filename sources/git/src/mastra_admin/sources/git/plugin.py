"""Registers the git project source as the ``source`` provider named ``git``."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.sources.git._provider import GitProjectSource
from mastra_admin.sources.git._settings import GitSourceSettings

__all__ = ["create_source", "mastra_admin_providers"]


def create_source(settings: GitSourceSettings, context: ProviderContext) -> GitProjectSource:
    """The provider factory: a ``GitProjectSource`` keeping its projects in the
    platform's storage and its secrets encrypted with the platform's key."""
    if context.storage is None:
        raise Unavailable(
            "the git source needs the platform's storage, which is not set up yet",
            details={"provider": "source:git", "needs": "storage"},
        )
    if context.encryption is None:
        raise Unavailable(
            "the git source needs the platform's encryption provider (it keeps repository "
            "credentials and webhook secrets encrypted), which is not set up yet",
            details={"provider": "source:git", "needs": "encryption"},
        )
    return GitProjectSource(
        settings,
        storage=context.storage,
        encryption=context.encryption,
        cache_dir=settings.resolved_cache_dir(context.data_dir),
        data_dir=context.data_dir,
    )


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="source",
            name="git",
            settings_model=GitSourceSettings,
            factory=create_source,
            description="Mastra projects in git repositories (https, ssh, local), with webhooks.",
        )
    ]
