"""``LocalProcessRunner``: builds Mastra projects in their own folders and runs their
servers as local processes, each in its own session and process group."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import psutil
import structlog

from mastra_admin.core import env_contract
from mastra_admin.core.build_steps import (
    START_COMMAND,
    allowed_environment,
    build_command,
    describe,
    detect_package_manager,
    install_command,
    install_with_dev,
    mask_secrets,
    probe,
)
from mastra_admin.core.errors import BuildFailed, Conflict, InvalidInput, MastraAdminError
from mastra_admin.core.models import HealthStatus, RunningServer, utcnow
from mastra_admin.core.node_engines import node_warnings
from mastra_admin.core.runner import (
    BuildArtifact,
    BuildContext,
    LogSink,
    ProjectRunner,
    ServerExit,
    ServerStats,
)
from mastra_admin.core.source import ProjectSourceProvider
from mastra_admin.runners.local import _relay
from mastra_admin.runners.local._commands import resolve_executable
from mastra_admin.runners.local._layout import (
    BuildLayout,
    BuildLock,
    check_build_id,
    read_json,
    write_json_atomic,
)
from mastra_admin.runners.local._ports import PortAllocator
from mastra_admin.runners.local._process import (
    group_alive,
    group_has_live_members,
    kill_group,
    kill_processes,
    matching_process,
    run_step,
    snapshot_descendants,
    sweep_dir,
)
from mastra_admin.runners.local._sandbox import Sandbox, SandboxSpec, end_network
from mastra_admin.runners.local._settings import LocalRunnerSettings

__all__ = ["SERVER_ENV_ALLOW", "LocalProcessRunner", "mask_secrets"]

_log = structlog.get_logger("mastra_admin.runners.local")

SERVER_ENV_ALLOW: tuple[str, ...] = ("PATH", "HOME", "LANG", "TZ")
"""The only variables of the admin's own environment a deployed server sees."""

TRACES_DIR_VAR = env_contract.TRACES_TARGET_DIR
LOGS_DIR_VAR = env_contract.LOGS_TARGET_DIR
HOST_VAR = env_contract.HOST
COLLECTOR_VARS = env_contract.COLLECTOR_ENDPOINT_VARS
_LISTEN_BACKLOG = 511  # node's own
_PORT_RETRIES = 3


_node_versions: dict[str, str | None] = {}


async def _node_version(path: str | None) -> str | None:
    """``node --version`` of the Node.js the build steps find on ``path`` (asked once
    per binary); None when there is none or it does not answer."""
    binary = shutil.which("node", path=path)
    if binary is None:
        return None
    if binary not in _node_versions:
        try:
            process = await asyncio.create_subprocess_exec(
                binary,
                "--version",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin"},
            )
            out, _ = await asyncio.wait_for(process.communicate(), timeout=20)
        except (OSError, TimeoutError):
            return None
        _node_versions[binary] = out.decode(errors="replace").strip() or None
    return _node_versions[binary]


@dataclass
class _Server:
    """A server this runner supervises (started here, or adopted by ``attach``).

    ``pid`` is the server's own process; ``group`` the process group of everything
    started for it; ``init`` pid 1 of its sandbox (ending it ends the sandbox) and
    ``network`` the sandbox's pasta, both ``None`` without isolation.
    """

    id: str
    pid: int
    started_at: float
    port: int
    host: str
    health_path: str
    layout: BuildLayout
    process: psutil.Process
    group: int
    child: asyncio.subprocess.Process | None = None
    relay: psutil.Process | None = None
    relay_child: asyncio.subprocess.Process | None = None
    init: psutil.Process | None = None
    network: psutil.Process | None = None
    network_child: asyncio.subprocess.Process | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stopping: bool = False
    watcher: asyncio.Task[None] | None = None


