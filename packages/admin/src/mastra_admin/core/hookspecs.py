"""The hooks a MastraAdmin plugin can implement (pluggy project ``mastra_admin``).

A plugin is a module or object with functions named like these specs and marked with
``mastra_admin.core.hookimpl``, published under the ``mastra_admin`` entry-point
group. An implementation may take any subset of a spec's arguments; specs only ever
gain arguments. Hooks documented as *async-capable* may return an awaitable, which
``mastra_admin.core.plugins.call_async`` awaits. Every spec here has a section in
``docs/plugins.md`` and a test that exercises it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.models import Build, Deployment, DeploymentStatus, Project
    from mastra_admin.core.plugins import ProviderSpec
    from mastra_admin.core.recovery import DeploymentEvent

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "mastra_admin"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mastra_admin_providers() -> Sequence[ProviderSpec]:
    """Return the providers this plugin offers.

    :return: provider specs (``kind``, ``name``, settings model, factory). Every
        adapter distribution registers its own through this hook; the composition
        root picks one per kind by the name in the settings.
    :calling: all implementations, results concatenated; synchronous.
    :since: 0.1.0
    """
    raise NotImplementedError


@hookspec
def mastra_admin_routes(admin: MastraAdmin) -> Sequence[Any]:
    """Return extra Starlette routes that the HTTP server mounts.

    :param admin: the running ``MastraAdmin``.
    :return: ``starlette.routing.BaseRoute`` objects; paths should sit under
        ``/api/plugins/<plugin>/`` or ``/plugins/<plugin>/``.
    :calling: all implementations, results concatenated; synchronous.
    :since: 0.1.0
    """
    raise NotImplementedError


@hookspec
def mastra_admin_cli(group: Any) -> None:
    """Add commands to the ``mastra-admin`` command line.

    :param group: the root ``click.Group``; call ``group.add_command(...)``.
    :calling: all implementations; synchronous; return value ignored.
    :since: 0.1.0
    """


@hookspec
def mastra_admin_startup(admin: MastraAdmin) -> Awaitable[None] | None:
    """Called once after ``MastraAdmin.init()`` has finished.

    :param admin: the initialised ``MastraAdmin``.
    :calling: all implementations; async-capable; errors are logged, not raised.
    :since: 0.1.0
    """


@hookspec
def mastra_admin_shutdown(admin: MastraAdmin) -> Awaitable[None] | None:
    """Called once when ``MastraAdmin.close()`` begins, before providers close.

    :param admin: the ``MastraAdmin`` being closed.
    :calling: all implementations; async-capable; errors are logged, not raised.
    :since: 0.1.0
    """


@hookspec
def mastra_admin_build_finished(
    admin: MastraAdmin, build: Build, deployment: Deployment, project: Project
) -> Awaitable[None] | None:
    """Called when a build reaches a final status (succeeded, failed or cancelled).

    :param admin: the ``MastraAdmin`` that ran the build.
    :param build: the build in its final state (``status``, ``error_message``).
    :param deployment: the deployment as it is after the build.
    :param project: the deployment's project.
    :calling: all implementations; async-capable; errors are logged, not raised.
    :since: 0.1.0
    """


@hookspec
def mastra_admin_deployment_status_changed(
    admin: MastraAdmin,
    deployment: Deployment,
    previous: DeploymentStatus,
) -> Awaitable[None] | None:
    """Called when a deployment's status changes (e.g. ``building`` to ``running``).

    :param admin: the ``MastraAdmin``.
    :param deployment: the deployment with its new status.
    :param previous: the status it had before.
    :calling: all implementations; async-capable; errors are logged, not raised.
    :since: 0.1.0
    """


@hookspec
def mastra_admin_deployment_event(
    admin: MastraAdmin, event: DeploymentEvent, deployment: Deployment
) -> Awaitable[None] | None:
    """Called when a deployment's server crashed, was restarted, recovered or went
    into a crash loop (``event.kind``), after the event was recorded.

    :param admin: the ``MastraAdmin``.
    :param event: what happened, with the crashes' exit codes and last log lines.
    :param deployment: the deployment as it is after the event.
    :calling: all implementations; async-capable; errors are logged, not raised.
    :since: 0.1.0
    """
