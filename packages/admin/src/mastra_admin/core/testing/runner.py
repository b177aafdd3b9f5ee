"""``RunnerConformance``: what every ``ProjectRunner`` must do, on real projects.

The suite builds the projects of ``mastra_admin.core.testing.projects`` (small Node
projects that install offline, need ``node`` and ``npm``), starts them, and checks
the whole life cycle: build, start, healthy, stats, stop with nothing left; every
failing step gives ``BuildFailed`` naming the step; cancellation leaves nothing
behind; a reused pid is never mistaken for a server; artifacts are kept and
pruned; the deployed server's environment is the contract of DESIGN §6.

Subclass it, set ``__test__ = True`` and override ``runner``. Its source must copy
the folder named by ``ProjectSource.path`` (``build_context`` makes such sources;
override it too if your source needs something else)::

    class TestMyRunner(RunnerConformance):
        __test__ = True

        @pytest.fixture
        async def runner(self, tmp_path):
            runner = MyRunner(source=FolderCopySource(), data_dir=tmp_path / "data")
            yield runner
            await runner.close()

Capability flags: ``local_processes`` (servers are processes of this machine whose
pid, environment and descendants can be read with psutil; turn off for runners of
containers or remote machines) and ``observability_dirs_local`` (the dirs of the
env contract are on this machine's disk). ``health_timeout_s`` bounds the suite's
never-healthy case.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

from mastra_admin.core import env_contract
from mastra_admin.core.env_contract import RUNNER_VARS
from mastra_admin.core.errors import BuildFailed, NotFound
from mastra_admin.core.models import (
    Build,
    Deployment,
    DeploymentType,
    HealthStatus,
    Project,
    ProjectSettings,
    RunningServer,
)
from mastra_admin.core.runner import BuildArtifact, BuildContext, ProjectRunner
from mastra_admin.core.source import ProjectSource, ProjectSourceProvider
from mastra_admin.core.testing.projects import Variant, write_mastra_project

__all__ = [
    "BuildContextFactory",
    "FolderCopySource",
    "LogCollector",
    "ProjectFactory",
    "RunnerConformance",
    "leftover_processes",
    "make_build_context",
]

SERVER_ALLOW = frozenset({"PATH", "HOME", "LANG", "TZ", "NODE_OPTIONS"})
CANARY = "MASTRA_ADMIN_CONFORMANCE_CANARY"


class LogCollector:
    """A ``LogSink`` that keeps every line (and can wait for one)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, fragment: str, timeout_s: float = 60.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not any(fragment in line for line in self.lines):
                self._changed.clear()
                await self._changed.wait()


class ProjectFactory(Protocol):
    def __call__(self, variant: Variant = "ok", *, name: str | None = None) -> Path: ...


class BuildContextFactory(Protocol):
    def __call__(
        self,
        project_dir: Path,
        *,
        env: dict[str, str] | None = None,
        secrets: list[str] | None = None,
        settings: ProjectSettings | None = None,
        deployment: Deployment | None = None,
    ) -> BuildContext: ...


def make_build_context(
    project_dir: Path,
    *,
    env: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    settings: ProjectSettings | None = None,
    deployment: Deployment | None = None,
    source_type: str = "local",
) -> BuildContext:
    """A context for one new build of ``project_dir`` (a fresh build id each call).

    ``env`` defaults to what the core gives every server (project and deployment
    ids, telemetry off); ``deployment`` lets two builds share one deployment.
    """
    name = project_dir.name
    project = Project(
        team_id="team-conformance",
        name=name,
        slug=name.lower().replace("_", "-"),
        source_type=source_type,
        source_config={"source_id": name},
        settings=settings or ProjectSettings(),
    )
    if deployment is None:
        deployment = Deployment(
            project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
        )
    else:
        project = project.model_copy(update={"id": deployment.project_id})
    build = Build(deployment_id=deployment.id, triggered_by="user-conformance")
    base_env = env_contract.core_env(project_id=project.id, deployment_id=deployment.id)
    source = ProjectSource(
        id=name,
        name=name,
        type=source_type,
        path=str(project_dir),
        default_branch="main",
        metadata={"package_manager": "npm", "has_mastra_entry": True, "valid": True},
    )
    return BuildContext(
        build=build,
        deployment=deployment,
        project=project,
        source=source,
        env={**base_env, **(env or {})},
        secrets=list(secrets or []),
    )


_IGNORE = shutil.ignore_patterns("node_modules", ".mastra", ".git", "dist", ".next")


