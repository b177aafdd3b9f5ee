"""In-memory runner, router and source for the core's tests.

Each keeps the contract of its interface (a started server is healthy and has a
port, stopping twice is a no-op, cancellation leaves nothing running, a route is
re-pointed in place) without processes or sockets, and has knobs to fail or hang a
step. ``journal`` (a list shared between fakes) records what happened in order, so
that a test can check, say, that the route moved before the old server stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mastra_admin.core.errors import BuildFailed, Conflict, NotFound
from mastra_admin.core.models import HealthStatus, Route, RouteStatus, RunningServer, utcnow
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig, RouteHealth
from mastra_admin.core.runner import (
    BuildArtifact,
    BuildContext,
    LogSink,
    ProjectRunner,
    ServerExit,
    ServerStats,
)
from mastra_admin.core.source import ProjectSource, ProjectSourceProvider
from mastra_admin.core.storage import AdminStorage, RouteUpdate

__all__ = ["FakeRouter", "FakeRunner", "FakeSource", "Journal"]

Journal = list[tuple[str, ...]]
"""Events in order: ``("build", build_id)``, ``("start", build_id, server_id)``,
``("stop", server_id)``, ``("route", deployment_id, host, port)`` ..."""

BUILD_STEPS = ("copy", "install", "build")
START_STEPS = ("start", "health")


class FakeRunner(ProjectRunner):
    """A runner whose servers are entries in a dict.

    Knobs (attributes, change them any time): ``fail_step`` makes that step raise
    ``BuildFailed`` (or ``fail_error`` when set, to play a bug); ``hang_step`` makes
    it wait until cancelled; ``step_delay_s`` makes every build step take that long;
    a server in ``unhealthy`` fails its health checks; ``exit`` plays a server that
    exits by itself.
    ``max_concurrent_builds`` records the most builds that were in ``build`` at once.
    """

    type: ClassVar[str] = "fake"

    def __init__(
        self,
        *,
        fail_step: str | None = None,
        fail_error: Exception | None = None,
        hang_step: str | None = None,
        step_delay_s: float = 0.0,
        journal: Journal | None = None,
        first_port: int = 4100,
    ) -> None:
        self.fail_step = fail_step
        self.fail_error = fail_error
        self.hang_step = hang_step
        self.step_delay_s = step_delay_s
        self.journal: Journal = journal if journal is not None else []
        self.artifacts: dict[str, BuildArtifact] = {}
        self.running: dict[str, RunningServer] = {}
        self.attachable: set[str] = set()
        self.unhealthy: set[str] = set()
        """Servers that answer their health check with an error."""
        self.builds_started: list[str] = []
        self.builds_cancelled: list[str] = []
        self.contexts: dict[str, BuildContext] = {}
        self.active_builds = 0
        self.max_concurrent_builds = 0
        self.stop_calls: list[str] = []
        self._ports = itertools.count(first_port)
        self._pids = itertools.count(200_000)
        self.step_entered = asyncio.Event()
        """Set whenever a step begins (tests wait on it to act mid-build)."""

    async def _step(self, step: str, build_id: str, log: LogSink) -> None:
        self.step_entered.set()
        await log(f"[{step}] running")
        if self.hang_step == step:
            self.journal.append(("hang", step, build_id))
            await asyncio.Event().wait()
        if self.step_delay_s:
            await asyncio.sleep(self.step_delay_s)
        if self.fail_step == step:
            await log(f"[{step}] failed")
            if self.fail_error is not None:
                raise self.fail_error
            raise BuildFailed(step, f"{step} failed (exit code 1)")

    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        build_id = ctx.build.id
        self.builds_started.append(build_id)
        self.contexts[build_id] = ctx
        self.journal.append(("build", build_id))
        self.active_builds += 1
        self.max_concurrent_builds = max(self.max_concurrent_builds, self.active_builds)
        try:
            for secret in ctx.secrets:
                await log(f"env check: {secret}")  # the core must mask this
            for step in BUILD_STEPS:
                await self._step(step, build_id, log)
        except asyncio.CancelledError:
            self.builds_cancelled.append(build_id)
            self.journal.append(("build-cancelled", build_id))
            raise
        finally:
            self.active_builds -= 1
        artifact = BuildArtifact(
            build_id=build_id, path=f"/fake/builds/{build_id}", created_at=utcnow()
        )
        self.artifacts[build_id] = artifact
        return artifact

    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        self.contexts.setdefault(ctx.build.id, ctx)
        server = RunningServer(
            deployment_id=ctx.deployment.id,
            build_id=ctx.build.id,
            process_id=next(self._pids),
            process_started_at=1_700_000_000.0,
            host="127.0.0.1",
            port=next(self._ports),
            health_status=HealthStatus.STARTING,
            metadata={"artifact_build_id": artifact.build_id},
        )
        self.running[server.id] = server  # the process exists from here on
        self.journal.append(("start", ctx.build.id, server.id))
        try:
            for step in START_STEPS:
                await self._step(step, ctx.build.id, log)
        except BaseException:
            await self.stop(server)
            raise
        server.health_status = HealthStatus.HEALTHY
        server.last_health_check = utcnow()
        return server.model_copy(deep=True)

    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        self.stop_calls.append(server.id)
        if self.running.pop(server.id, None) is not None:
            self.journal.append(("stop", server.id))

    async def is_alive(self, server: RunningServer) -> bool:
        return server.id in self.running

    async def stats(self, server: RunningServer) -> ServerStats:
        alive = server.id in self.running
        return ServerStats(
            alive=alive,
            healthy=alive and server.id not in self.unhealthy,
            memory_usage_mb=64.0 if alive else None,
            cpu_percent=1.5 if alive else None,
        )

    async def attach(self, server: RunningServer) -> bool:
        if server.id in self.running or server.id in self.attachable:
            self.running[server.id] = server.model_copy(deep=True)
            return True
        return False

    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        return self.artifacts.get(build_id)

    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        in_use = {s.build_id for s in self.running.values()} | {
            str(s.metadata.get("artifact_build_id")) for s in self.running.values()
        }
        removed = [b for b in self.artifacts if b not in keep and b not in in_use]
        for build_id in removed:
            del self.artifacts[build_id]
        return removed

    def crash(self, server_id: str) -> None:
        """The server's process dies (as if killed from outside)."""
        self.running.pop(server_id, None)

    async def exit(self, server_id: str, code: int, *lines: str) -> None:
        """The server's process exits by itself and the runner reports it."""
        server = self.running.pop(server_id)
        await self.report_exit(
            ServerExit(
                server_id=server_id,
                deployment_id=server.deployment_id,
                build_id=server.build_id,
                exit_code=code,
                reason=f"exited with code {code}",
                log_tail=list(lines),
                at=utcnow(),
            )
        )


