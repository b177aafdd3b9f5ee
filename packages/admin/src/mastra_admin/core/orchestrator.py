"""The build orchestrator: workers that take builds off the queue and deploy them.

For each build (DESIGN §5): build with the runner (or, for a rollback, take the kept
output of an earlier build), start the server, point the route at it, and only then
stop the deployment's previous server, so a deployment never goes dark and a failure
at any step leaves the old server serving. Written only against the provider
interfaces, so it runs the same on every storage, runner and router. Any number of
orchestrators in any number of processes may share one queue: the storage's
``dequeue`` hands each build out once, and a lease (renewed while the build runs)
lets ``recover`` tell a dead worker's builds from live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from uuid import uuid4

import structlog

from mastra_admin.core.build_logs import BuildLogs
from mastra_admin.core.build_steps import mask_secrets
from mastra_admin.core.errors import BuildFailed, MastraAdminError, NotFound
from mastra_admin.core.events import EventType
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    HealthStatus,
    Project,
    Route,
    RunningServer,
    Team,
    utcnow,
)
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.core.recovery import (
    CrashPolicy,
    CrashRecord,
    DeploymentEvent,
    DeploymentEventKind,
    event_log_record,
)
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.runner import BuildArtifact, BuildContext, LogSink, ServerExit
from mastra_admin.core.settings import BuildSettings
from mastra_admin.core.storage import BuildUpdate, DeploymentUpdate, RunningServerUpdate

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext
    from mastra_admin.core.source import ProjectSource

__all__ = ["BuildOrchestrator", "Deployments", "OrchestratorStats"]

_log = structlog.get_logger("mastra_admin.core.orchestrator")

_ACTIVE = (BuildStatus.BUILDING, BuildStatus.DEPLOYING)
INTERRUPTED = "interrupted: the worker running it stopped"
LEASE_LOST = "interrupted: the worker lost its hold on the build (lease expired)"


def default_worker_id() -> str:
    """``host:pid:random``, so that recovery can tell whether a worker is alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_local_worker(worker_id: str | None, host: str) -> bool:
    """Whether ``worker_id`` names a process on this host that no longer runs."""
    if not worker_id:
        return False
    parts = worker_id.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    return pid != os.getpid() and not _pid_alive(pid)


@dataclass
class OrchestratorStats:
    """Counters of this process's orchestrator (for ``/metrics`` and the CLI)."""

    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered_builds: int = 0
    detached_servers: int = 0
    crashes: int = 0
    restarts: int = 0
    """Crashed servers restarted and healthy again."""
    last_error: str | None = None
    active: set[str] = field(default_factory=set)


@dataclass
class _Job:
    """One build this process is processing."""

    build: Build
    task: asyncio.Task[Build | None] | None = None
    cancel_reason: str | None = None
    committed: bool = False
    """The route points at the new server: from here on the build is done, not undone."""
    settling: bool = False
    """The build's end is being recorded; a late cancel must not interrupt that."""


class _BuildEndedError(Exception):
    """Ends processing early with a final status other than success."""

    def __init__(self, status: BuildStatus, message: str | None) -> None:
        super().__init__(message or status.value)
        self.status = status
        self.message = message


class Deployments(Protocol):
    """What the orchestrator works for: the deployments service
    (``mastra_admin.core.services.deployments.DeploymentService``). Only this, so
    that a deploy reads in one direction: service, orchestrator, runner, router."""

    @property
    def context(self) -> ServiceContext: ...

    async def load_deployment(self, deployment_id: str) -> tuple[Deployment, Project, Team]:
        """The deployment with its project and team (``NotFound`` when gone)."""
        ...

    async def build_env(
        self, deployment: Deployment, project: Project
    ) -> tuple[dict[str, str], list[str]]:
        """The core's part of the server's environment, and the values to mask."""
        ...

    def subdomain_for(self, team: Team, project: Project, deployment: Deployment) -> str:
        """The host name the router gives the deployment."""
        ...

    async def cleanup_expired_previews(self) -> list[str]:
        """Delete expired preview deployments (run by the supervisor)."""
        ...