class FolderCopySource(ProjectSourceProvider):
    """Copies the folder a ``ProjectSource`` names; just enough source for a runner."""

    type: ClassVar[str] = "local"

    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        return []

    async def get_project(self, source_id: str) -> ProjectSource:
        raise NotFound("no project", details={"source_id": source_id})

    async def validate_access(self, source: ProjectSource) -> bool:
        return await asyncio.to_thread(os.path.isdir, source.path)

    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        if not await self.validate_access(source):
            raise NotFound(f"project folder {source.path} does not exist")
        await asyncio.to_thread(
            shutil.copytree, source.path, target_dir, ignore=_IGNORE, dirs_exist_ok=True
        )
        return target_dir


def leftover_processes(root: Path) -> list[str]:
    """Processes of this user (as root: of any user, since a runner may run project
    code under uids of its own) whose working directory or command line is under
    ``root`` (what a runner must not leave behind); described as ``pid name cwd``."""
    import psutil

    prefix = str(root.resolve())
    found: list[str] = []
    any_user = os.getuid() == 0
    for process in psutil.process_iter(["pid", "name", "cmdline", "uids"]):
        try:
            if process.pid == os.getpid():
                continue
            if not any_user and process.info["uids"].real != os.getuid():
                continue
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            cwd = process.cwd()
            cmdline = " ".join(process.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if cwd.startswith(prefix) or prefix in cmdline:
            found.append(f"{process.pid} {process.info['name']} {cwd}")
    return found


async def assert_nothing_left(root: Path, timeout_s: float = 5.0) -> None:
    """Wait (briefly: reaping takes a moment) until no process is left under ``root``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = await asyncio.to_thread(leftover_processes, root)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind under {root}: {left}")
        await asyncio.sleep(0.1)


def _http_get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), bytes(response.read())


class RunnerConformance:
    """The contract of ``mastra_admin.core.runner.ProjectRunner``."""

    __test__ = False

    local_processes: ClassVar[bool] = True
    observability_dirs_local: ClassVar[bool] = True
    health_timeout_s: ClassVar[float] = 2.0

    # --- fixtures an adapter overrides -------------------------------------------

    @pytest.fixture
    def runner(self) -> ProjectRunner:
        """A fresh runner whose source copies ``ProjectSource.path`` (override it)."""
        raise NotImplementedError("override the runner fixture")

    @pytest.fixture
    def build_context(self) -> BuildContextFactory:
        return make_build_context

    # --- fixtures of the suite -----------------------------------------------------

    @pytest.fixture
    def projects_dir(self, tmp_path: Path) -> Path:
        folder = tmp_path / "projects"
        folder.mkdir(exist_ok=True)
        return folder

    @pytest.fixture
    def mastra_project(self, projects_dir: Path) -> ProjectFactory:
        def make(variant: Variant = "ok", *, name: str | None = None) -> Path:
            folder_name = name or variant.replace("_", "-")
            return write_mastra_project(
                projects_dir / folder_name, name=f"conformance-{folder_name}", variant=variant
            )

        return make

    @pytest.fixture
    async def started(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
    ) -> AsyncIterator[Callable[..., Any]]:
        """``await started(variant, **context)`` builds and starts a project; every
        server started this way is stopped after the test."""
        servers: list[RunningServer] = []

        async def start(
            variant: Variant = "ok", **context: Any
        ) -> tuple[BuildContext, BuildArtifact, RunningServer, LogCollector]:
            ctx = build_context(mastra_project(variant), **context)
            log = LogCollector()
            artifact = await runner.build(ctx, log)
            server = await runner.start(ctx, artifact, log)
            servers.append(server)
            return ctx, artifact, server, log

        yield start
        for server in servers:
            with contextlib.suppress(Exception):
                await runner.stop(server, grace_s=1.0)

    # --- the life cycle ------------------------------------------------------------

    async def test_build_start_stats_stop_leaves_nothing(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
    ) -> None:
        ctx = build_context(mastra_project("ok"))
        log = LogCollector()
        artifact = await runner.build(ctx, log)
        assert artifact.build_id == ctx.build.id
        assert await runner.has_artifact(ctx.build.id) is not None
        assert log.lines, "every step's output goes to the log"

        server = await runner.start(ctx, artifact, log)
        assert server.health_status is HealthStatus.HEALTHY
        assert server.deployment_id == ctx.deployment.id
        assert server.host
        assert 1 <= server.port <= 65535
        status, body = await asyncio.to_thread(_http_get, f"http://{server.host}:{server.port}/")
        assert status == 200
        assert b"Mastra" in body
        assert await runner.is_alive(server)
        stats = await runner.stats(server)
        assert stats.alive
        assert stats.healthy
        if self.local_processes:
            assert server.process_id is not None
            assert server.process_started_at is not None
            assert stats.memory_usage_mb is not None
            assert stats.memory_usage_mb > 1

        await runner.stop(server, grace_s=5.0)
        assert not await runner.is_alive(server)
        assert (await runner.stats(server)).alive is False
        await runner.stop(server, grace_s=5.0)  # stopping a stopped server is a no-op
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    async def test_start_serves_the_agent_api_and_releases_the_port(
        self, runner: ProjectRunner, started: Callable[..., Any]
    ) -> None:
        _, _, server, _ = await started("ok")
        request = urllib.request.Request(
            f"http://{server.host}:{server.port}/api/agents/weather/generate",
            data=b'{"messages": "is it raining?"}',
            headers={"Content-Type": "application/json"},
        )

        def post() -> bytes:
            with urllib.request.urlopen(request, timeout=5) as response:
                return bytes(response.read())

        assert b"is it raining?" in await asyncio.to_thread(post)
        await runner.stop(server, grace_s=5.0)
        if self.local_processes:
            import socket

            with socket.socket() as sock:  # the port is free again
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((server.host, server.port))

    # --- failing steps --------------------------------------------------------------

    @pytest.mark.parametrize(
        ("variant", "step", "fragment"),
        [
            ("install_fails", "install", "exit code 1"),
            ("build_fails", "build", "exit code 1"),
        ],
    )
    async def test_failing_build_step_names_the_step(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
        variant: Variant,
        step: str,
        fragment: str,
    ) -> None:
        ctx = build_context(mastra_project(variant))
        log = LogCollector()
        with pytest.raises(BuildFailed) as failed:
            await runner.build(ctx, log)
        assert failed.value.step == step
        assert fragment in failed.value.message
        assert await runner.has_artifact(ctx.build.id) is None
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    async def test_server_that_crashes_fails_the_start_step(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
    ) -> None:
        ctx = build_context(mastra_project("crashes_at_start"))
        log = LogCollector()
        artifact = await runner.build(ctx, log)
        with pytest.raises(BuildFailed) as failed:
            await runner.start(ctx, artifact, log)
        assert failed.value.step == "start"
        assert "before becoming healthy" in failed.value.message
        assert "OPENAI_API_KEY is not set" in failed.value.message
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    async def test_server_never_healthy_fails_the_health_step(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
    ) -> None:
        settings = ProjectSettings(health_timeout_s=self.health_timeout_s)
        ctx = build_context(mastra_project("never_healthy"), settings=settings)
        log = LogCollector()
        artifact = await runner.build(ctx, log)
        with pytest.raises(BuildFailed) as failed:
            await runner.start(ctx, artifact, log)
        assert failed.value.step == "health"
        assert f"not healthy after {self.health_timeout_s:g} s" in failed.value.message
        assert "/health" in failed.value.message
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    # --- cancellation ---------------------------------------------------------------

    async def test_cancelling_a_build_kills_its_whole_tree(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
    ) -> None:
        ctx = build_context(mastra_project("hangs_at_build"))
        log = LogCollector()
        task = asyncio.ensure_future(runner.build(ctx, log))
        await log.wait_for("Optimizing dependencies")
        await asyncio.sleep(0.3)  # the helper that leaves the group is running by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    async def test_cancelling_a_start_leaves_nothing(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        tmp_path: Path,
    ) -> None:
        ctx = build_context(
            mastra_project("never_healthy"), settings=ProjectSettings(health_timeout_s=60)
        )
        log = LogCollector()
        artifact = await runner.build(ctx, log)
        task = asyncio.ensure_future(runner.start(ctx, artifact, log))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    # --- stopping stubborn servers -----------------------------------------------------

    async def test_stop_kills_a_server_that_ignores_sigterm(
        self, runner: ProjectRunner, started: Callable[..., Any], tmp_path: Path
    ) -> None:
        _, _, server, _ = await started("ignores_sigterm")
        began = time.monotonic()
        await runner.stop(server, grace_s=1.0)
        assert time.monotonic() - began >= 0.9, "SIGKILL only after the grace period"
        assert not await runner.is_alive(server)
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    async def test_stop_kills_grandchildren_that_left_the_group(
        self, runner: ProjectRunner, started: Callable[..., Any], tmp_path: Path
    ) -> None:
        _, _, server, _ = await started("forks_grandchild")
        if self.local_processes:
            import psutil

            async with asyncio.timeout(10):
                while len(psutil.Process(server.process_id).children()) < 2:
                    await asyncio.sleep(0.05)
        await runner.stop(server, grace_s=1.0)
        if self.local_processes:
            await assert_nothing_left(tmp_path)

    # --- identity, attach ---------------------------------------------------------

    async def test_reused_pid_is_not_the_server(
        self, runner: ProjectRunner, started: Callable[..., Any]
    ) -> None:
        _, _, server, _ = await started("ok")
        assert await runner.attach(server)
        if not self.local_processes:
            return
        assert server.process_started_at is not None
        impostor = server.model_copy(
            update={"id": "impostor", "process_started_at": server.process_started_at - 3600}
        )
        assert not await runner.is_alive(impostor)
        assert not await runner.attach(impostor)
        assert (await runner.stats(impostor)).alive is False
        await runner.stop(impostor, grace_s=1.0)  # must not touch the real process
        assert await runner.is_alive(server)

        gone = server.model_copy(update={"id": "gone", "process_id": 2**22 + 12345})
        assert not await runner.is_alive(gone)
        assert not await runner.attach(gone)

    # --- artifacts --------------------------------------------------------------------

    async def test_artifacts_are_kept_until_pruned_and_never_while_running(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
        started: Callable[..., Any],
    ) -> None:
        project = mastra_project("ok", name="kept")
        first = build_context(project)
        second = build_context(project, deployment=first.deployment)
        log = LogCollector()
        a1 = await runner.build(first, log)
        a2 = await runner.build(second, log)
        assert await runner.has_artifact(a1.build_id) is not None
        assert await runner.has_artifact(a2.build_id) is not None

        server = await runner.start(first, a1, log)  # a rollback-like start of the older one
        try:
            removed = await runner.prune_artifacts(keep=[])
            assert a1.build_id not in removed, "a running server's build is kept"
            assert a2.build_id in removed
            assert await runner.has_artifact(a2.build_id) is None
            assert await runner.has_artifact(a1.build_id) is not None
        finally:
            await runner.stop(server, grace_s=5.0)
        assert a1.build_id in await runner.prune_artifacts(keep=[])
        assert await runner.has_artifact(a1.build_id) is None
        assert await runner.has_artifact("no-such-build") is None

    async def test_rollback_starts_a_kept_artifact_without_rebuilding(
        self, runner: ProjectRunner, started: Callable[..., Any], build_context: BuildContextFactory
    ) -> None:
        ctx, artifact, server, _ = await started("ok")
        await runner.stop(server, grace_s=5.0)
        kept = await runner.has_artifact(artifact.build_id)
        assert kept is not None
        rollback = ctx.model_copy(
            update={"build": ctx.build.model_copy(update={"id": "rollback-" + ctx.build.id})}
        )
        log = LogCollector()
        again = await runner.start(rollback, kept, log)
        try:
            assert (await runner.stats(again)).healthy
        finally:
            await runner.stop(again, grace_s=5.0)

    # --- the environment contract ---------------------------------------------------

    async def test_server_environment_is_exactly_the_contract(
        self, runner: ProjectRunner, started: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(CANARY, "admin-only-value")
        monkeypatch.setenv("DATABASE_URL", "postgresql://admin:secret@db/admin")
        project_env = {"OPENAI_API_KEY": "sk-project-key", "FEATURE_FLAG": "on"}
        ctx, _, server, _ = await started("ok", env=project_env, secrets=["sk-project-key"])
        if not self.local_processes:
            return
        import psutil

        env = psutil.Process(server.process_id).environ()
        for key, value in ctx.env.items():
            assert env.get(key) == value, key
        assert env[env_contract.PORT] == str(server.port)
        extra = set(env) - set(ctx.env) - RUNNER_VARS
        assert extra <= SERVER_ALLOW, f"variables of the admin reached the server: {extra}"
        assert CANARY not in env
        assert "DATABASE_URL" not in env
        if self.observability_dirs_local:
            spans = Path(env[env_contract.TRACES_TARGET_DIR])
            logs = Path(env[env_contract.LOGS_TARGET_DIR])
            assert spans.parent == logs.parent
            assert ".mastra" not in spans.parts, "observability dirs sit beside .mastra"
            request = urllib.request.Request(
                f"http://{server.host}:{server.port}/api/agents/weather/generate",
                data=b'{"messages": "hello"}',
                headers={"Content-Type": "application/json"},
            )
            await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=5).read())
            written = await asyncio.to_thread(
                lambda: (list(spans.glob("*.jsonl")), list(logs.glob("*.jsonl")))
            )
            assert written[0], "spans written per the env contract"
            assert written[1], "logs written per the env contract"

    async def test_secret_values_never_reach_the_log(
        self,
        runner: ProjectRunner,
        build_context: BuildContextFactory,
        mastra_project: ProjectFactory,
    ) -> None:
        secret = "sk-live-4f9a2c0e77d1"
        ctx = build_context(
            mastra_project("prints_secret"), env={"OPENAI_API_KEY": secret}, secrets=[secret]
        )
        log = LogCollector()
        await runner.build(ctx, log)
        assert secret not in log.text
        assert "OPENAI_API_KEY=***" in log.text
