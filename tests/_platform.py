"""The platform as a user runs it: ``mastra-admin serve`` as a child process.

``ServedPlatform`` starts the real command in a data dir of its own, with free ports
for the API, the collector's listener and the router and a port range of its own for
deployed servers, reads
the bootstrap token it prints at first start, and talks to it over HTTP. It can be
stopped (SIGTERM), killed (SIGKILL) and started again on the same data dir, as an
operator would. ``close()`` leaves nothing behind: the platform, the Mastra servers
it deployed (they outlive a killed platform on purpose), the embedded PostgreSQL it
started and the data dir.

Data dirs live outside pytest's temporary folders: as root the embedded PostgreSQL
runs as an unprivileged user who must be able to traverse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx
import psutil

from mastra_admin.core.models import Build, BuildStatus
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import leftover_processes

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin

T = TypeVar("T")


async def eventually(
    what: str, check: Callable[[], Awaitable[T | None]], within: float = 60.0
) -> T:
    """``check()``'s first truthy value, asked every 0.1 s for ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_build(admin: MastraAdmin, user_id: str, build: Build) -> Build:
    """The build once final; it must have succeeded (else its log is the message)."""

    async def final() -> Build | None:
        current = await admin.get_build(user_id, build.id)
        return current if current.status.is_terminal else None

    done = await eventually(f"build {build.id}", final, within=180)
    assert done.status is BuildStatus.SUCCEEDED, await admin.get_build_log(user_id, build.id)
    return done


__all__ = [
    "FINAL_BUILD_STATES",
    "Background",
    "ServedPlatform",
    "Traffic",
    "chdb_query",
    "free_port",
    "new_root",
    "remove_root",
    "stop_embedded_postgres",
    "wait_for",
    "write_projects",
]