class FakeRouter(EdgeRouterProvider):
    """Routes in a dict keyed by deployment; persisted through ``storage`` when given.
    Custom domains too: ``domains`` holds each deployment's verified host names, as
    ``set_domains`` last gave them (restored from ``storage`` by ``start``)."""

    type: ClassVar[str] = "fake"
    serves_custom_domains: ClassVar[bool] = True

    def __init__(
        self,
        *,
        base_domain: str = "localhost",
        port: int = 3300,
        storage: AdminStorage | None = None,
        journal: Journal | None = None,
        fail_register: bool = False,
    ) -> None:
        self.base_domain = base_domain
        self.port = port
        self.storage = storage
        self.journal: Journal = journal if journal is not None else []
        self.fail_register = fail_register
        self.routes: dict[str, Route] = {}
        self.domains: dict[str, list[str]] = {}
        self.started = False

    def public_url(self, subdomain: str) -> str:
        return f"http://{subdomain}.{self.base_domain}:{self.port}"

    async def start(self) -> None:
        if self.storage is not None:
            for route in await self.storage.routes.list_all():
                self.routes[route.deployment_id] = route
            for domain in await self.storage.domains.list_verified():
                self.domains.setdefault(domain.deployment_id, []).append(domain.hostname)
        self.started = True

    async def set_domains(self, deployment_id: str, hostnames: Sequence[str]) -> None:
        self.journal.append(("domains", deployment_id, *hostnames))
        if hostnames:
            self.domains[deployment_id] = list(hostnames)
        else:
            self.domains.pop(deployment_id, None)

    async def _save(self, route: Route, *, new: bool) -> Route:
        if self.storage is not None:
            if new:
                route = await self.storage.routes.create(route)
            else:
                route = await self.storage.routes.update(
                    route.id,
                    RouteUpdate(
                        target_host=route.target_host,
                        target_port=route.target_port,
                        public_url=route.public_url,
                        status=route.status,
                        tls_enabled=route.tls_enabled,
                        last_health_check=route.last_health_check,
                    ),
                )
        self.routes[route.deployment_id] = route
        return route.model_copy(deep=True)

    async def register_route(self, config: RouteConfig) -> Route:
        if self.fail_register:
            raise BuildFailed("route", "the router refused the route")
        for route in self.routes.values():
            if route.subdomain == config.subdomain and route.deployment_id != config.deployment_id:
                raise Conflict(
                    "another deployment holds this subdomain", details={"field": "subdomain"}
                )
        existing = self.routes.get(config.deployment_id)
        self.journal.append(
            ("route", config.deployment_id, config.target_host, str(config.target_port))
        )
        if existing is not None:
            updated = existing.model_copy(deep=True)
            updated.subdomain = config.subdomain
            updated.target_host = config.target_host
            updated.target_port = config.target_port
            updated.public_url = self.public_url(config.subdomain)
            updated.status = RouteStatus.ACTIVE
            updated.updated_at = utcnow()
            return await self._save(updated, new=False)
        route = Route(
            deployment_id=config.deployment_id,
            project_id=config.project_id,
            subdomain=config.subdomain,
            target_host=config.target_host,
            target_port=config.target_port,
            public_url=self.public_url(config.subdomain),
            status=RouteStatus.ACTIVE,
            tls_enabled=config.tls,
        )
        return await self._save(route, new=True)

    def _by_id(self, route_id: str) -> Route:
        for route in self.routes.values():
            if route.id == route_id:
                return route.model_copy(deep=True)
        raise NotFound("route not found", details={"route_id": route_id})

    async def update_route(self, route_id: str, *, target_host: str, target_port: int) -> Route:
        route = self._by_id(route_id)
        route.target_host = target_host
        route.target_port = target_port
        self.journal.append(("route", route.deployment_id, target_host, str(target_port)))
        return await self._save(route, new=False)

    async def set_route_status(self, route_id: str, status: RouteStatus) -> Route:
        route = self._by_id(route_id)
        route.status = status
        return await self._save(route, new=False)

    async def remove_route(self, route_id: str) -> None:
        for deployment_id, route in list(self.routes.items()):
            if route.id == route_id:
                del self.routes[deployment_id]
                self.journal.append(("unroute", deployment_id))
                if self.storage is not None:
                    await self.storage.routes.delete(route_id)

    async def get_route(self, deployment_id: str) -> Route | None:
        route = self.routes.get(deployment_id)
        return route.model_copy(deep=True) if route else None

    async def list_routes(self, project_id: str | None = None) -> list[Route]:
        found = [r for r in self.routes.values() if project_id in (None, r.project_id)]
        return [r.model_copy(deep=True) for r in sorted(found, key=lambda r: r.subdomain)]

    async def check_route_health(self, route_id: str) -> RouteHealth:
        route = self._by_id(route_id)
        healthy = route.status is RouteStatus.ACTIVE
        route.last_health_check = utcnow()
        await self._save(route, new=False)
        return RouteHealth(healthy=healthy, status_code=200 if healthy else 503)

    async def close(self) -> None:
        self.started = False


