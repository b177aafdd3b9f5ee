"""``LimitedProcessRunner``: Mastra servers as local processes, under limits.

Every command (install, build and the server itself) is started as
``prlimit --nofile=N:N --core=0 -- nice -n K <command>``: both tools set their limit
and ``exec`` the command, so the server keeps the pid the runner recorded, in a
process session of its own. A build runs in ``{builds_dir}/{build_id}/src``, its
observability dirs beside it; a server's stdout and stderr go to
``observability/runtime/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import psutil
import structlog

from mastra_admin.core.errors import BuildFailed, Unavailable
from mastra_admin.core.models import HealthStatus, RunningServer
from mastra_admin.core.runner import (
    BuildArtifact,
    BuildContext,
    LogSink,
    ProjectRunner,
    ServerStats,
)
from mastra_admin.core.source import ProjectSourceProvider
from mastra_admin.runners.limited._settings import LimitedRunnerSettings

__all__ = ["LimitedProcessRunner"]

_log = structlog.get_logger("mastra_admin.runners.limited")

SERVER_ENV_ALLOW = ("PATH", "HOME", "LANG", "TZ")
BUILD_ENV_ALLOW = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
BUILD_ENV_PREFIXES = ("npm_config_", "NPM_CONFIG_", "COREPACK_")
START_COMMAND = ["node", ".mastra/output/index.mjs"]
TAIL_LINES = 20

_INSTALL = {
    "npm": (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "install", "--no-audit"]),
    "pnpm": (["pnpm", "install", "--frozen-lockfile"], ["pnpm", "install"]),
    "yarn": (["yarn", "install", "--frozen-lockfile"], ["yarn", "install"]),
    "bun": (["bun", "install", "--frozen-lockfile"], ["bun", "install"]),
}
_LOCKS = {
    "npm": "package-lock.json",
    "pnpm": "pnpm-lock.yaml",
    "yarn": "yarn.lock",
    "bun": "bun.lock",
}
_BUILD = {
    "npm": ["npm", "exec", "--no", "--", "mastra", "build"],
    "pnpm": ["pnpm", "exec", "mastra", "build"],
    "yarn": ["yarn", "mastra", "build"],
    "bun": ["bunx", "mastra", "build"],
}


def mask_secrets(secrets: Sequence[str]) -> Callable[[str], str]:
    """Replace every secret value in a line with ``***`` (longest first)."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(line: str) -> str:
        for value in values:
            line = line.replace(value, "***")
        return line

    return mask


def _matching(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """The process ``pid`` if it is the one started at ``started_at`` (not a reuse)."""
    if pid is None or started_at is None:
        return None
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started_at) > 1.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return process