CLI = [sys.executable, "-m", "mastra_admin.server"]
FINAL_BUILD_STATES = frozenset({"succeeded", "failed", "cancelled"})
ALIASES = ("DATABASE_URL", "CLICKHOUSE_URL", "PROJECTS_DIR", "FILE_STORAGE_PATH")
ALIASES_TOO = ("ADMIN_PORT", "PROXY_PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_root(prefix: str = "mastra-admin-e2e-") -> Path:
    """A folder for one platform's data (outside pytest's temp dirs, see the module doc)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def remove_root(root: Path) -> None:
    for left in leftover_processes(root):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(left.split()[0]), signal.SIGKILL)
    stop_embedded_postgres(root)
    shutil.rmtree(root, ignore_errors=True)


def stop_embedded_postgres(root: Path) -> None:
    """Stop every embedded PostgreSQL whose data dir is under ``root`` (a platform
    killed with SIGKILL leaves its server running; the next start re-attaches)."""
    for pid_file in root.rglob("postmaster.pid"):
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            process = psutil.Process(pid)
        except (OSError, ValueError, IndexError, psutil.Error):
            continue
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGINT)  # fast shutdown
            process.wait(timeout=30)


def wait_for(
    what: str, check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.2
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def write_projects(folder: Path, names: dict[str, str] | None = None) -> Path:
    """Fixture Mastra projects (folder name -> variant) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, variant in (names or {"weather-agent": "ok"}).items():
        write_mastra_project(
            folder / name,
            name=name,
            variant=variant,  # type: ignore[arg-type]
            flush_interval_ms=200,
        )
    return folder


def chdb_query(clickhouse_path: Path, sql: str) -> list[list[str]]:
    """Run ``sql`` on an embedded ClickHouse data dir in a process of its own (the
    engine admits one process per data dir, so the platform must be stopped)."""
    code = (
        "import sys\n"
        "from chdb import session\n"
        "s = session.Session(sys.argv[1])\n"
        "sys.stdout.write(s.query(sys.argv[2], 'TabSeparated').bytes().decode())\n"
        "s.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(clickhouse_path), sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [line.split("\t") for line in result.stdout.splitlines() if line]


class ServedPlatform:
    """``mastra-admin serve`` in ``root/data``, projects from ``projects_dir``."""

    def __init__(
        self,
        root: Path,
        projects_dir: Path,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.projects_dir = projects_dir
        self.port = free_port()
        self.collector_port = free_port()
        self.router_port = free_port()
        first = random.randrange(21000, 29000, 100)
        self.extra_env = {
            "MASTRA_ADMIN_RUNNER__PORT_RANGE_START": str(first),
            "MASTRA_ADMIN_RUNNER__PORT_RANGE_END": str(first + 99),
            **(env or {}),
        }
        self.args = list(args or [])
        self.token: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._starts = 0

    # --- the process -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def collector_url(self) -> str:
        """The collector's own listener, which deployed servers are given."""
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def clickhouse_path(self) -> Path:
        return self.data_dir / "clickhouse"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MASTRA_ADMIN_") or k.startswith("MASTRA_ADMIN_TEST_")
        }
        for alias in (*ALIASES, *ALIASES_TOO, "MASTRA_ADMIN_CONFIG"):
            env.pop(alias, None)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "MASTRA_ADMIN_DATA_DIR": str(self.data_dir),
                "PROJECTS_DIR": str(self.projects_dir),
                "MASTRA_ADMIN_PORT": str(self.port),
                "MASTRA_ADMIN_COLLECTOR_PORT": str(self.collector_port),
                "MASTRA_ADMIN_ROUTER__PORT": str(self.router_port),
                "MASTRA_ADMIN_BUILDS__HEALTH_INTERVAL_S": "1",
                "MASTRA_ADMIN_BUILDS__POLL_INTERVAL_S": "0.2",
                "MASTRA_ADMIN_BUILDS__LEASE_S": "4",
                "MASTRA_ADMIN_OBSERVABILITY__POLL_INTERVAL_S": "0.2",
                **self.extra_env,
            }
        )
        return env

    def start(self, timeout: float = 180.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self._starts += 1
        self._ready.clear()
        self.output.append(f"--- start {self._starts} ---\n")
        self.process = subprocess.Popen(
            [*CLI, "serve", *self.args],
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._reader.join(timeout=5)
                raise AssertionError(f"mastra-admin serve did not start:\n{self.log_tail()}")
        if self.token is None:
            found = re.search(r"^\s+(mat_\S+)\s*$", "".join(self.output), re.M)
            assert found, f"no bootstrap token printed:\n{self.log_tail()}"
            self.token = found.group(1)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if "Press Ctrl+C to stop." in line:
                self._ready.set()

    def log_tail(self, lines: int = 80) -> str:
        return "".join(self.output[-lines:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as an operator's Ctrl+C; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        remove_root(self.root)

    # --- HTTP ------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, *, expect: int | None = None, **kw: Any) -> Any:
        """Call the API; fail with the response body unless the status is ``expect``
        (default: any 2xx). Returns the decoded JSON (``None`` for no content)."""
        response = httpx.request(
            method, f"{self.url}{path}", headers=self.headers, timeout=30, **kw
        )
        ok = response.status_code == expect if expect else response.is_success
        assert ok, f"{method} {path} -> {response.status_code} {response.text[:2000]}"
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, **kw)

    def routed(self, host: str, path: str = "/", method: str = "GET", **kw: Any) -> httpx.Response:
        """A request through the router, as a browser sends it to ``host``."""
        return httpx.request(
            method, f"{self.router_url}{path}", headers={"Host": host}, timeout=10, **kw
        )

    def wait_build(self, build_id: str, timeout: float = 180.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            build: dict[str, Any] = self.get(f"/api/builds/{build_id}")
            return build if build["status"] in FINAL_BUILD_STATES else None

        result: dict[str, Any] = wait_for(f"build {build_id}", final, timeout=timeout)
        return result

    def deploy(self, deployment_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Queue a build and wait until it is final; fails unless it succeeded."""
        build = self.post(f"/api/deployments/{deployment_id}/deploy", expect=202)
        done = self.wait_build(build["id"], timeout)
        assert done["status"] == "succeeded", (done, self.build_log(done["id"]))
        return done

    def build_log(self, build_id: str) -> str:
        """The build's log so far ("" before its first line)."""
        text: str | None = self.get(f"/api/builds/{build_id}/logs")
        return text or ""

    def ingestion(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get("/api/observability/ingestion")
        return status


@contextlib.contextmanager
def served(projects: dict[str, str] | None = None, **kwargs: Any) -> Iterator[ServedPlatform]:
    """A started platform serving fresh fixture projects; closed afterwards."""
    root = new_root()
    platform = ServedPlatform(root, write_projects(root / "projects", projects), **kwargs)
    try:
        platform.start()
        yield platform
    finally:
        platform.close()


@dataclass
class Background:
    """Runs ``run()`` on a thread for the length of a ``with`` block; ``run()`` loops
    until ``stopped`` (traffic or probes beside what a test does)."""

    _stop: threading.Event = field(default_factory=threading.Event, kw_only=True)
    _thread: threading.Thread | None = field(default=None, kw_only=True)
    join_timeout_s: float = field(default=30.0, kw_only=True)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout_s)


@dataclass
class Traffic(Background):
    """A client calling the server through the router without pause."""

    platform: ServedPlatform
    host: str
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(base_url=self.platform.router_url, timeout=10) as client:
            while not self.stopped:
                try:
                    response = client.get("/api/agents", headers={"Host": self.host})
                    self.statuses.append(response.status_code)
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