class BuildOrchestrator:
    """Runs ``settings.builds.workers`` workers and a supervisor in this process.

    ``start()``/``stop()`` for a long-running server; ``run_once()`` for tests and
    ``mastra-admin worker --once``; ``wake()`` after an enqueue so a worker looks
    at once instead of at its next poll.
    """

    status_poll_s: float = 0.5
    exit_report_grace_s: float = 30.0
    """How long health rounds wait for the runner's exit report of a dead server it
    watches (``ProjectRunner.reports_exit_of``) before declaring it gone themselves."""
    """How often a running build's status is checked (cancel from another process)."""

    def __init__(self, deployments: Deployments, *, worker_id: str | None = None) -> None:
        self.deployments = deployments
        self.worker_id = worker_id or default_worker_id()
        self.stats = OrchestratorStats()
        self._jobs: dict[str, _Job] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        limit = self.settings.max_active_builds
        self._slots = asyncio.Semaphore(limit if limit is not None else 1_000_000)
        self._stopping = False
        self._listening = False
        self.crashes = CrashPolicy(self.context.settings.recovery)
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._unhealthy: dict[str, int] = {}
        self._dead_since: dict[str, float] = {}

    @property
    def context(self) -> ServiceContext:
        """The storage, providers and hooks the builds use."""
        return self.deployments.context

    @property
    def settings(self) -> BuildSettings:
        return self.context.settings.builds

    @property
    def build_logs(self) -> BuildLogs | None:
        """The build logs (``None`` without file storage: lines are dropped)."""
        return self.context.build_logs

    @property
    def running(self) -> bool:
        return bool(self._workers) or self._supervisor is not None

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Launch the workers and the supervisor (idempotent)."""
        if self.running:
            return
        self._stopping = False
        self._workers = [
            asyncio.create_task(self._worker_loop(n), name=f"build-worker-{n}")
            for n in range(self.settings.workers)
        ]
        self._supervisor = asyncio.create_task(self._supervise(), name="build-supervisor")
        self.watch_servers()
        _log.info("orchestrator.started", worker_id=self.worker_id, workers=len(self._workers))

    def watch_servers(self) -> None:
        """Hear of servers that end unasked as the runner sees it (``start`` does this;
        idempotent): a crash is then recovered at once, not at the next health round."""
        runner = self.context.runner
        if runner is not None and not self._listening:
            runner.add_exit_listener(self._server_exited)
            self._listening = True

    async def stop(self) -> None:
        """Stop workers and supervisor. Builds in progress are interrupted (their
        step's processes killed by the runner) and marked failed; servers keep
        running and are re-attached by the next start."""
        self._stopping = True
        for job in list(self._jobs.values()):
            self._cancel_job(job, INTERRUPTED)
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        background = [
            *self._workers,
            *([self._supervisor] if self._supervisor else []),
            *self._restarts.values(),
        ]
        for task in background:
            task.cancel()
        if background:
            await asyncio.gather(*background, return_exceptions=True)
        self._workers = []
        self._supervisor = None
        self._restarts.clear()
        _log.info("orchestrator.stopped", worker_id=self.worker_id)

    def wake(self) -> None:
        """Poll the queue now (call after an enqueue)."""
        self._wake.set()

    # --- the queue ---------------------------------------------------------------

    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.lease_s)

    async def _worker_loop(self, n: int) -> None:
        while not self._stopping:
            try:
                processed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a storage hiccup: wait and try again
                self.stats.last_error = str(exc)
                _log.warning("orchestrator.poll_failed", worker=n, error=str(exc))
                processed = None
            if processed is not None:
                continue  # there may be more: look again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
            self._wake.clear()

    async def run_once(self) -> Build | None:
        """Take one build off the queue and process it; return it in its final
        state, or ``None`` when there was nothing to take."""
        async with self._slots:
            build = await self.context.storage.builds.dequeue(
                self.worker_id,
                self._lease_until(),
                max_active=self.settings.max_active_builds,
            )
            if build is None:
                return None
            return await self.process(build)

    def cancel_local(self, build_id: str) -> bool:
        """Cancel a build this process is processing, now. ``False`` if it is not here."""
        job = self._jobs.get(build_id)
        if job is None or job.task is None or job.task.done():
            return False
        return self._cancel_job(job, "cancelled")

    def _cancel_job(self, job: _Job, reason: str) -> bool:
        if job.committed or job.settling or job.cancel_reason is not None or job.task is None:
            return False
        job.cancel_reason = reason
        job.task.cancel()
        return True

    # --- one build ---------------------------------------------------------------

    async def process(self, build: Build) -> Build | None:
        """Process a build already dequeued by this worker (status ``building``)."""
        job = _Job(build=build)
        self._jobs[build.id] = job
        self.stats.active.add(build.id)
        job.task = asyncio.create_task(self._run(job), name=f"build-{build.id}")
        try:
            return await asyncio.shield(job.task)
        except asyncio.CancelledError:
            # The worker itself is being cancelled: interrupt the build and wait for
            # its clean-up, so that nothing is left half done.
            self._cancel_job(job, INTERRUPTED)
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
            raise
        finally:
            self._jobs.pop(build.id, None)
            self.stats.active.discard(build.id)

    async def _run(self, job: _Job) -> Build | None:
        build = job.build
        storage = self.context.storage
        logs = self.build_logs
        started_server: RunningServer | None = None
        saved = False
        deployment: Deployment | None = None
        project: Project | None = None
        sink: LogSink = _discard
        final: Build | None = None
        watcher: asyncio.Task[None] | None = None
        log = _log.bind(build_id=build.id, deployment_id=build.deployment_id)
        try:
            try:
                deployment, project, team = await self.deployments.load_deployment(
                    build.deployment_id
                )
                env, secrets = await self.deployments.build_env(deployment, project)
                if logs is not None:
                    sink = logs.sink(build.id, secrets)
                    build = await storage.builds.update(
                        build.id, BuildUpdate(log_path=logs.path(build.id))
                    )
                log.info("build.started", trigger=build.trigger.value, worker_id=self.worker_id)
                await sink(
                    f"==> build {build.id} ({build.trigger.value}) of {project.slug} "
                    f"{deployment.type.value}/{deployment.branch} on {self.worker_id}"
                )
                deployment = await self._set_deployment(
                    deployment, DeploymentUpdate(status=DeploymentStatus.BUILDING)
                )
                watcher = asyncio.create_task(self._watch(job), name=f"lease-{build.id}")

                source = await self.context.require_source().source_for(project)
                if build.trigger is not BuildTrigger.ROLLBACK:
                    source, build = await self._pin(build, deployment, source, sink)
                ctx = BuildContext(
                    build=build,
                    deployment=deployment,
                    project=project,
                    source=source,
                    env=env,
                    secrets=secrets,
                )
                artifact = await self._artifact(ctx, sink)

                moved = await storage.builds.transition(
                    build.id, [BuildStatus.BUILDING], BuildUpdate(status=BuildStatus.DEPLOYING)
                )
                if moved is None:
                    raise _BuildEndedError(BuildStatus.CANCELLED, None)
                build = moved
                ctx.build = build
                await sink("==> starting the server")
                runner = self.context.require_runner()
                started_server = await runner.start(ctx, artifact, sink)
                server = await storage.servers.create(started_server)
                started_server, saved = server, True
                await sink(f"==> server healthy on {server.host}:{server.port}")

                deployment = await self._switch(job, team, project, deployment, server, sink)
                final = await self._finish_success(build, sink)
            except asyncio.CancelledError:
                reason = job.cancel_reason
                if reason is None:
                    raise  # not ours: propagate
                if reason == "cancelled":
                    raise _BuildEndedError(BuildStatus.CANCELLED, None) from None
                raise _BuildEndedError(BuildStatus.FAILED, reason) from None
            except BuildFailed as exc:
                raise _BuildEndedError(BuildStatus.FAILED, exc.message) from exc
            except NotFound as exc:
                if await storage.builds.get(build.id) is None:
                    log.info("build.vanished")  # its deployment was deleted meanwhile
                    return None
                raise _BuildEndedError(BuildStatus.FAILED, exc.message) from exc
            except _BuildEndedError:
                raise
            except MastraAdminError as exc:  # a provider said no (disk full, bad key ...)
                log.warning("build.step_refused", error=exc.message, code=exc.code)
                raise _BuildEndedError(BuildStatus.FAILED, exc.message) from exc
            except Exception as exc:
                log.exception("build.internal_error")
                message = str(exc) or type(exc).__name__
                raise _BuildEndedError(BuildStatus.FAILED, f"internal error: {message}") from exc
        except _BuildEndedError as outcome:
            job.settling = True
            if watcher is not None:
                watcher.cancel()
            final = await self._finish_unsuccessful(
                build, outcome, started_server if not job.committed else None, saved, sink
            )
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

        if final is not None and final.status is BuildStatus.SUCCEEDED:
            await self._prune()
        await self._announce(final or build, deployment, project)
        return final

    async def _pin(
        self, build: Build, deployment: Deployment, source: ProjectSource, sink: LogSink
    ) -> tuple[ProjectSource, Build]:
        """Pin the build to one commit where the source has revisions (git): the ref
        asked for (else the commit asked for, else the deployment's branch) resolved,
        and the commit recorded on the build."""
        ref = build.ref or build.commit_sha or deployment.branch
        pinned = await self.context.require_source().pin(source, ref)
        if pinned is None:
            if build.ref:
                await sink(f"==> the {source.type} source has no revisions: {build.ref} ignored")
            return source, build
        source, revision = pinned
        build = await self.context.storage.builds.update(
            build.id,
            BuildUpdate(
                commit_sha=revision.sha,
                commit_message=revision.message,
                commit_author=revision.author,
            ),
        )
        subject = (revision.message or "").splitlines()[0][:200] if revision.message else ""
        await sink(f"==> {ref} is commit {revision.sha[:12]} {subject}".rstrip())
        return source, build

    async def _artifact(self, ctx: BuildContext, sink: LogSink) -> BuildArtifact:
        runner = self.context.require_runner()
        build = ctx.build
        if build.trigger is BuildTrigger.ROLLBACK and build.artifact_build_id:
            artifact = await runner.has_artifact(build.artifact_build_id)
            if artifact is None:
                raise BuildFailed(
                    "build",
                    f"the output of build {build.artifact_build_id} is no longer kept; "
                    "deploy again to rebuild it",
                    details={"artifact_build_id": build.artifact_build_id},
                )
            await sink(f"==> rolling back: starting the kept output of build {artifact.build_id}")
            return artifact
        await sink("==> building")
        return await runner.build(ctx, sink)

    async def _switch(
        self,
        job: _Job,
        team: Team,
        project: Project,
        deployment: Deployment,
        server: RunningServer,
        sink: LogSink,
    ) -> Deployment:
        """Point the route at ``server``, then stop the deployment's other servers."""
        storage = self.context.storage
        public_url = deployment.public_url
        router = self.context.router
        try:
            route = await self._route_to(team, project, deployment, server)
        except BuildFailed:
            raise
        except MastraAdminError as exc:
            raise BuildFailed("route", f"routing failed: {exc.message}") from exc
        if route is not None:
            public_url = route.public_url
            await sink(f"==> routed {public_url} to the new server")
        job.committed = True  # traffic goes to the new server: no undoing from here
        self._forget_crashes(deployment.id)
        for old in await storage.servers.list_active(deployment.id):
            if old.id != server.id:
                if router is not None:
                    # Streams still open on the old server end on the router's terms
                    # (its stream close delay), not by the server being stopped.
                    await self._guarded(router.drain(old.host, old.port))
                await self._stop_server(old)
                await sink(f"==> stopped the previous server ({old.host}:{old.port})")
        return await self._set_deployment(
            deployment,
            DeploymentUpdate(
                status=DeploymentStatus.RUNNING,
                current_build_id=job.build.id,
                public_url=public_url,
                internal_host=server.host,
                internal_port=server.port,
            ),
        )

    async def _route_to(
        self, team: Team, project: Project, deployment: Deployment, server: RunningServer
    ) -> Route | None:
        """Point the deployment's host at ``server`` (``None`` without a router)."""
        router = self.context.router
        if router is None:
            return None
        return await router.register_route(
            RouteConfig(
                deployment_id=deployment.id,
                project_id=project.id,
                subdomain=self.deployments.subdomain_for(team, project, deployment),
                target_host=server.host,
                target_port=server.port,
            )
        )

    async def _finish_success(self, build: Build, sink: LogSink) -> Build:
        # The log's last line goes first: a follower stops reading once the status
        # is final, so a line written after it could be missed.
        await sink("==> build succeeded")
        now = utcnow()
        final = await self.context.storage.builds.transition(
            build.id,
            # A cancel that arrives after the switch is too late: the deployment
            # runs this build, so the build is what it is, succeeded.
            [BuildStatus.DEPLOYING, BuildStatus.CANCELLED],
            BuildUpdate(status=BuildStatus.SUCCEEDED, completed_at=now, error_message=None),
        )
        if final is None:  # pragma: no cover - only a foreign writer could do this
            final = await self.context.storage.builds.update(
                build.id, BuildUpdate(status=BuildStatus.SUCCEEDED, completed_at=now)
            )
        self.stats.succeeded += 1
        duration = (now - build.started_at).total_seconds() if build.started_at else None
        _log.info("build.succeeded", build_id=build.id, duration_s=duration)
        return final

    async def _finish_unsuccessful(
        self,
        build: Build,
        outcome: _BuildEndedError,
        started_server: RunningServer | None,
        saved: bool,
        sink: LogSink,
    ) -> Build | None:
        storage = self.context.storage
        if started_server is not None:
            if saved:
                await self._stop_server(started_server)
            else:
                await self._guarded(self.context.require_runner().stop(started_server))
        now = utcnow()
        if outcome.status is BuildStatus.CANCELLED:
            await sink("==> build cancelled")  # before the final status, as above
            final = await storage.builds.transition(
                build.id,
                [*_ACTIVE, BuildStatus.CANCELLED],
                BuildUpdate(status=BuildStatus.CANCELLED, completed_at=now),
            )
            self.stats.cancelled += 1
            _log.info("build.cancelled", build_id=build.id)
        else:
            await sink(f"==> build failed: {outcome.message}")
            final = await storage.builds.transition(
                build.id,
                list(_ACTIVE),
                BuildUpdate(
                    status=BuildStatus.FAILED, completed_at=now, error_message=outcome.message
                ),
            )
            self.stats.failed += 1
            _log.info("build.failed", build_id=build.id, error=outcome.message)
        if final is None:
            final = await storage.builds.get(build.id)
        await self._settle_deployment(build.deployment_id, outcome.status)
        return final

    async def _settle_deployment(self, deployment_id: str, status: BuildStatus) -> None:
        """After a build that did not succeed: ``running`` while a server still serves,
        otherwise ``failed`` (or ``stopped`` when the build was cancelled)."""
        deployment = await self.context.storage.deployments.get(deployment_id)
        if deployment is None:
            return
        if await self.context.storage.servers.list_active(deployment_id):
            target = DeploymentStatus.RUNNING
        elif status is BuildStatus.CANCELLED:
            target = DeploymentStatus.STOPPED
        else:
            target = DeploymentStatus.FAILED
        if deployment.status is not target:
            await self._set_deployment(deployment, DeploymentUpdate(status=target))

    async def _announce(
        self, build: Build, deployment: Deployment | None, project: Project | None
    ) -> None:
        """Wake log followers and tell plugins, whatever happened."""
        if self.build_logs is not None:
            await self.build_logs.finish(build.id)
        current = await self.context.storage.deployments.get(build.deployment_id)
        if current is not None:
            deployment = current
        if deployment is not None and project is not None:
            await self.context.hooks.build_finished(
                build=build, deployment=deployment, project=project
            )

    async def _watch(self, job: _Job) -> None:
        """Renew the lease; cancel the build if it was cancelled elsewhere or the
        lease is lost."""
        storage = self.context.storage
        build_id = job.build.id
        renew_every = self.settings.lease_s / 3
        poll = min(self.status_poll_s, renew_every)
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(poll)
            try:
                current = await storage.builds.get(build_id)
                if current is None or current.status is BuildStatus.CANCELLED:
                    self._cancel_job(job, "cancelled")
                    return
                if time.monotonic() - last_renewal >= renew_every:
                    held = await storage.builds.renew_lease(
                        build_id, self.worker_id, self._lease_until()
                    )
                    last_renewal = time.monotonic()
                    if not held:
                        current = await storage.builds.get(build_id)
                        cancelled = current is None or current.status is BuildStatus.CANCELLED
                        self._cancel_job(job, "cancelled" if cancelled else LEASE_LOST)
                        return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage hiccup: the lease has slack for this
                _log.warning("build.lease_check_failed", build_id=build_id, error=str(exc))

    # --- shared steps ------------------------------------------------------------

    async def _set_deployment(self, deployment: Deployment, patch: DeploymentUpdate) -> Deployment:
        updated = await self.context.storage.deployments.update(deployment.id, patch)
        if updated.status is not deployment.status:
            await self.context.hooks.deployment_status_changed(
                deployment=updated, previous=deployment.status
            )
        return updated

    async def _stop_server(self, server: RunningServer) -> None:
        """Stop a saved server and record it stopped (errors are logged)."""
        runner = self.context.require_runner()
        await self._guarded(
            self.context.storage.servers.update(
                server.id, RunningServerUpdate(health_status=HealthStatus.STOPPING)
            )
        )
        await self._guarded(runner.stop(server, grace_s=self.settings.stop_grace_s))
        await self._guarded(
            self.context.storage.servers.update(
                server.id,
                RunningServerUpdate(stopped_at=utcnow(), health_status=HealthStatus.STOPPED),
            )
        )

    async def _guarded(self, step: Awaitable[Any]) -> None:
        try:
            await step
        except Exception as exc:
            _log.warning("orchestrator.cleanup_failed", error=str(exc))

    async def _prune(self) -> None:
        """Keep the last ``keep_successful`` successful outputs per deployment, plus
        any a server runs or a build in progress will use; delete the rest."""
        storage = self.context.storage
        try:
            succeeded = await storage.builds.list_by_status([BuildStatus.SUCCEEDED])
            per_deployment: dict[str, list[Build]] = {}
            for b in succeeded:  # oldest first
                per_deployment.setdefault(b.deployment_id, []).append(b)
            wanted = [
                b
                for builds in per_deployment.values()
                for b in builds[-self.settings.keep_successful :]
            ]
            wanted += await storage.builds.list_by_status([BuildStatus.QUEUED, *_ACTIVE])
            for server in await storage.servers.list_active():
                serving = await storage.builds.get(server.build_id)
                if serving is not None:
                    wanted.append(serving)
            # A rollback build runs the output of an earlier build: keep that one.
            keep = {b.id for b in wanted} | {
                b.artifact_build_id for b in wanted if b.artifact_build_id
            }
            removed = await self.context.require_runner().prune_artifacts(sorted(keep))
            if removed:
                _log.info("build.artifacts_pruned", removed=len(removed))
        except Exception as exc:
            _log.warning("build.prune_failed", error=str(exc))

    # --- supervision and recovery ------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                await self.refresh_servers()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("orchestrator.health_refresh_failed", error=str(exc))
            try:
                await self.deployments.cleanup_expired_previews()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("orchestrator.preview_cleanup_failed", error=str(exc))

    async def refresh_servers(self) -> None:
        """Record health, memory and CPU of every active server; a server whose
        process is gone is marked stopped (and its deployment failed if it served it)."""
        runner = self.context.require_runner()
        storage = self.context.storage
        for server in await storage.servers.list_active():
            if server.health_status is HealthStatus.STOPPING:
                continue  # being stopped on purpose right now
            stats = await runner.stats(server)
            now = utcnow()
            if not stats.alive:
                self._unhealthy.pop(server.id, None)
                # A runner that reports exits as they happen says more (the exit code,
                # the last lines): its report is awaited, for a while.
                dead_since = self._dead_since.setdefault(server.id, time.monotonic())
                waited = time.monotonic() - dead_since
                if runner.reports_exit_of(server) and waited < self.exit_report_grace_s:
                    continue
                self._dead_since.pop(server.id, None)
                await self._mark_gone(server, CrashRecord(reason="the process is gone"))
                continue
            self._dead_since.pop(server.id, None)
            failed = 0 if stats.healthy else self._unhealthy.get(server.id, 0) + 1
            self._unhealthy[server.id] = failed
            limit = self.context.settings.recovery.unhealthy_checks
            if failed >= limit and await self._is_current(server):
                self._unhealthy.pop(server.id, None)
                await self._stop_server(server)
                await self._mark_gone(
                    server,
                    CrashRecord(reason=f"failed {failed} health checks in a row; stopped"),
                    stopped=True,
                )
                continue
            await storage.servers.update(
                server.id,
                RunningServerUpdate(
                    health_status=HealthStatus.HEALTHY if stats.healthy else HealthStatus.UNHEALTHY,
                    last_health_check=now,
                    memory_usage_mb=stats.memory_usage_mb,
                    cpu_percent=stats.cpu_percent,
                ),
            )

    async def _server_exited(self, exit: ServerExit) -> None:
        """A runner saw a server end unasked: record it now rather than at the next
        health round. (Restarting it is a policy of its own.)"""
        server = await self.context.storage.servers.get(exit.server_id)
        if server is None or server.stopped_at is not None:
            return
        if server.health_status is HealthStatus.STOPPING:
            return  # being stopped on purpose right now
        _log.warning(
            "server.exited",
            server_id=server.id,
            deployment_id=server.deployment_id,
            reason=exit.reason,
            exit_code=exit.exit_code,
            out_of_memory=exit.out_of_memory,
            last_lines=exit.log_tail[-5:],
        )
        await self._mark_gone(
            server,
            CrashRecord(
                at=exit.at,
                reason=exit.reason,
                exit_code=exit.exit_code,
                out_of_memory=exit.out_of_memory,
                last_lines=exit.log_tail,
            ),
        )

    async def _mark_gone(
        self, server: RunningServer, crash: CrashRecord | None = None, *, stopped: bool = False
    ) -> None:
        """Record a server gone; when it served its deployment, that is a crash: the
        recovery policy restarts it or declares a crash loop (without a ``crash``, at
        start-up, the deployment is marked failed)."""
        storage = self.context.storage
        if not stopped:
            await storage.servers.update(
                server.id,
                RunningServerUpdate(stopped_at=utcnow(), health_status=HealthStatus.STOPPED),
            )
        self.stats.detached_servers += 1
        _log.warning("server.gone", server_id=server.id, deployment_id=server.deployment_id)
        deployment = await storage.deployments.get(server.deployment_id)
        if deployment is None or not await self._is_current(server, deployment):
            return
        if crash is None:
            await self._set_deployment(deployment, DeploymentUpdate(status=DeploymentStatus.FAILED))
            return
        await self._crashed(
            deployment,
            crash.model_copy(update={"server_id": server.id, "build_id": server.build_id}),
        )

    async def _is_current(
        self, server: RunningServer, deployment: Deployment | None = None
    ) -> bool:
        """Whether ``server`` is what its running deployment serves (not a server being
        replaced by a build in progress here)."""
        if deployment is None:
            deployment = await self.context.storage.deployments.get(server.deployment_id)
        switching = any(j.build.deployment_id == server.deployment_id for j in self._jobs.values())
        return (
            not switching
            and deployment is not None
            and deployment.current_build_id == server.build_id
            and deployment.status is DeploymentStatus.RUNNING
        )

    # --- crash recovery ---------------------------------------------------------------

    def _forget_crashes(self, deployment_id: str) -> None:
        """A deploy or rollback took over: no restart pending, no crash history."""
        self.crashes.reset(deployment_id)
        pending = self._restarts.pop(deployment_id, None)
        if pending is not None and pending is not asyncio.current_task():
            pending.cancel()

    async def _crashed(self, deployment: Deployment, crash: CrashRecord) -> None:
        delay = self.crashes.crashed(deployment.id, crash)
        restarts = self.crashes.count(deployment.id)
        self.stats.crashes += 1
        if delay is None:
            recent = self.crashes.recent(deployment.id)
            what = (
                f"crashed {restarts} times within "
                f"{self.context.settings.recovery.crash_loop_window_s:g} s: a crash loop"
                if self.context.settings.recovery.restart
                else "crashed (restarting is off)"
            )
            await self._event(
                DeploymentEventKind.CRASHED,
                deployment,
                f"server crashed: {crash.reason}",
                crashes=[crash],
                restarts=restarts,
            )
            deployment = await self._set_deployment(
                deployment,
                DeploymentUpdate(
                    status=DeploymentStatus.CRASH_LOOP
                    if self.context.settings.recovery.restart
                    else DeploymentStatus.FAILED
                ),
            )
            await self._event(
                DeploymentEventKind.CRASH_LOOP,
                deployment,
                f"server {what}; not restarted until the next deploy or rollback",
                crashes=recent,
                restarts=restarts,
            )
            return
        await self._event(
            DeploymentEventKind.CRASHED,
            deployment,
            f"server crashed: {crash.reason}; restarting in {delay:g} s",
            crashes=[crash],
            restarts=restarts,
            next_restart_in_s=delay,
        )
        previous = self._restarts.pop(deployment.id, None)
        if previous is not None and previous is not asyncio.current_task():
            previous.cancel()
        self._restarts[deployment.id] = asyncio.create_task(
            self._restart_later(deployment.id, crash.build_id or "", delay),
            name=f"restart-{deployment.id}",
        )

    async def _restart_later(self, deployment_id: str, build_id: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self._restart(deployment_id, build_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.exception("server.restart_failed", deployment_id=deployment_id, error=str(exc))
        finally:
            if self._restarts.get(deployment_id) is asyncio.current_task():
                del self._restarts[deployment_id]

    async def _restart(self, deployment_id: str, build_id: str) -> None:
        """Start the deployment's current build again from its kept output and point
        its route at it: the same steps as a deploy's last ones, without a build."""
        storage = self.context.storage
        deployment, project, team = await self.deployments.load_deployment(deployment_id)
        if (
            deployment.status is not DeploymentStatus.RUNNING
            or deployment.current_build_id != build_id
            or any(j.build.deployment_id == deployment_id for j in self._jobs.values())
            or await storage.servers.list_active(deployment_id)
        ):
            return  # stopped, redeployed or restarted meanwhile: nothing to recover
        build = await storage.builds.get(build_id)
        runner = self.context.require_runner()
        lines: deque[str] = deque(maxlen=20)
        env, secrets = await self.deployments.build_env(deployment, project)
        mask = mask_secrets(secrets)

        async def keep(line: str) -> None:
            lines.append(mask(line))

        started: RunningServer | None = None
        try:
            if build is None:
                raise BuildFailed("start", f"build {build_id} is gone")
            artifact = await runner.has_artifact(build.artifact_build_id or build.id)
            if artifact is None:
                raise BuildFailed("start", "the build's output is no longer kept")
            source = await self.context.require_source().source_for(project)
            ctx = BuildContext(
                build=build,
                deployment=deployment,
                project=project,
                source=source,
                env=env,
                secrets=secrets,
            )
            started = await runner.start(ctx, artifact, keep)
            server = await storage.servers.create(started)
            started = server
            await self._route_to(team, project, deployment, server)
        except MastraAdminError as exc:
            if started is not None:
                await self._stop_server(started)
            current = await storage.deployments.get(deployment_id)
            if current is not None and current.status is DeploymentStatus.RUNNING:
                await self._crashed(
                    current,
                    CrashRecord(
                        reason=f"the restart failed: {exc.message}",
                        build_id=build_id,
                        last_lines=list(lines),
                    ),
                )
            return
        current = await storage.deployments.get(deployment_id)
        if current is None or current.status is not DeploymentStatus.RUNNING:
            await self._stop_server(server)  # stopped while it started
            return
        deployment = await self._set_deployment(
            current, DeploymentUpdate(internal_host=server.host, internal_port=server.port)
        )
        self.stats.restarts += 1
        await self._event(
            DeploymentEventKind.RECOVERED,
            deployment,
            f"server restarted and healthy on {server.host}:{server.port}",
            restarts=self.crashes.count(deployment_id),
            server_id=server.id,
        )

    async def _event(
        self,
        kind: DeploymentEventKind,
        deployment: Deployment,
        message: str,
        **fields: Any,
    ) -> None:
        """Record the event in the deployment's runtime logs and tell the plugins."""
        event = DeploymentEvent(
            kind=kind,
            deployment_id=deployment.id,
            project_id=deployment.project_id,
            message=message,
            **fields,
        )
        log = _log.warning if kind is not DeploymentEventKind.RECOVERED else _log.info
        log(
            f"deployment.{kind.value}",
            deployment_id=deployment.id,
            message=message,
            restarts=event.restarts,
        )
        files = self.context.file_storage
        if files is not None:
            try:
                await write_batch(
                    files, EventType.LOG, deployment.project_id, [event_log_record(event)]
                )
            except MastraAdminError as exc:
                _log.warning("deployment.event_not_recorded", error=exc.message)
        await self.context.hooks.deployment_event(event=event, deployment=deployment)

    async def recover(self) -> None:
        """At start: re-attach servers that still run, mark the others stopped, and
        fail builds left active by a worker that is gone. Queued builds stay queued."""
        storage = self.context.storage
        runner = self.context.runner
        if runner is not None:
            for server in await storage.servers.list_active():
                if await runner.attach(server):
                    _log.info("server.reattached", server_id=server.id, port=server.port)
                else:
                    await self._mark_gone(server)
        now = utcnow()
        host = socket.gethostname()
        for build in await storage.builds.list_by_status(list(_ACTIVE)):
            if build.id in self._jobs:
                continue
            expired = build.lease_expires_at is None or build.lease_expires_at < now
            if not (expired or _dead_local_worker(build.worker_id, host)):
                continue
            final = await storage.builds.transition(
                build.id,
                list(_ACTIVE),
                BuildUpdate(status=BuildStatus.FAILED, completed_at=now, error_message=INTERRUPTED),
            )
            if final is None:
                continue
            self.stats.recovered_builds += 1
            _log.warning("build.recovered", build_id=build.id, worker_id=build.worker_id)
            if runner is not None:
                await runner.abandon_build(build.id)
            deployment = await storage.deployments.get(build.deployment_id)
            if runner is not None and deployment is not None:
                for server in await storage.servers.list_active(build.deployment_id):
                    if server.build_id == build.id and deployment.current_build_id != build.id:
                        await self._stop_server(server)  # started, never switched to
            if self.build_logs is not None:
                await self.build_logs.sink(build.id)(f"==> build failed: {INTERRUPTED}")
            await self._settle_deployment(build.deployment_id, BuildStatus.FAILED)
            project = await storage.projects.get(deployment.project_id) if deployment else None
            await self._announce(final, deployment, project)


async def _discard(line: str) -> None:
    """The sink when there is no file storage for build logs."""