class LocalProcessRunner(ProjectRunner):
    """Builds in ``{builds_dir}/{build_id}/`` and runs ``node .mastra/output/index.mjs``.

    :param source: copies a project into a build folder (``get_project_path``).
    :param settings: ports, timeouts, log rotation; defaults work on a laptop.
    :param data_dir: the admin's data dir; builds go to ``{data_dir}/builds`` unless
        ``settings.builds_dir`` says otherwise.
    """

    type: ClassVar[str] = "local"

    def __init__(
        self,
        source: ProjectSourceProvider,
        settings: LocalRunnerSettings | None = None,
        *,
        data_dir: str | Path = ".mastra-admin",
    ) -> None:
        self.source = source
        self.settings = settings or LocalRunnerSettings()
        self.builds_dir = self.settings.resolved_builds_dir(Path(data_dir))
        self.sandbox = Sandbox(self.settings, data_dir=Path(data_dir), builds_dir=self.builds_dir)
        self.ports = PortAllocator(
            self.settings.host, self.settings.port_range_start, self.settings.port_range_end
        )
        self._servers: dict[str, _Server] = {}
        self._building: set[str] = set()
        self._starting: set[Path] = set()
        self._stat_processes: dict[str, psutil.Process] = {}

    # --- environment ----------------------------------------------------------------

    def build_env(self, ctx: BuildContext) -> dict[str, str]:
        """What install and build steps see: the allow-listed part of the admin's
        environment (``settings.build_env_allow``) and the project's own variables."""
        env = allowed_environment(self.settings.build_env_allow)
        env.update(ctx.env)
        return env

    def server_env(self, ctx: BuildContext, layout: BuildLayout, port: int) -> dict[str, str]:
        """Exactly DESIGN §6: the context's environment, ``PORT``, ``MASTRA_HOST``, the
        two observability dirs, ``PATH``/``HOME``/``LANG``/``TZ`` of the admin (in a
        sandbox ``HOME`` is the deployment's own), and ``NODE_OPTIONS`` when the
        project or the runner configures it."""
        env = {key: os.environ[key] for key in SERVER_ENV_ALLOW if key in os.environ}
        env.update(ctx.env)
        env["PORT"] = str(port)
        env[HOST_VAR] = self.settings.host
        env[TRACES_DIR_VAR] = str(layout.spans)
        env[LOGS_DIR_VAR] = str(layout.logs)
        node_options = ctx.project.settings.node_options or self.settings.node_options
        if node_options:
            env["NODE_OPTIONS"] = node_options
        return env

    def _spec(
        self,
        ctx: BuildContext,
        layout: BuildLayout,
        root: Path,
        *,
        listen: socket.socket | None = None,
    ) -> SandboxSpec:
        """The sandbox of a build step (no ``listen``) or of a server, which gets the
        socket the runner opened on its port."""
        if listen is None:
            return SandboxSpec(ctx.deployment.id, layout.src.resolve(), root)
        return SandboxSpec(
            ctx.deployment.id,
            layout.src.resolve(),
            root,
            writable=(layout.spans.resolve(), layout.logs.resolve()),
            listen_fd=listen.fileno(),
            host_ports=_collector_ports(ctx.env),
            keep_with_parent=False,
        )

    # --- build ----------------------------------------------------------------------

    def _layout(self, build_id: str) -> BuildLayout:
        try:
            return BuildLayout.of(self.builds_dir, build_id)
        except ValueError as exc:
            raise InvalidInput(str(exc), details={"build_id": build_id}) from exc

    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        build_id = ctx.build.id
        layout = self._layout(build_id)
        if build_id in self._building:
            raise Conflict(f"build {build_id} is already running", details={"build_id": build_id})
        self._building.add(build_id)
        lock = BuildLock(layout)
        try:
            if not lock.acquire():
                raise Conflict(
                    f"build {build_id} is already running in another process",
                    details={"build_id": build_id},
                )
            return await self._build(ctx, layout, log)
        finally:
            lock.release()
            self._building.discard(build_id)

    async def _build(self, ctx: BuildContext, layout: BuildLayout, log: LogSink) -> BuildArtifact:
        mask = mask_secrets(ctx.secrets)

        async def sink(line: str) -> None:
            await log(mask(line))

        started = time.monotonic()
        bound = _log.bind(build_id=ctx.build.id, deployment_id=ctx.deployment.id)
        bound.info("build.started", builds_dir=str(self.builds_dir))
        await asyncio.to_thread(_clear_build_dir, layout)
        layout.make_observability_dirs()
        layout.write_meta(
            project_id=ctx.project.id, deployment_id=ctx.deployment.id, build_id=ctx.build.id
        )

        await sink(f"Copying {ctx.source.name} into the build folder")
        try:
            root = await self.source.get_project_path(ctx.source, layout.src)
        except MastraAdminError as exc:
            raise BuildFailed("copy", f"copying the project failed: {exc.message}") from exc
        except OSError as exc:
            raise BuildFailed("copy", f"copying the project failed: {exc}") from exc
        root = await asyncio.to_thread(_project_root, root, layout, ctx.source.path)
        spec = self._spec(ctx, layout, root)
        await asyncio.to_thread(self.sandbox.prepare, spec, recursive=True)
        env = self.sandbox.environment(self.build_env(ctx), spec)
        settings = ctx.project.settings
        node = await _node_version(env.get("PATH"))
        if node is not None:
            for warning in await asyncio.to_thread(node_warnings, root, node):
                await sink(warning)
        manager = detect_package_manager(root, ctx.source.metadata.get("package_manager"))
        steps: list[tuple[str, list[str], float]] = [
            (
                "install",
                settings.install_command or install_with_dev(install_command(root, manager)),
                settings.install_timeout_s or self.settings.install_timeout_s,
            ),
            (
                "build",
                settings.build_command or build_command(manager),
                settings.build_timeout_s or self.settings.build_timeout_s,
            ),
        ]
        for step, argv, timeout_s in steps:
            resolved = resolve_executable(step, argv, env.get("PATH"))
            self._check_visible(step, resolved[0], spec)
            await sink(f"$ {describe(argv)}")
            bound.info("build.step_started", step=step, command=describe(argv))
            result = await run_step(
                step,
                resolved,
                cwd=root,
                env=env,
                timeout_s=timeout_s,
                sink=sink,
                sweep=layout.root,
                mask=mask,
                tail_lines=self.settings.log_tail_lines,
                label=describe(argv),
                sandbox=self.sandbox,
                spec=spec,
            )
            await sink(f"{step} finished in {result.duration_s:.1f} s")
            bound.info("build.step_finished", step=step, duration_s=round(result.duration_s, 3))

        entry = root / START_COMMAND[1]
        if not settings.start_command and not entry.is_file():
            raise BuildFailed(
                "build", f"the build finished but wrote no {START_COMMAND[1]} in the project"
            )
        created = datetime.now(UTC)
        await asyncio.to_thread(
            write_json_atomic,
            layout.artifact_file,
            {
                "build_id": ctx.build.id,
                "deployment_id": ctx.deployment.id,
                "project_id": ctx.project.id,
                "project_root": str(root.relative_to(layout.root.resolve())),
                "package_manager": manager,
                "created_at": created.isoformat(),
            },
        )
        duration = time.monotonic() - started
        await sink(f"Build finished in {duration:.1f} s")
        bound.info("build.finished", duration_s=round(duration, 3))
        return BuildArtifact(build_id=ctx.build.id, path=str(layout.root), created_at=created)

    def _check_visible(self, step: str, program: str, spec: SandboxSpec) -> None:
        if not self.sandbox.visible(program, spec):
            raise BuildFailed(
                step,
                f"{program} is outside the sandbox, which shows /usr, the project and "
                "runner.sandbox_ro_paths only; add the folder it is installed in to "
                "runner.sandbox_ro_paths",
                details={"tool": program, "setting": "runner.sandbox_ro_paths"},
            )

    # --- artifacts ------------------------------------------------------------------

    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        try:
            layout = BuildLayout.of(self.builds_dir, build_id)
        except ValueError:
            return None
        record = read_json(layout.artifact_file)
        if record is None:
            return None
        root = layout.root / str(record.get("project_root", "src"))
        if not (root / START_COMMAND[1]).is_file():
            return None
        try:
            created = datetime.fromisoformat(str(record["created_at"]))
        except (KeyError, ValueError):
            created = datetime.fromtimestamp(layout.artifact_file.stat().st_mtime, UTC)
        return BuildArtifact(build_id=build_id, path=str(layout.root), created_at=created)

    def artifact_roots(self) -> list[str]:
        """The builds folder: each build's ``observability/`` dir (spans and logs per
        the env contract, and the server's captured output) is read by ingestion."""
        return [str(self.builds_dir)]

    async def abandon_build(self, build_id: str) -> None:
        """End what an interrupted build left running in its folder (its worker was
        killed: step processes, and helpers that left their group), unless a live
        process still holds the build or a server of it runs."""
        if build_id in self._building:
            return
        layout = self._layout(build_id)
        if not layout.root.is_dir():
            return
        lock = BuildLock(layout)
        if not lock.acquire():
            return  # a build or start in another live process holds it
        try:
            if _has_live_server(layout):
                return
            killed = await asyncio.to_thread(sweep_dir, layout.root)
        finally:
            lock.release()
        if killed:
            _log.warning("build.leftovers_killed", build_id=build_id, pids=killed)

    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        keep_ids = set(keep)
        in_use = {server.layout.root for server in self._servers.values()}
        removed: list[str] = []
        if not self.builds_dir.is_dir():
            return removed
        for folder in sorted(self.builds_dir.iterdir()):
            layout = BuildLayout(folder)
            if (
                not folder.is_dir()
                or folder.name in keep_ids
                or folder.name in self._building
                or folder in self._starting
                or folder in in_use
                or not layout.is_runner_made()
                or _has_live_server(layout)
            ):
                continue
            lock = BuildLock(layout)
            if not lock.acquire():
                continue  # a build or start in another process holds it
            try:
                if _has_live_server(layout):
                    continue
                await asyncio.to_thread(shutil.rmtree, folder, True)
            finally:
                lock.release()
            removed.append(folder.name)
        if removed:
            _log.info("artifacts.pruned", removed=len(removed), kept=len(keep_ids))
        return removed

    # --- start ----------------------------------------------------------------------

    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        layout = BuildLayout(Path(artifact.path))
        record = read_json(layout.artifact_file) or {}
        root = (layout.root / str(record.get("project_root", "src"))).resolve()
        settings = ctx.project.settings
        argv = list(settings.start_command or START_COMMAND)
        if not settings.start_command and not (root / START_COMMAND[1]).is_file():
            raise BuildFailed(
                "start",
                f"the output of build {artifact.build_id} is gone ({root / START_COMMAND[1]})",
                details={"artifact_build_id": artifact.build_id},
            )
        lock = BuildLock(layout)
        if not lock.acquire(shared=True):
            raise Conflict(
                f"build {artifact.build_id} is being built or pruned; try again",
                details={"artifact_build_id": artifact.build_id},
            )
        self._starting.add(layout.root)
        try:
            layout.make_observability_dirs()
            if not layout.meta_file.exists():
                layout.write_meta(
                    project_id=ctx.project.id,
                    deployment_id=ctx.deployment.id,
                    build_id=artifact.build_id,
                )
            mask = mask_secrets(ctx.secrets)
            for attempt in range(1, _PORT_RETRIES + 1):
                server = await self._start_once(ctx, artifact, layout, root, argv, log, mask)
                if isinstance(server, RunningServer):
                    return server
                await log(f"port {server} was taken before the server bound it; trying another")
                _log.info("server.port_race", port=server, attempt=attempt)
            raise BuildFailed("start", "the server could not bind a port after 3 attempts")
        finally:
            self._starting.discard(layout.root)
            lock.release()

    async def _start_once(
        self,
        ctx: BuildContext,
        artifact: BuildArtifact,
        layout: BuildLayout,
        root: Path,
        argv: list[str],
        log: LogSink,
        mask: Callable[[str], str],
    ) -> RunningServer | int:
        """Start and wait until healthy; the port (``int``) when another process took
        it between the check and the bind, so the caller tries another."""
        host = self.settings.host
        health_path = ctx.project.settings.health_path or "/health"
        timeout_s = ctx.project.settings.health_timeout_s or self.settings.health_timeout_s
        port = self.ports.allocate()
        listen: socket.socket | None = None
        try:
            if self.sandbox.enabled:
                listen = _listening_socket(host, port)
                if listen is None:
                    self.ports.release(port)
                    return port
            spec = self._spec(ctx, layout, root, listen=listen)
            env = self.sandbox.environment(self.server_env(ctx, layout, port), spec)
            resolved = resolve_executable("start", argv, env.get("PATH"))
            self._check_visible("start", resolved[0], spec)
            await asyncio.to_thread(self.sandbox.prepare, spec, recursive=False)
            await log(f"$ {describe(argv)}  (PORT={port})")
            started = time.monotonic()
            server = await self._spawn(ctx, layout, spec, resolved, env, host, port, health_path)
        except BaseException:
            self.ports.release(port)
            raise
        finally:
            if listen is not None:
                listen.close()  # the server holds it now
        bound = _log.bind(build_id=ctx.build.id, server_id=server.id, pid=server.pid, port=port)
        bound.info("server.started")
        url = f"http://{host}:{port}{health_path}"
        try:
            outcome = await self._wait_healthy(server, timeout_s)
        except BaseException:
            # Cancelled while waiting: nothing of it may stay.
            await self._terminate(server, grace_s=0)
            raise
        if outcome == "healthy":
            elapsed = time.monotonic() - started
            for line in _runtime_tail(layout, server, 20):
                await log(mask(line))
            await log(f"Server healthy at {url} (pid {server.pid}) after {elapsed:.1f} s")
            bound.info("server.healthy", duration_s=round(elapsed, 3))
            self._servers[server.id] = server
            if server.child is not None:
                server.watcher = asyncio.create_task(
                    self._watch_exit(server, ctx.deployment.id, ctx.build.id, mask),
                    name=f"server-exit-{server.id}",
                )
            server.process.cpu_percent(None)  # primes the CPU measurement
            write_json_atomic(layout.server_file(server.id), _server_record(server))
            return RunningServer(
                id=server.id,
                deployment_id=ctx.deployment.id,
                build_id=ctx.build.id,
                process_id=server.pid,
                process_started_at=server.started_at,
                host=host,
                port=port,
                health_status=HealthStatus.HEALTHY,
                last_health_check=utcnow(),
                metadata={
                    "artifact_build_id": artifact.build_id,
                    "build_dir": str(layout.root),
                    "health_path": health_path,
                    **server.extra,
                },
            )
        if outcome == "exited":
            assert server.child is not None
            code = server.child.returncode
            await self._terminate(server, grace_s=0)
            tail = [
                mask(line) for line in _runtime_tail(layout, server, self.settings.log_tail_lines)
            ]
            for line in tail:
                await log(line)
            if any("EADDRINUSE" in line for line in tail):
                return port
            bound.warning("server.exited_early", exit_code=code)
            quoted = (":\n" + "\n".join(tail)) if tail else ""
            raise BuildFailed(
                "start",
                f"server exited with code {code} before becoming healthy{quoted}",
                details={"exit_code": code},
            )
        await self._terminate(server, grace_s=min(self.settings.stop_grace_s, 5.0))
        answer = f"it answered HTTP {outcome}" if outcome != "silent" else "it never answered"
        for line in _runtime_tail(layout, server, self.settings.log_tail_lines):
            await log(mask(line))
        bound.warning("server.unhealthy", answer=outcome, timeout_s=timeout_s)
        raise BuildFailed(
            "health",
            f"not healthy after {timeout_s:g} s at {url} ({answer})",
            details={"url": url, "timeout_s": timeout_s},
        )

    async def _spawn(
        self,
        ctx: BuildContext,
        layout: BuildLayout,
        spec: SandboxSpec,
        argv: list[str],
        env: Mapping[str, str],
        host: str,
        port: int,
        health_path: str,
    ) -> _Server:
        """Start the log relay, then the server with its output piped into it."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        secrets_read, secrets_write = os.pipe()
        relay_child: asyncio.subprocess.Process | None = None
        try:
            relay_child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                _relay.__file__,
                "--dir",
                str(layout.runtime),
                "--max-bytes",
                str(self.settings.runtime_log_max_bytes),
                "--keep",
                str(self.settings.runtime_log_keep),
                "--stderr-fd",
                str(err_read),
                "--secrets-fd",
                str(secrets_read),
                stdin=out_read,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(err_read, secrets_read),
                env={},
                start_new_session=True,
            )
            os.close(secrets_read)
            secrets_read = -1
            # The server's secret values, masked in its captured output as in build
            # logs; through a pipe, never a file or the command line.
            sending, secrets_write = secrets_write, -1  # _send_secrets closes it
            await asyncio.to_thread(_send_secrets, sending, ctx.secrets)
            try:
                started = await self.sandbox.spawn(
                    argv,
                    spec,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out_write,
                    stderr=err_write,
                )
            except OSError as exc:
                raise BuildFailed("start", f"{describe(argv)} could not be started: {exc}") from exc
        except BaseException:
            for fd in (out_read, out_write, err_read, err_write, secrets_read, secrets_write):
                if fd >= 0:
                    os.close(fd)
            if relay_child is not None:
                await _reap_relay(relay_child, None)
            raise
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        process = await started.command()
        relay = _psutil_process(relay_child.pid)
        server_id = _new_server_id()
        extra: dict[str, Any] = {}
        if relay is not None:
            extra = {"relay_pid": relay.pid, "relay_started_at": relay.create_time()}
        if started.init is not None:
            extra["sandbox"] = started.record()
        return _Server(
            id=server_id,
            pid=process.pid,
            started_at=process.create_time(),
            port=port,
            host=host,
            health_path=health_path,
            layout=layout,
            process=process,
            group=started.group,
            child=started.process,
            relay=relay,
            relay_child=relay_child,
            init=started.init,
            network=started.network,
            network_child=started.network_child,
            extra=extra,
        )

    async def _wait_healthy(self, server: _Server, timeout_s: float) -> str:
        """``"healthy"``, ``"exited"``, or what the last probe saw at the deadline
        (an HTTP status as text, or ``"silent"``)."""
        assert server.child is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        exited = asyncio.ensure_future(server.child.wait())
        last = "silent"
        try:
            while True:
                if exited.done():
                    return "exited"
                remaining = deadline - loop.time()
                status = await probe(
                    server.host,
                    server.port,
                    server.health_path,
                    timeout_s=max(0.05, min(self.settings.health_probe_timeout_s, remaining)),
                )
                if status is not None and 200 <= status < 300:
                    return "healthy"
                if status is not None:
                    last = str(status)
                if loop.time() >= deadline:
                    return "exited" if exited.done() else last
                pause = min(self.settings.health_poll_interval_s, max(deadline - loop.time(), 0))
                await asyncio.wait({exited}, timeout=pause)
        finally:
            if not exited.done():
                exited.cancel()

    # --- stop -----------------------------------------------------------------------

    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        supervised = self._servers.get(server.id) or self._adopt(server)
        if supervised is None:
            if all(other.port != server.port for other in self._servers.values()):
                self.ports.release(server.port)
            _end_recorded_sandbox(server)
            _forget_server_file(server)
            _log.debug("server.stop_noop", server_id=server.id)
            return
        _log.info("server.stopping", server_id=server.id, pid=supervised.pid, grace_s=grace_s)
        await self._terminate(supervised, grace_s=grace_s)
        _log.info("server.stopped", server_id=server.id, pid=supervised.pid)

    async def _terminate(self, server: _Server, *, grace_s: float) -> None:
        """SIGTERM the server's processes (in a sandbox: every process in it; else
        its group and escaped descendants), SIGKILL whatever is left after ``grace_s``
        (in a sandbox: its init, which ends the whole pid namespace), wait for the
        relay, end the sandbox's network, release the port, forget the server."""
        server.stopping = True
        if server.watcher is not None and server.watcher is not asyncio.current_task():
            server.watcher.cancel()
        try:
            pgid = server.group
            if server.init is not None:
                await _terminate_sandbox(server.init, pgid, grace_s)
            else:
                await _terminate_group(server.pid, server.process, pgid, grace_s)
            if group_alive(pgid) and not await _wait_gone(pgid, [], 5.0):
                _log.warning("server.not_gone", server_id=server.id, pid=server.pid)
            if server.child is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(server.child.wait()), 2)
            await _reap_relay(server.relay_child, server.relay)
            await end_network(server.network_child, server.network)
        finally:
            self.ports.release(server.port)
            self._servers.pop(server.id, None)
            self._stat_processes.pop(server.id, None)
            with contextlib.suppress(OSError):
                server.layout.server_file(server.id).unlink()

    async def _watch_exit(
        self, server: _Server, deployment_id: str, build_id: str, mask: Callable[[str], str]
    ) -> None:
        """Report the server's end when it was not asked to stop (its child exited):
        what is left of it is cleaned up first, so its last lines are in the log."""
        assert server.child is not None
        code = await server.child.wait()
        if server.stopping or self._servers.get(server.id) is not server:
            return
        await self._terminate(server, grace_s=0)
        tail = [
            mask(line)
            for line in _runtime_tail(server.layout, server, self.settings.log_tail_lines)
        ]
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        _log.warning("server.exited", server_id=server.id, reason=reason)
        await self.report_exit(
            ServerExit(
                server_id=server.id,
                deployment_id=deployment_id,
                build_id=build_id,
                exit_code=code,
                reason=reason,
                log_tail=tail,
                at=utcnow(),
            )
        )

    # --- supervision ----------------------------------------------------------------

    async def is_alive(self, server: RunningServer) -> bool:
        return matching_process(server.process_id, server.process_started_at) is not None

    def reports_exit_of(self, server: RunningServer) -> bool:
        supervised = self._servers.get(server.id)
        return supervised is not None and supervised.child is not None

    async def attach(self, server: RunningServer) -> bool:
        if server.id in self._servers:
            return True
        adopted = self._adopt(server)
        if adopted is None:
            _end_recorded_sandbox(server)
            _log.info("server.attach_gone", server_id=server.id, pid=server.process_id)
            return False
        self._servers[server.id] = adopted
        self.ports.reserve(server.port)
        adopted.process.cpu_percent(None)
        _log.info("server.attached", server_id=server.id, pid=adopted.pid, port=server.port)
        return True

    def _adopt(self, server: RunningServer) -> _Server | None:
        process = matching_process(server.process_id, server.process_started_at)
        if process is None or server.process_started_at is None:
            return None
        build_dir = server.metadata.get("build_dir")
        layout = (
            BuildLayout(Path(build_dir))
            if isinstance(build_dir, str)
            else BuildLayout(self.builds_dir / check_build_id(server.build_id))
        )
        relay = matching_process(
            _as_int(server.metadata.get("relay_pid")),
            _as_float(server.metadata.get("relay_started_at")),
        )
        sandbox = server.metadata.get("sandbox")
        record: dict[str, Any] = sandbox if isinstance(sandbox, dict) else {}
        return _Server(
            id=server.id,
            pid=process.pid,
            started_at=server.process_started_at,
            port=server.port,
            host=server.host,
            health_path=str(server.metadata.get("health_path") or "/health"),
            layout=layout,
            process=process,
            group=_as_int(record.get("group")) or process.pid,
            relay=relay,
            init=matching_process(
                _as_int(record.get("init_pid")), _as_float(record.get("init_started_at"))
            ),
            network=matching_process(
                _as_int(record.get("network_pid")), _as_float(record.get("network_started_at"))
            ),
        )

    async def stats(self, server: RunningServer) -> ServerStats:
        supervised = self._servers.get(server.id)
        process = supervised.process if supervised is not None else self._stat_process(server)
        if process is None:
            return ServerStats(alive=False, healthy=False)
        memory_mb: float | None = None
        cpu: float | None = None
        try:
            with process.oneshot():
                if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                    return ServerStats(alive=False, healthy=False)
                memory_mb = process.memory_info().rss / (1024 * 1024)
                cpu = process.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return ServerStats(alive=False, healthy=False)
        except psutil.AccessDenied:
            pass  # another user's process: alive, but no figures
        path = (
            supervised.health_path
            if supervised
            else str(server.metadata.get("health_path") or "/health")
        )
        status = await probe(
            server.host, server.port, path, timeout_s=self.settings.health_probe_timeout_s
        )
        return ServerStats(
            alive=True,
            healthy=status is not None and 200 <= status < 300,
            memory_usage_mb=round(memory_mb, 2) if memory_mb is not None else None,
            cpu_percent=cpu,
        )

    def _stat_process(self, server: RunningServer) -> psutil.Process | None:
        cached = self._stat_processes.get(server.id)
        if cached is not None and cached.is_running():
            return cached
        process = matching_process(server.process_id, server.process_started_at)
        if process is not None:
            process.cpu_percent(None)
            self._stat_processes[server.id] = process
        return process

    async def close(self) -> None:
        """Stop supervising; servers (and their log relays) keep running."""
        for server in self._servers.values():
            if server.watcher is not None:
                server.watcher.cancel()
        self._servers.clear()
        self._stat_processes.clear()


