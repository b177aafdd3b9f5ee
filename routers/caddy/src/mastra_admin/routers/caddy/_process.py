"""The router's own Caddy process: started, watched and restarted when it dies.

Caddy starts with nothing but its admin endpoint (a 0600 unix socket in the router's
0700 state dir); the router then loads the edge configuration through the admin API,
after every start and every restart. The process gets a small environment (no
database URLs or keys of the platform), its own session (a Ctrl-C in the platform's
terminal reaches the platform, which stops Caddy in order), and on Linux dies with the
thread that started it, so that no orphan keeps sharing the edge ports (Caddy binds
them with SO_REUSEPORT: an orphan would silently take part of the traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from mastra_admin.core.errors import Unavailable
from mastra_admin.routers.caddy._admin import CaddyAdmin

__all__ = ["ManagedCaddy"]

_log = structlog.get_logger("mastra_admin.routers.caddy")

_READY_TIMEOUT_S = 15.0
_STOP_GRACE_S = 5.0
_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
_HEALTHY_RUN_S = 30.0
"""A Caddy that ran this long before dying is restarted at once, not after a pause."""
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


def _die_with(parent: int) -> Callable[[], None]:
    """For the child, before exec: SIGTERM when the starting thread ends (Linux's
    ``PR_SET_PDEATHSIG``), and no start at all if the parent is already gone."""

    def arm() -> None:  # pragma: no cover - runs in the child
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return arm


class ManagedCaddy:
    """``caddy run`` under supervision; ``on_ready`` runs after each (re)start, once
    the admin endpoint answers (the router loads its configuration there)."""

    def __init__(
        self,
        binary: Path,
        state_dir: Path,
        admin: CaddyAdmin,
        admin_listen: str,
        admin_origins: tuple[str, ...],
        on_ready: Callable[[], Awaitable[None]],
    ) -> None:
        self.binary = binary
        self.state_dir = state_dir
        self.admin = admin
        self.admin_listen = admin_listen
        self.admin_origins = admin_origins
        self.on_ready = on_ready
        self.bootstrap = state_dir / "bootstrap.json"
        self.pidfile = state_dir / "caddy.pid"
        self.stderr_file = state_dir / "caddy.stderr.log"
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _environment(self) -> dict[str, str]:
        home = self.state_dir / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CONFIG_HOME=str(home / "config"),
        )
        return env

    def _write_bootstrap(self) -> None:
        config = {
            "admin": {
                "listen": self.admin_listen,
                "enforce_origin": True,
                "origins": list(self.admin_origins),
                "config": {"persist": False},
            }
        }
        tmp = self.bootstrap.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle)
        tmp.replace(self.bootstrap)

    def _stop_orphan(self) -> None:
        """A Caddy of an earlier router process that did not die with it (another OS,
        or a parent thread that outlived its process): it holds our ports."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        if str(self.bootstrap).encode() not in cmdline:
            return  # not ours (or gone; the pid may have been reused)
        _log.warning("caddy.orphan_stopped", pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def _spawn(self) -> None:
        socket_path = self.admin.socket_path
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)  # left by a Caddy that was killed
        stderr = os.open(self.stderr_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.binary),
                "run",
                "--config",
                str(self.bootstrap),
                "--pidfile",
                str(self.pidfile),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                env=self._environment(),
                cwd=str(self.state_dir),
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()) if sys.platform.startswith("linux") else None,
            )
        finally:
            os.close(stderr)
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        process = self._process
        while time.monotonic() < deadline:
            if process is None or process.returncode is not None:
                raise Unavailable(
                    f"Caddy exited at start (code {process.returncode if process else '?'}); "
                    f"see {self.stderr_file}"
                )
            if await self.admin.ping():
                return
            await asyncio.sleep(0.02)
        raise Unavailable(f"Caddy's admin endpoint did not answer in time; see {self.stderr_file}")

    async def start(self) -> None:
        self._closing = False
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._write_bootstrap()
        await asyncio.to_thread(self._stop_orphan)
        await self._spawn()
        _log.info("caddy.started", pid=self.pid, binary=str(self.binary))
        await self.on_ready()
        self._watcher = asyncio.create_task(self._watch(), name="caddy-supervisor")

    async def _watch(self) -> None:
        attempt = 0
        while not self._closing:
            process = self._process
            started = time.monotonic()
            code = await process.wait() if process is not None else None
            if self._closing:
                return
            attempt = 0 if time.monotonic() - started > _HEALTHY_RUN_S else attempt + 1
            delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S)) - 1] if attempt > 1 else 0.0
            _log.warning("caddy.exited", code=code, restart_in_s=delay)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception as exc:  # keep trying: the edge must come back
                _log.error("caddy.restart_failed", error=str(exc))
                if self._process is not None and self._process.returncode is None:
                    self._process.kill()
                continue
            self.restarts += 1
            _log.info("caddy.restarted", pid=self.pid, restarts=self.restarts)
            try:
                await self.on_ready()
            except Exception as exc:  # running but not configured: the periodic check re-loads
                _log.error("caddy.configure_failed", error=str(exc))

    async def stop(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        process = self._process
        self._process = None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
        except TimeoutError:
            # Caddy waits for open streams before it exits; the router is going away.
            process.kill()
            await process.wait()
        _log.info("caddy.stopped")
