"""Crash recovery with real servers: the local runner, the local router, PostgreSQL and
ClickHouse, and a project whose server misbehaves when its environment says so.

A server that exits after some requests is restarted and routed again; one that then
cannot start (its new environment makes it throw) goes into a crash loop that says
why; one that stops answering its health check is replaced. Every crash, restart and
the crash loop are listed in the deployment's logs (source ``platform``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.compose import build_admin
from mastra_admin.core.events import Log
from mastra_admin.core.inputs import CreateDeployment, CreateProject, CreateTeam, SetEnvVar
from mastra_admin.core.models import DeploymentStatus, DeploymentType
from mastra_admin.core.observability import IngestionWorker, LogQuery
from mastra_admin.core.settings import load_settings

from ._platform import eventually, free_port, new_root, remove_root, wait_build, write_projects

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@dataclass
class Platform:
    admin: MastraAdmin
    ingestion: IngestionWorker
    router_port: int

    async def get(self, host: str, path: str = "/api/agents") -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                response = await client.get(
                    f"http://127.0.0.1:{self.router_port}{path}", headers={"Host": host}
                )
            except httpx.HTTPError:
                return 0
            return response.status_code


@pytest.fixture
async def platform(pg_database_url: str) -> AsyncIterator[Platform]:
    root = new_root()
    router_port = free_port()
    first = random.randrange(21000, 29000, 100)
    settings = load_settings(
        data_dir=root / "data",
        port=free_port(),
        storage={"provider": "pg", "url": pg_database_url},
        source={
            "provider": "local",
            "base_paths": [str(write_projects(root / "projects", {"cue": "misbehaves_on_cue"}))],
        },
        router={"provider": "local", "port": router_port},
        runner={
            "provider": "local",
            "port_range_start": first,
            "port_range_end": first + 99,
            "health_probe_timeout_s": 0.5,
        },
        observability={"provider": "clickhouse", "poll_interval_s": 0.2},
        builds={"health_interval_s": 0.5, "poll_interval_s": 0.2},
        recovery={"backoff_initial_s": 0.2, "crash_loop_restarts": 3, "unhealthy_checks": 2},
        collector=False,
    )
    admin = await build_admin(settings)
    await admin.init()
    assert admin.observability is not None
    assert admin.file_storage is not None
    ingestion = admin.observability.ingestion_worker(admin.file_storage, build_dirs=[])
    await ingestion.start()
    assert admin.orchestrator is not None
    await admin.orchestrator.start()
    try:
        yield Platform(admin, ingestion, router_port)
    finally:
        await ingestion.stop(drain=False)
        await admin.close()
        remove_root(root)


async def test_crashes_restarts_and_a_crash_loop(platform: Platform) -> None:
    admin = platform.admin
    user, _ = await admin.bootstrap_admin("ops@example.com")
    uid = user.id
    team = await admin.create_team(uid, CreateTeam(name="Search"))
    [source] = await admin.list_source_projects(uid, team.id)
    project = await admin.create_project(
        uid, team.id, CreateProject(name="Cue", source_id=source.id)
    )
    await admin.set_env_var(
        uid, project.id, SetEnvVar(key="CRASH_AFTER_REQUESTS", value="2", is_secret=False)
    )
    production = await admin.create_deployment(
        uid, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    await wait_build(admin, uid, await admin.deploy(uid, production.id))
    host = "cue-main.search.localhost"
    (first,) = await admin.context.storage.servers.list_active(production.id)

    # Two requests answered; then the server exits with code 7 and comes back.
    assert [await platform.get(host), await platform.get(host)] == [200, 200]

    async def serving_again() -> bool:
        active = await admin.context.storage.servers.list_active(production.id)
        # /health: agent requests count towards the crash.
        return bool(active) and active[0].id != first.id and await _ok(platform, host)

    crashed_at = time.monotonic()
    await eventually("the restarted server", serving_again, within=30)
    assert time.monotonic() - crashed_at < 15
    assert (await admin.get_deployment(uid, production.id)).status is DeploymentStatus.RUNNING

    async def platform_logs(text: str) -> list[Log] | None:
        page = await admin.list_logs(uid, LogQuery(project_id=project.id, text=text, limit=100))
        found = [log for log in page.items if log.source == "platform"]
        return found or None

    crashed = await eventually("the crash's log", lambda: platform_logs("server crashed"))
    crash = crashed[0].attributes["crashes"][0]
    assert crash["exit_code"] == 7
    assert any("as CRASH_AFTER_REQUESTS says" in line for line in crash["last_lines"])
    assert crashed[0].level == "error"
    await eventually("the recovery's log", lambda: platform_logs("restarted and healthy"))

    # The next start cannot succeed: each restart fails, until it is a crash loop.
    await admin.set_env_var(
        uid, project.id, SetEnvVar(key="CRASH_AT_START", value="1", is_secret=False)
    )
    assert [await platform.get(host), await platform.get(host)] == [200, 200]

    async def crash_loop() -> bool:
        deployment = await admin.get_deployment(uid, production.id)
        return deployment.status is DeploymentStatus.CRASH_LOOP

    await eventually("the crash loop", crash_loop, within=60)
    assert not await admin.context.storage.servers.list_active(production.id)
    loop = await eventually("the crash loop's log", lambda: platform_logs("a crash loop"))
    crashes: list[dict[str, Any]] = loop[0].attributes["crashes"]
    assert len(crashes) == 3
    assert crashes[-1]["reason"].startswith("the restart failed")
    assert any("CRASH_AT_START is set" in line for line in crashes[-1]["last_lines"])
    await asyncio.sleep(1)
    assert (await admin.get_deployment(uid, production.id)).status is DeploymentStatus.CRASH_LOOP

    # A server that stops answering its health check is replaced.
    await admin.delete_env_var(uid, project.id, "CRASH_AT_START")
    await admin.delete_env_var(uid, project.id, "CRASH_AFTER_REQUESTS")
    await admin.set_env_var(
        uid, project.id, SetEnvVar(key="HANG_HEALTH_AFTER_REQUESTS", value="1", is_secret=False)
    )
    await wait_build(admin, uid, await admin.deploy(uid, production.id))
    assert (await admin.get_deployment(uid, production.id)).status is DeploymentStatus.RUNNING
    (hanging,) = await admin.context.storage.servers.list_active(production.id)
    assert await platform.get(host) == 200  # from here on, /health is never answered

    async def replaced() -> bool:
        active = await admin.context.storage.servers.list_active(production.id)
        return bool(active) and active[0].id != hanging.id

    await eventually("the unhealthy server replaced", replaced, within=30)
    unhealthy = await eventually(
        "the health crash's log", lambda: platform_logs("health checks in a row")
    )
    assert unhealthy
    assert await eventually("served again", lambda: _ok(platform, host), within=15)


async def _ok(platform: Platform, host: str) -> bool:
    return await platform.get(host, "/health") == 200