# --- helpers ----------------------------------------------------------------------


def _send_secrets(fd: int, secrets: Sequence[str]) -> None:
    """Write the secrets for the relay and close the pipe (the relay reads to its end)."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(json.dumps([s for s in secrets if s]).encode())
    except BrokenPipeError:
        pass  # the relay died at once; the start fails on its own


def _new_server_id() -> str:
    from mastra_admin.core.models import new_id

    return new_id()


def _project_root(root: Path, layout: BuildLayout, source_path: str) -> Path:
    resolved = Path(root).resolve()
    if not resolved.is_relative_to(layout.root.resolve()):
        raise BuildFailed("copy", f"the source returned {resolved}, outside the build folder")
    if not (resolved / "package.json").is_file():
        raise BuildFailed("copy", f"the copied project has no package.json ({source_path})")
    return resolved


def _clear_build_dir(layout: BuildLayout) -> None:
    """A retried build starts from an empty folder (the lock file stays: it is held)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    for child in layout.root.iterdir():
        if child.name == layout.lock_file.name:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _server_record(server: _Server) -> dict[str, Any]:
    return {
        "server_id": server.id,
        "pid": server.pid,
        "started_at": server.started_at,
        "port": server.port,
        **server.extra,
    }


def _has_live_server(layout: BuildLayout) -> bool:
    """Whether a server recorded in the build folder still runs (any process)."""
    if not layout.servers.is_dir():
        return False
    for record_file in layout.servers.glob("*.json"):
        record = read_json(record_file)
        if record is None:
            continue
        if matching_process(_as_int(record.get("pid")), _as_float(record.get("started_at"))):
            return True
    return False


