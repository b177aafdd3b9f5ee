"""Caddy's access log, end to end: requests through the Caddy router become runtime
logs of their deployment in ClickHouse, as the project's observability pages list
them (``list_logs``), with the query string never stored.

The ClickHouse side runs in a child process: the embedded engine serves one data
folder per process, and this pytest process leaves that to the backend's own tests.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Deployment, DeploymentType, Project, Team
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter, CaddyRouterSettings

QUERY = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.core.observability import LogQuery
    from mastra_admin.observability.clickhouse import ClickHouseObservability, ClickHouseSettings

    async def main(files: str, data: str, project_id: str) -> None:
        backend = ClickHouseObservability(ClickHouseSettings(path=Path(data), database="edge"))
        await backend.init()
        try:
            worker = backend.ingestion_worker(LocalFileStorage(Path(files)))
            result = await worker.process_once()
            page = await backend.query.list_logs(LogQuery(project_id=project_id, limit=100))
            print(json.dumps({
                "ingested": result.events_ingested,
                "bad": result.bad_lines,
                "logs": [log.model_dump(mode="json") for log in page.items],
            }))
        finally:
            await backend.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    async def agents(request: web.Request) -> web.Response:
        return web.json_response({"agents": ["weather"]})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_get("/api/agents", agents)
    app.router.add_post("/api/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_requests_through_caddy_are_listed_as_their_deployments_logs(
    tmp_path: Path, upstream: int
) -> None:
    storage = InMemoryAdminStorage()
    await storage.init()
    team = await storage.teams.create(Team(name="Shop", slug="shop"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="Agents", slug="agents", source_type="local")
    )
    deployment = await storage.deployments.create(
        Deployment(
            project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
        )
    )
    files = tmp_path / "files"
    port = _free_port()
    router = CaddyEdgeRouter(
        CaddyRouterSettings(
            state_dir=tmp_path / "edge", http_port=port, health_interval_s=0, sync_interval_s=0
        ),
        storage.routes,
        file_storage=LocalFileStorage(files),
    )
    await router.start()
    started = time.time()
    try:
        await router.register_route(
            RouteConfig(
                deployment_id=deployment.id,
                project_id=project.id,
                subdomain="agents-main.shop",
                target_host="127.0.0.1",
                target_port=upstream,
            )
        )
        host = f"agents-main.shop.{router.base_domain}"
        async with aiohttp.ClientSession() as session:
            for method, path, status in (
                ("GET", "/api/agents?token=s3cret-value", 200),
                ("POST", "/api/broken", 500),
            ):
                async with session.request(
                    method, f"http://127.0.0.1:{port}{path}", headers={"Host": host}
                ) as response:
                    assert response.status == status
        await router.flush_access_logs()
    finally:
        await router.close()

    child = subprocess.run(
        [sys.executable, "-c", QUERY, str(files), str(tmp_path / "chdb"), project.id],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    found: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    assert found["bad"] == 0
    edge = [log for log in found["logs"] if log["source"] == "edge"]
    assert found["ingested"] == len(edge) == 2
    by_method = {log["attributes"]["method"]: log for log in edge}
    ok, failed = by_method["GET"], by_method["POST"]
    assert ok["message"].startswith("GET /api/agents 200 ")
    assert ok["level"] == "info"
    assert failed["message"].startswith("POST /api/broken 500 ")
    assert failed["level"] == "error"
    for log in edge:
        assert log["deployment_id"] == deployment.id
        # Caddy's own clock, read from the line: the request's time.
        at = datetime.fromisoformat(log["timestamp"]).timestamp()
        assert started - 1 <= at <= time.time() + 1
    assert ok["attributes"]["status"] == 200
    assert ok["attributes"]["path"] == "/api/agents"
    assert "s3cret" not in child.stdout
