"""The runner interface: build a project and run it as a server.

``MastraAdmin``'s build orchestrator drives a runner through ``build``, ``start``,
``stop``; it decides *what* to run and records state, the runner decides *how*.
Every adapter runs ``mastra_admin.core.testing.RunnerConformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field

from mastra_admin.core.models import Build, Deployment, Project, RunningServer
from mastra_admin.core.source import ProjectSource

__all__ = [
    "BuildArtifact",
    "BuildContext",
    "ExitListener",
    "LogSink",
    "ProjectRunner",
    "ServerExit",
    "ServerStats",
]

_log = structlog.get_logger("mastra_admin.core.runner")

LogSink = Callable[[str], Awaitable[None]]
"""Receives one output line at a time (no trailing newline). The core's sink masks
secret values, writes the build log and feeds live subscribers."""


class BuildContext(BaseModel):
    """Everything a runner needs to build and start one build of a deployment.

    ``env`` is the deployed server's environment as the core computes it (DESIGN §6):
    the project's env vars (decrypted, overrides applied), ``MASTRA_PROJECT_ID``,
    ``MASTRA_DEPLOYMENT_ID``, the collector variables and ``MASTRA_TELEMETRY_DISABLED``.
    The runner adds ``PORT``, the observability dirs and its short allow-list, and
    nothing else. ``secrets`` are values that must never appear in a log.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    build: Build
    deployment: Deployment
    project: Project
    source: ProjectSource
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)


class BuildArtifact(BaseModel):
    """What a successful build left behind, enough to start it again later."""

    build_id: str
    path: str
    created_at: datetime


class ServerStats(BaseModel):
    alive: bool
    healthy: bool
    memory_usage_mb: float | None = None
    cpu_percent: float | None = None


class ServerExit(BaseModel):
    """A supervised server ended without being asked to: what the runner knows."""

    server_id: str
    deployment_id: str
    build_id: str
    exit_code: int | None = None
    reason: str
    """Why, for a person: ``exited with code 1``, ``killed: over its memory limit``."""
    out_of_memory: bool = False
    log_tail: list[str] = Field(default_factory=list)
    """The server's last output lines, secrets masked."""
    at: datetime


ExitListener = Callable[[ServerExit], Awaitable[None]]
"""Told of every ``ServerExit`` as it happens (the core's restart and notification
policy listens here)."""


class ProjectRunner(ABC):
    type: ClassVar[str]
    licence_feature: ClassVar[str | None] = None
    """The licence feature this provider needs (``"k8s-runner"``, say), or ``None``.
    Without it the platform starts, with a warning, but queues no builds."""

    @abstractmethod
    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        """Materialise the source into the build's own directory, install
        dependencies and build. Every step has a timeout.

        Raises ``BuildFailed`` (``step`` = copy, install or build) with a message that
        says what failed. If the calling task is cancelled, kills the whole process
        tree of the running step before re-raising ``CancelledError``.
        """

    @abstractmethod
    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        """Start the built server on a free port and wait until it is healthy.

        Returns an unsaved ``RunningServer`` (healthy, with pid, process start time,
        host and port). Raises ``BuildFailed`` (``step`` = start or health) after
        stopping whatever it started; cancellation likewise leaves nothing behind.
        """

    @abstractmethod
    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        """Stop the server and everything it spawned (SIGTERM, then SIGKILL after
        ``grace_s``) and release its port. Stopping a stopped server is a no-op."""

    @abstractmethod
    async def is_alive(self, server: RunningServer) -> bool:
        """Whether this exact server still runs (same pid *and* same process start
        time, so that a reused pid is not mistaken for it)."""

    @abstractmethod
    async def stats(self, server: RunningServer) -> ServerStats:
        """Liveness, health check result, memory and CPU now."""

    @abstractmethod
    async def attach(self, server: RunningServer) -> bool:
        """Adopt a server started by an earlier process of the admin (recovery):
        ``True`` if it is alive and now supervised, ``False`` if it is gone."""

    @abstractmethod
    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        """The kept output of an earlier build, if still on disk."""

    @abstractmethod
    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        """Delete kept build outputs of every build not in ``keep`` that no running
        server uses; return the build ids removed."""

    async def abandon_build(self, build_id: str) -> None:
        """Recovery: the worker that ran this build is gone (killed, say). End whatever
        of its steps still runs on this machine, leaving servers alone. Runners whose
        builds cannot outlive their worker keep this no-op."""

    def artifact_roots(self) -> list[str]:
        """Local folders holding one sub-folder per build, each with the build's
        ``observability/`` dir (spans, logs, runtime output) for the ingestion worker.
        Runners whose servers do not write on this machine return ``[]``."""
        return []

    async def close(self) -> None:
        """Stop supervising; servers keep running (they are re-attached on start)."""

    # --- exits, as they happen -------------------------------------------------------

    def add_exit_listener(self, listener: ExitListener) -> None:
        """Have ``listener`` told when a supervised server ends unasked. Runners that
        learn of exits as they happen call ``report_exit``; the others' exits are found
        by the core's periodic ``stats``."""
        listeners: list[ExitListener] = self.__dict__.setdefault("_exit_listeners", [])
        listeners.append(listener)

    def reports_exit_of(self, server: RunningServer) -> bool:
        """Whether this runner will ``report_exit`` when ``server`` ends (it watches the
        process itself): the core's health round then waits for that report, which
        says more (the exit code, the last lines), before it declares the server gone.
        ``False`` unless a runner says otherwise."""
        return False

    async def report_exit(self, exit: ServerExit) -> None:
        """Tell every listener; one that fails is logged, never the runner's problem."""
        for listener in list(self.__dict__.get("_exit_listeners", ())):
            try:
                await listener(exit)
            except Exception as exc:
                _log.warning(
                    "runner.exit_listener_failed", server_id=exit.server_id, error=str(exc)
                )