class FakeSource(ProjectSourceProvider):
    """Projects that are names in a dict; ``get_project_path`` writes a tiny project.

    ``FakeSource(["weather-agent", "support-bot"])`` or with ``ProjectSource``
    objects; ``fail_copy`` makes ``get_project_path`` fail.
    """

    type: ClassVar[str] = "fake"

    def __init__(
        self, projects: Iterable[str | ProjectSource] = (), *, fail_copy: bool = False
    ) -> None:
        self.projects: dict[str, ProjectSource] = {}
        self.fail_copy = fail_copy
        for project in projects:
            self.add(project)

    def add(self, project: str | ProjectSource, **metadata: Any) -> ProjectSource:
        if isinstance(project, str):
            project = ProjectSource(
                id=project,
                name=project,
                type=self.type,
                path=f"/fake/projects/{project}",
                default_branch="main",
                metadata={
                    "package_manager": "npm",
                    "mastra_version": "1.0.0",
                    "has_mastra_entry": True,
                    "version": "0.1.0",
                    "workspace_root": None,
                    "valid": True,
                    "problems": [],
                    **metadata,
                },
            )
        self.projects[project.id] = project
        return project

    def remove(self, source_id: str) -> None:
        self.projects.pop(source_id, None)

    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        return [
            p.model_copy(deep=True) for p in sorted(self.projects.values(), key=lambda p: p.name)
        ]

    async def get_project(self, source_id: str) -> ProjectSource:
        project = self.projects.get(source_id)
        if project is None:
            raise NotFound("project not found in the source", details={"source_id": source_id})
        return project.model_copy(deep=True)

    async def validate_access(self, source: ProjectSource) -> bool:
        return source.id in self.projects

    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        if self.fail_copy or source.id not in self.projects:
            raise BuildFailed("copy", f"cannot copy project {source.id!r}")
        root = target_dir / source.id
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        package = {"name": source.name, "version": "0.1.0", "private": True}
        await asyncio.to_thread((root / "package.json").write_text, json.dumps(package))
        return root
