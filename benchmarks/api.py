"""The HTTP API against a bare Starlette route, in one run.

A team with 100 projects on the embedded PostgreSQL (durable defaults); wrk at 32
connections on ``GET /api/teams/{id}/projects?limit=100`` of the real app (the
default settings: request ids, latency metrics, the bearer token checked on every
request) and on a bare Starlette route that returns the very same JSON bytes from
memory. Each runs in one uvicorn process with the same settings. Needs ``wrk``
on PATH (``apt-get install wrk``).

Run alone: ``python -m benchmarks api`` (``API_BENCH_SECONDS`` sets wrk's duration).

The real app answers from its response cache once a page was read (kept exact by
PostgreSQL change notifications, see ``mastra_admin.stores.pg._changes``): the
steady state of a dashboard polling a list. The same run also measures the app with
the read cache off (``read_cache = false``), where every request authenticates against
PostgreSQL, resolves the caller's permissions and reads and serialises the page.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks._report import Figure

BENCH = "api"
PROJECTS = 100
CONNECTIONS = 32
DURATION_S = int(os.environ.get("API_BENCH_SECONDS", "10"))

# The real app over the seeded database, as ``mastra-admin serve`` would build it for
# these routes (storage, encryption, file storage), without the build workers.
REAL_APP = textwrap.dedent(
    """
    import asyncio, sys, uvicorn
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.encryption import AesGcmEncryption
    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.server.app import create_app
    from mastra_admin.server.runtime import run
    from mastra_admin.server.settings import ServerSettings
    from mastra_admin.stores.pg import PgAdminStorage, PgSettings

    url, data, port, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    storage_settings = PgSettings.model_validate({"url": url, "read_cache": cache})
    admin = MastraAdmin(
        storage=PgAdminStorage(settings=storage_settings),
        file_storage=LocalFileStorage(data + "/files"),
        encryption=AesGcmEncryption.from_key_file(data + "/keys.json"),
        settings=MastraAdminSettings(data_dir=data),
        collector_secret=b"b" * 32,
    )

    async def main():
        await admin.init()
        app = create_app(admin, settings=ServerSettings(ui=False, ingestion=False))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, lifespan="off")
        try:
            await uvicorn.Server(config).serve()
        finally:
            await admin.close()

    run(main())  # the event loop `mastra-admin serve` runs on (uvloop, as the bare app's)
    """
)

BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    body = open(sys.argv[1], "rb").read()

    async def projects(request):
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/api/teams/{team_id}/projects", projects)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                access_log=False)
    """
)


@dataclass
class WrkResult:
    rps: float
    p99_ms: float
    errors: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, token: str, seconds: int) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for match in re.finditer(r"(?:Non-2xx or 3xx responses|Socket errors):(.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", match.group(1)))
    return WrkResult(rps=rps, p99_ms=p99, errors=errors)


def _wait_answers(url: str, token: str, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
            if response.status_code == 200:
                return response.content
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def _serving(code: str, *args: str) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _seed(url: str) -> tuple[str, str]:
    """A platform admin's token and a team with ``PROJECTS`` projects."""
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.inputs import CreateTeam
    from mastra_admin.core.models import Project
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.stores.pg import PgAdminStorage

    storage = PgAdminStorage(url)
    admin = MastraAdmin(storage=storage, settings=MastraAdminSettings(), collector_secret=b"b" * 32)
    await admin.init()
    try:
        user, token = await admin.bootstrap_admin("bench@example.com")
        team = await admin.create_team(user.id, CreateTeam(name="Search"))
        for n in range(PROJECTS):
            await storage.projects.create(
                Project(
                    team_id=team.id,
                    name=f"Agent {n:03d}",
                    slug=f"agent-{n:03d}",
                    source_type="local",
                    source_config={"source_id": f"src{n:03d}", "path": f"/srv/agents/{n:03d}"},
                )
            )
        return token, team.id
    finally:
        await admin.close()


def run() -> list[Figure]:
    from mastra_admin.stores.pg import EmbeddedPostgres

    if shutil.which("wrk") is None:
        raise RuntimeError("the api benchmark needs wrk on PATH (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="mastra-admin-bench-api-"))
    root.chmod(0o755)
    postgres = EmbeddedPostgres(root / "postgres", database="bench")
    try:
        url = postgres.start()
        token, team_id = asyncio.run(_seed(url))
        path = f"/api/teams/{team_id}/projects?limit={PROJECTS}"

        real_port = _free_port()
        with _serving(REAL_APP, url, str(root), str(real_port), "1"):
            real_url = f"http://127.0.0.1:{real_port}{path}"
            body = _wait_answers(real_url, token)
            page = json.loads(body)
            assert page["total"] == PROJECTS, page["total"]
            assert len(page["items"]) == PROJECTS
            wrk(real_url, token, 2)  # warm-up: pool, caches
            real = wrk(real_url, token, DURATION_S)

        uncached_port = _free_port()
        with _serving(REAL_APP, url, str(root), str(uncached_port), "0"):
            uncached_url = f"http://127.0.0.1:{uncached_port}{path}"
            assert _wait_answers(uncached_url, token) == body
            wrk(uncached_url, token, 2)
            uncached = wrk(uncached_url, token, DURATION_S)

        (root / "body.json").write_bytes(body)
        bare_port = _free_port()
        with _serving(BARE_APP, str(root / "body.json"), str(bare_port)):
            bare_url = f"http://127.0.0.1:{bare_port}{path}"
            assert _wait_answers(bare_url, token) == body
            wrk(bare_url, token, 2)
            bare = wrk(bare_url, token, DURATION_S)
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)

    size_kb = len(body) / 1024
    return [
        Figure(
            BENCH,
            f"list 100 projects rps ({CONNECTIONS} conns, {size_kb:.0f} KiB)",
            real.rps,
            "rps",
            reference=bare.rps,
            reference_label="bare Starlette, same JSON from memory",
            goal=">= 0.4x bare",
            met=real.rps >= 0.4 * bare.rps and real.errors == 0,
        ),
        Figure(
            BENCH,
            "list 100 projects p99",
            real.p99_ms,
            "ms",
            reference=bare.p99_ms,
            reference_label="bare Starlette",
            goal="<= 20 ms",
            met=real.p99_ms <= 20.0,
        ),
        Figure(
            BENCH,
            "list 100 projects, read cache off",
            uncached.rps,
            "rps",
            reference=real.rps,
            reference_label="read cache on",
        ),
        Figure(BENCH, "list 100 projects p99, read cache off", uncached.p99_ms, "ms"),
        Figure(
            BENCH,
            "errors (non-2xx, socket)",
            float(real.errors + bare.errors + uncached.errors),
            "count",
        ),
    ]


if __name__ == "__main__":
    from benchmarks._report import markdown

    print(markdown(run()))