def _end_recorded_sandbox(server: RunningServer) -> None:
    """The pasta of a server's sandbox once the sandbox is gone (its server exited
    while no process of the platform watched; pasta holds the network namespace and
    would stay). Nothing is touched while the sandbox's init still runs: a record
    whose server does not match may still name a live sandbox."""
    record = server.metadata.get("sandbox")
    if not isinstance(record, dict):
        return

    def recorded(name: str) -> psutil.Process | None:
        return matching_process(
            _as_int(record.get(f"{name}_pid")), _as_float(record.get(f"{name}_started_at"))
        )

    if recorded("init") is None:
        network = recorded("network")
        if network is not None:
            kill_processes([network])


def _forget_server_file(server: RunningServer) -> None:
    build_dir = server.metadata.get("build_dir")
    if isinstance(build_dir, str):
        with contextlib.suppress(OSError, ValueError):
            BuildLayout(Path(build_dir)).server_file(server.id).unlink()


def _runtime_tail(layout: BuildLayout, server: _Server, lines: int) -> list[str]:
    """The last output lines of this server (stderr first: that is where crashes go)."""
    relay_pid = server.relay.pid if server.relay is not None else None
    if relay_pid is None or not layout.runtime.is_dir():
        return []
    result: list[str] = []
    for stream in ("stderr", "stdout"):
        files = sorted(layout.runtime.glob(f"{stream}-*-{relay_pid}.log"))
        collected: list[str] = []
        for path in reversed(files):
            try:
                text = path.read_bytes()[-64 * 1024 :].decode("utf-8", errors="replace")
            except OSError:
                continue
            collected = text.splitlines() + collected
            if len(collected) >= lines:
                break
        result += [line for line in collected if line.strip()][-lines:]
    return result