def _kill(processes: Sequence[psutil.Process], sig: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _under(folder: Path) -> list[psutil.Process]:
    """Processes of this user working in ``folder`` (what a killed step left)."""
    prefix = str(folder)
    found = []
    for process in psutil.process_iter(["uids"]):
        try:
            if process.pid == os.getpid() or process.info["uids"].real != os.getuid():
                continue
            if process.cwd().startswith(prefix):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


async def _gone(processes: Sequence[psutil.Process], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def _probe(host: str, port: int, path: str, timeout_s: float = 2.0) -> int | None:
    """The status of ``GET path``, or ``None`` when the server does not answer."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return int(status_line.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return None


class LimitedProcessRunner(ProjectRunner):
    """Builds with the project's package manager and runs ``node`` servers, each
    command under ``prlimit`` and ``nice``."""

    type: ClassVar[str] = "limited"

    def __init__(
        self,
        source: ProjectSourceProvider,
        settings: LimitedRunnerSettings | None = None,
        *,
        data_dir: Path | str = ".mastra-admin",
    ) -> None:
        missing = [tool for tool in ("prlimit", "nice") if shutil.which(tool) is None]
        if missing:
            raise Unavailable(f"the limited runner needs {' and '.join(missing)} on PATH")
        self.source = source
        self.settings = settings or LimitedRunnerSettings()
        builds = self.settings.builds_dir or Path(data_dir) / "limited-builds"
        self.builds_dir = builds.expanduser().resolve()
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        self._servers: dict[str, RunningServer] = {}
        self._children: dict[str, asyncio.subprocess.Process] = {}

    # --- commands ------------------------------------------------------------------

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` under this runner's limits."""
        files = self.settings.max_open_files
        return [
            "prlimit",
            f"--nofile={files}:{files}",
            "--core=0",
            "--",
            "nice",
            "-n",
            str(self.settings.nice),
            *argv,
        ]

    def build_env(self, ctx: BuildContext) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k in BUILD_ENV_ALLOW or k.startswith(BUILD_ENV_PREFIXES)
        }
        return {**env, **ctx.env}

    def server_env(self, ctx: BuildContext, folder: Path, port: int) -> dict[str, str]:
        env = {k: os.environ[k] for k in SERVER_ENV_ALLOW if k in os.environ}
        env.update(ctx.env)
        env["PORT"] = str(port)
        env["MASTRA_CLOUD_TRACES_TARGET_DIR"] = str(folder / "observability" / "spans")
        env["MASTRA_RUNNER_LOGS_TARGET_DIR"] = str(folder / "observability" / "logs")
        heap = self.settings.max_heap_mb
        if heap is not None:
            options = [ctx.env.get("NODE_OPTIONS", ""), f"--max-old-space-size={heap}"]
            env["NODE_OPTIONS"] = " ".join(o for o in options if o)
        return env

    # --- build -----------------------------------------------------------------------

    async def build(self, ctx: BuildContext, log: LogSink) -> BuildArtifact:
        folder = self.builds_dir / ctx.build.id
        mask = mask_secrets(ctx.secrets)
        settings = ctx.project.settings

        async def emit(line: str) -> None:
            await log(mask(line))

        await asyncio.to_thread(shutil.rmtree, folder, True)
        (folder / "observability").mkdir(parents=True)
        try:
            await emit(f"Copying {ctx.source.name} into the build folder")
            try:
                root = await self.source.get_project_path(ctx.source, folder / "src")
            except Exception as exc:
                raise BuildFailed("copy", f"could not copy {ctx.source.name}: {exc}") from exc
            manager = ctx.source.package_manager
            if manager not in _INSTALL:
                manager = "npm"
            locked, unlocked = _INSTALL[manager]
            install = settings.install_command or (
                locked if (root / _LOCKS[manager]).exists() else unlocked
            )
            env = self.build_env(ctx)
            steps = [
                ("install", install, settings.install_timeout_s or self.settings.install_timeout_s),
                (
                    "build",
                    settings.build_command or _BUILD[manager],
                    settings.build_timeout_s or self.settings.build_timeout_s,
                ),
            ]
            for step, argv, timeout_s in steps:
                await self._step(step, list(argv), root, env, timeout_s, emit, folder)
            if not (root / ".mastra" / "output" / "index.mjs").is_file():
                raise BuildFailed("build", "the build wrote no .mastra/output/index.mjs")
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        artifact = BuildArtifact(
            build_id=ctx.build.id, path=str(folder), created_at=datetime.now(UTC)
        )
        (folder / "artifact.json").write_text(artifact.model_dump_json())
        await emit(f"Build {ctx.build.id} kept in {folder}")
        return artifact

    async def _step(
        self,
        step: str,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        timeout_s: float,
        emit: LogSink,
        folder: Path,
    ) -> None:
        command = shlex.join(argv)
        await emit(f"$ {command}")
        _log.info("build.step_started", step=step, command=command)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.wrap(argv),
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                limit=1 << 20,
            )
        except OSError as exc:
            raise BuildFailed(step, f"{command} could not be started: {exc}") from exc
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        async def pump() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                tail.append(line)
                await emit(line)

        reading = asyncio.ensure_future(pump())
        try:
            async with asyncio.timeout(timeout_s):
                await process.wait()
                await asyncio.wait({reading}, timeout=2.0)
        except TimeoutError:
            await self._end_step(process, folder)
            raise BuildFailed(
                step, f"{command} timed out after {timeout_s:g} s: {' | '.join(tail)}"
            ) from None
        except BaseException:
            await self._end_step(process, folder)
            raise
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        if process.returncode != 0:
            await self._end_step(process, folder)
            quoted = " | ".join(line for line in tail if line.strip())
            raise BuildFailed(
                step, f"{command} failed with exit code {process.returncode}: {quoted}"
            )

    async def _end_step(self, process: asyncio.subprocess.Process, folder: Path) -> None:
        """Kill the step's session and whatever it left working in the build folder."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await process.wait()
        for _ in range(3):
            left = await asyncio.to_thread(_under, folder)
            if not left:
                return
            _kill(left, signal.SIGKILL)
            await _gone(left, 2.0)

    # --- servers ---------------------------------------------------------------------

    def _free_port(self) -> int:
        used = {s.port for s in self._servers.values()}
        for port in range(self.settings.port_range_start, self.settings.port_range_end + 1):
            if port in used:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((self.settings.host, port))
                except OSError:
                    continue
            return port
        raise BuildFailed(
            "start",
            f"no free port in {self.settings.port_range_start}-{self.settings.port_range_end}",
        )

    async def start(
        self, ctx: BuildContext, artifact: BuildArtifact, log: LogSink
    ) -> RunningServer:
        folder = Path(artifact.path)
        root = folder / "src"
        runtime = folder / "observability" / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        port = self._free_port()
        argv = ctx.project.settings.start_command or START_COMMAND
        stamp = f"{int(time.time() * 1000)}-{ctx.build.id}"
        out_path, err_path = runtime / f"stdout-{stamp}.log", runtime / f"stderr-{stamp}.log"
        await log(f"$ {shlex.join(argv)}  (PORT={port}, nice {self.settings.nice})")
        with out_path.open("ab") as out, err_path.open("ab") as err:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.wrap(argv),
                    cwd=root,
                    env=self.server_env(ctx, folder, port),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BuildFailed("start", f"{shlex.join(argv)} could not start: {exc}") from exc
        server = RunningServer(
            deployment_id=ctx.deployment.id,
            build_id=ctx.build.id,
            process_id=process.pid,
            process_started_at=psutil.Process(process.pid).create_time(),
            host=self.settings.host,
            port=port,
            metadata={"folder": str(folder), "runner": self.type},
        )
        self._servers[server.id] = server
        self._children[server.id] = process
        try:
            await self._wait_healthy(ctx, server, process, out_path, err_path)
        except BaseException:
            await self._terminate(server, grace_s=0.0)
            raise
        self._record(server, folder)
        await log(f"Server healthy on {server.host}:{server.port} (pid {server.process_id})")
        return server.model_copy(update={"health_status": HealthStatus.HEALTHY})

    async def _wait_healthy(
        self,
        ctx: BuildContext,
        server: RunningServer,
        process: asyncio.subprocess.Process,
        out_path: Path,
        err_path: Path,
    ) -> None:
        path = ctx.project.settings.health_path
        timeout_s = ctx.project.settings.health_timeout_s or self.settings.health_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.returncode is not None:
                output = _last_lines(out_path) + _last_lines(err_path)
                raise BuildFailed(
                    "start",
                    f"the server exited with code {process.returncode} before becoming "
                    f"healthy: {' | '.join(output)}",
                )
            if await _probe(server.host, server.port, path) == 200:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), 0.1)
        raise BuildFailed(
            "health",
            f"the server was not healthy after {timeout_s:g} s "
            f"(GET {path} on {server.host}:{server.port})",
        )

    def _record(self, server: RunningServer, folder: Path) -> None:
        """A file per live server in its build folder: pruning never removes it."""
        servers = folder / "servers"
        servers.mkdir(exist_ok=True)
        (servers / f"{server.id}.json").write_text(server.model_dump_json())

    async def stop(self, server: RunningServer, *, grace_s: float = 10.0) -> None:
        await self._terminate(server, grace_s=grace_s)

    async def _terminate(self, server: RunningServer, *, grace_s: float) -> None:
        process = _matching(server.process_id, server.process_started_at)
        if process is not None:
            family = _tree(process.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            _kill(family, signal.SIGTERM)
            if not await _gone(family, grace_s):
                _log.info("server.kill", server_id=server.id, grace_s=grace_s)
                family += [p for p in _tree(process.pid) if p not in family]
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                _kill(family, signal.SIGKILL)
                await _gone(family, 5.0)
        child = self._children.pop(server.id, None)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                await child.wait()
        self._servers.pop(server.id, None)
        folder = server.metadata.get("folder")
        if isinstance(folder, str) and process is not None:
            with contextlib.suppress(OSError):
                (Path(folder) / "servers" / f"{server.id}.json").unlink()

    async def is_alive(self, server: RunningServer) -> bool:
        return _matching(server.process_id, server.process_started_at) is not None

    async def stats(self, server: RunningServer) -> ServerStats:
        process = _matching(server.process_id, server.process_started_at)
        if process is None:
            return ServerStats(alive=False, healthy=False)
        healthy = await _probe(server.host, server.port, "/health") == 200
        family = _tree(process.pid)
        memory = cpu = 0.0
        for member in family:
            with contextlib.suppress(psutil.Error):
                memory += member.memory_info().rss / (1024 * 1024)
                cpu += member.cpu_percent(interval=None)
        return ServerStats(alive=True, healthy=healthy, memory_usage_mb=memory, cpu_percent=cpu)

    async def attach(self, server: RunningServer) -> bool:
        if _matching(server.process_id, server.process_started_at) is None:
            return False
        self._servers[server.id] = server
        return True

    # --- artifacts ---------------------------------------------------------------------

    async def has_artifact(self, build_id: str) -> BuildArtifact | None:
        path = self.builds_dir / build_id / "artifact.json"
        try:
            return BuildArtifact.model_validate_json(path.read_text())
        except (OSError, ValueError):
            return None

    async def prune_artifacts(self, keep: Sequence[str]) -> list[str]:
        removed = []
        for folder in sorted(self.builds_dir.iterdir()):
            if not folder.is_dir() or folder.name in keep or _serving(folder):
                continue
            await asyncio.to_thread(shutil.rmtree, folder, True)
            removed.append(folder.name)
        return removed

    def artifact_roots(self) -> list[str]:
        return [str(self.builds_dir)]

    async def close(self) -> None:
        """Servers keep running; the next process re-attaches them."""
        self._children.clear()
        self._servers.clear()


def _serving(folder: Path) -> bool:
    for record in (folder / "servers").glob("*.json"):
        try:
            server = RunningServer.model_validate_json(record.read_text())
        except (OSError, ValueError):
            continue
        if _matching(server.process_id, server.process_started_at) is not None:
            return True
    return False


def _last_lines(path: Path, count: int = 10) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines[-count:] if line.strip()]
