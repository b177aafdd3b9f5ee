"""``Hooks``: the core's event hooks (``mastra_admin.core.hookspecs``) as typed calls.

The core fires ``hooks.build_finished(build=..., ...)`` rather than a hook's name as a
string, so a misspelt hook or a missing argument fails at type-check time. One method
per event hook spec, with the spec's arguments except ``admin``, which is filled in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mastra_admin.core.models import Build, Deployment, DeploymentStatus, Project
    from mastra_admin.core.plugins import PluginManager
    from mastra_admin.core.recovery import DeploymentEvent

__all__ = ["Hooks"]


class Hooks:
    """Fires the event hooks on every plugin of ``plugins`` (nothing without one).

    ``admin`` is what plugins receive as their ``admin`` argument: the
    ``MastraAdmin`` facade. It is typed loosely on purpose, so that the services and
    the orchestrator below the facade never import it. A failing plugin is logged by
    ``PluginManager.call_async``, never raised.
    """

    def __init__(self, plugins: PluginManager | None, admin: object) -> None:
        self.plugins = plugins
        self.admin = admin

    async def fire(self, hook: str, **kwargs: Any) -> None:
        """Call an event hook by name (kept for ``MastraAdmin.fire``; the core uses
        the typed methods below)."""
        if self.plugins is not None:
            await self.plugins.call_async(hook, admin=self.admin, **kwargs)

    async def startup(self) -> None:
        """``mastra_admin_startup``: ``MastraAdmin.init()`` has finished."""
        await self.fire("mastra_admin_startup")

    async def shutdown(self) -> None:
        """``mastra_admin_shutdown``: ``MastraAdmin.close()`` begins."""
        await self.fire("mastra_admin_shutdown")

    async def build_finished(
        self, *, build: Build, deployment: Deployment, project: Project
    ) -> None:
        """``mastra_admin_build_finished``: a build reached a final status."""
        await self.fire(
            "mastra_admin_build_finished", build=build, deployment=deployment, project=project
        )

    async def deployment_status_changed(
        self, *, deployment: Deployment, previous: DeploymentStatus
    ) -> None:
        """``mastra_admin_deployment_status_changed``: a deployment's status changed."""
        await self.fire(
            "mastra_admin_deployment_status_changed", deployment=deployment, previous=previous
        )

    async def deployment_event(self, *, event: DeploymentEvent, deployment: Deployment) -> None:
        """``mastra_admin_deployment_event``: a server crashed, restarted, recovered or
        went into a crash loop."""
        await self.fire("mastra_admin_deployment_event", event=event, deployment=deployment)