def _listening_socket(host: str, port: int) -> socket.socket | None:
    """The server's port, opened on the host for the server in its sandbox (which
    takes it through ``MASTRA_LISTEN_FD``); ``None`` when another process holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise BuildFailed("start", f"could not listen on {host}:{port}: {exc}") from exc
    return sock


def _collector_ports(env: Mapping[str, str]) -> tuple[int, ...]:
    """Ports of the host's loopback a server's sandbox may reach: the collector's,
    when the collector URL it was given is on this machine's loopback."""
    ports: set[int] = set()
    for name in COLLECTOR_VARS:
        value = env.get(name)
        if not value:
            continue
        try:
            url = urlsplit(value)
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            continue
        if url.hostname in ("127.0.0.1", "localhost", "::1"):
            ports.add(port)
    return tuple(sorted(ports))


async def _terminate_group(pid: int, process: psutil.Process, pgid: int, grace_s: float) -> None:
    """Without a sandbox: SIGTERM the group and escaped descendants, SIGKILL after
    ``grace_s``."""
    escaped = snapshot_descendants(pid) if process.is_running() else []
    if grace_s > 0:
        kill_group(pgid, signal.SIGTERM)
        kill_processes(escaped, signal.SIGTERM)
        if await _wait_gone(pgid, escaped, grace_s):
            escaped = []
        else:
            escaped += snapshot_descendants(pid)
    kill_group(pgid, signal.SIGKILL)
    kill_processes(escaped, signal.SIGKILL)
    await _wait_gone(pgid, escaped, 5.0)


async def _terminate_sandbox(init: psutil.Process, pgid: int, grace_s: float) -> None:
    """SIGTERM every process in the sandbox (never its launcher or init, whose end
    would SIGKILL the rest at once); once the server has exited the sandbox ends by
    itself; after ``grace_s``, SIGKILL its init (and so everything in it)."""
    if grace_s > 0:
        kill_processes(snapshot_descendants(init.pid), signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _running(init) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    kill_processes([init], signal.SIGKILL)
    kill_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _running(init) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _wait_gone(pgid: int, others: Sequence[psutil.Process], timeout_s: float) -> bool:
    """Poll until the group is empty and ``others`` have exited; ``False`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive_others = [p for p in others if _running(p)]
        if not group_has_live_members(pgid) and not alive_others:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


async def _reap_relay(
    child: asyncio.subprocess.Process | None, process: psutil.Process | None
) -> None:
    """The relay ends by itself once the server's pipes close; make sure it does."""
    if child is not None:
        try:
            await asyncio.wait_for(asyncio.shield(child.wait()), 2)
            return
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(child.wait()), 2)
            return
    if process is not None:
        deadline = time.monotonic() + 2
        while _running(process) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        kill_processes([process])


def _psutil_process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
