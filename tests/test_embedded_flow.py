"""The same flow from Python code that embeds ``MastraAdmin``, with no HTTP server.

The composition root builds the platform from settings given in code (PostgreSQL,
chDB in the data dir, the local source, runner and router); the code drives it the
way the README shows. Without the HTTP server there is no collector: the deployed
server's spans and logs reach ClickHouse through the files it writes into its
build folder (the specification's file contract), which the ingestion worker tails.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.compose import build_admin
from mastra_admin.core.errors import NotFound
from mastra_admin.core.inputs import (
    CreateDeployment,
    CreateProject,
    CreateTeam,
    RollbackRequest,
    SetEnvVar,
    UpdateDeployment,
)
from mastra_admin.core.models import DeploymentStatus, DeploymentType
from mastra_admin.core.observability import IngestionWorker, LogQuery, TraceQuery
from mastra_admin.core.settings import load_settings
from mastra_admin.core.testing.runner import leftover_processes

from ._platform import eventually, free_port, new_root, remove_root, wait_build, write_projects

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass
class Embedded:
    admin: MastraAdmin
    ingestion: IngestionWorker
    router_port: int
    root: Path

    async def routed(self, host: str, path: str = "/", **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            method = "POST" if "json" in kw else "GET"
            return await client.request(
                method, f"http://127.0.0.1:{self.router_port}{path}", headers={"Host": host}, **kw
            )


@pytest.fixture
async def embedded(pg_database_url: str) -> AsyncIterator[Embedded]:
    root = new_root()
    router_port = free_port()
    first = random.randrange(21000, 29000, 100)
    settings = load_settings(
        data_dir=root / "data",
        port=free_port(),
        storage={"provider": "pg", "url": pg_database_url},
        source={"provider": "local", "base_paths": [str(write_projects(root / "projects"))]},
        router={"provider": "local", "port": router_port},
        runner={"provider": "local", "port_range_start": first, "port_range_end": first + 99},
        observability={"provider": "clickhouse", "poll_interval_s": 0.2},
        builds={"health_interval_s": 1, "poll_interval_s": 0.2},
        collector=False,  # no HTTP server runs here, so no collector either
    )
    admin = await build_admin(settings)
    await admin.init()
    assert admin.observability is not None
    assert admin.file_storage is not None
    ingestion = admin.observability.ingestion_worker(
        admin.file_storage, build_dirs=[str(root / "data" / "builds")]
    )
    await ingestion.start()
    assert admin.orchestrator is not None
    await admin.orchestrator.start()
    try:
        yield Embedded(admin, ingestion, router_port, root)
    finally:
        await ingestion.stop(drain=False)
        await admin.close()
        remove_root(root)


@dataclass
class Traffic:
    embedded: Embedded
    host: str
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        url = f"http://127.0.0.1:{self.embedded.router_port}/api/agents"
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    response = await client.get(url, headers={"Host": self.host})
                    self.statuses.append(response.status_code)
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")


async def test_the_flow_from_python_code(embedded: Embedded) -> None:
    admin = embedded.admin
    user, _token = await admin.bootstrap_admin("ops@example.com")
    uid = user.id

    team = await admin.create_team(uid, CreateTeam(name="Search"))
    [source] = await admin.list_source_projects(uid, team.id)
    assert source.name == "weather-agent"
    project = await admin.create_project(
        uid, team.id, CreateProject(name="Weather", source_id=source.id)
    )
    await admin.set_env_var(uid, project.id, SetEnvVar(key="WEATHER_API_KEY", value="wk-1"))
    production = await admin.create_deployment(
        uid, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    preview = await admin.create_deployment(
        uid, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="rain", ttl_hours=1)
    )

    first = await wait_build(admin, uid, await admin.deploy(uid, production.id))
    await wait_build(admin, uid, await admin.deploy(uid, preview.id))
    production = await admin.get_deployment(uid, production.id)
    assert production.status is DeploymentStatus.RUNNING
    host = "weather-main.search.localhost"
    assert production.public_url == f"http://{host}:{embedded.router_port}"
    assert (await embedded.routed(host)).status_code == 200
    assert (await embedded.routed("weather-rain.search.localhost")).status_code == 200

    # Traces and logs of an agent call, from the files the server writes.
    reply = await embedded.routed(
        host, "/api/agents/weather/generate", json={"messages": "sun tomorrow?"}
    )
    assert reply.status_code == 200
    trace_id = reply.json()["traceId"]

    async def observed() -> bool:
        traces = await admin.list_traces(uid, TraceQuery(project_id=project.id, trace_id=trace_id))
        logs = await admin.list_logs(uid, LogQuery(project_id=project.id, trace_id=trace_id))
        return bool(traces.items and logs.items)

    await eventually("the call's trace and log", observed, within=5)
    tree = await admin.get_trace(uid, project.id, trace_id)
    assert len(tree.spans) == 2

    # Redeploy under continuous traffic.
    traffic = Traffic(embedded, host)
    task = asyncio.create_task(traffic.run())
    try:
        await asyncio.sleep(0.3)
        second = await wait_build(admin, uid, await admin.deploy(uid, production.id))
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert traffic.errors == [], traffic.errors[:5]
    assert len(traffic.statuses) >= 20

    # Roll back to the first build, unbuilt.
    rolled = await wait_build(
        admin, uid, await admin.rollback(uid, production.id, RollbackRequest(build_id=first.id))
    )
    assert rolled.artifact_build_id == first.id
    log = await admin.get_build_log(uid, rolled.id)
    assert "npm ci" not in log
    assert "mastra build" not in log
    assert (await admin.get_deployment(uid, production.id)).current_build_id == rolled.id
    assert second.id != rolled.id

    # Stop production; let the preview expire (the supervisor deletes it).
    stopped = await admin.stop(uid, production.id)
    assert stopped.status is DeploymentStatus.STOPPED
    assert (await embedded.routed(host)).status_code == 503
    await admin.update_deployment(
        uid, preview.id, UpdateDeployment(expires_at=datetime.now(UTC) + timedelta(seconds=2))
    )

    async def expired() -> bool:
        try:
            await admin.get_deployment(uid, preview.id)
        except NotFound:
            return True
        return False

    await eventually("the preview to expire", expired, within=30)
    assert (await embedded.routed("weather-rain.search.localhost")).status_code == 404

    async def nothing_running() -> bool:
        return not leftover_processes(embedded.root / "data" / "builds")

    await eventually("every server to be stopped", nothing_running, within=30)
