"""The collector's own listener: what deployed servers are given, so that a server in a
network sandbox reaches the collector and nothing else of the API."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.models import Deployment
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.server.app import create_app, create_collector_app
from mastra_admin.server.runtime import Platform, run_platform
from mastra_admin.server.settings import ServerSettings

from .conftest import World, exporter_body, free_port

# Routes the API answers (with a platform administrator's token), none of them the
# collector's: the collector listener must answer each with 404.
API_ROUTES = [
    ("GET", "/api/me"),
    ("GET", "/api/teams"),
    ("POST", "/api/teams"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("GET", "/api/auth/config"),
    ("GET", "/api/openapi.json"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/"),
]


def _publish_path(admin: MastraAdmin, deployment: Deployment, signal: str = "spans") -> str:
    """The path of the URL the deployed server was given, for ``signal``."""
    path = urlsplit(admin.collector_url(deployment.id)).path
    return path.removesuffix("spans/publish") + f"{signal}/publish"


def _auth(admin: MastraAdmin, deployment: Deployment) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin.collector_token(deployment.id)}"}


async def test_the_collector_listener_accepts_a_real_batch(
    admin: MastraAdmin, deployment: Deployment, collector_client: httpx.AsyncClient
) -> None:
    body = exporter_body("spans")

    response = await collector_client.post(
        _publish_path(admin, deployment), json=body, headers=_auth(admin, deployment)
    )

    assert response.status_code == 200, response.text
    sent = body["spans"]
    assert isinstance(sent, list)
    assert response.json() == {"accepted": len(sent)}
    assert response.headers["x-request-id"]
    assert admin.file_storage is not None
    [stored] = await admin.file_storage.list("spans")
    assert stored.path.startswith(f"spans/{deployment.project_id}/")


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
async def test_the_collector_listener_answers_nothing_else_of_the_api(
    method: str, path: str, admin: MastraAdmin, world: World, collector_client: httpx.AsyncClient
) -> None:
    body = {"name": "Probe", "email": "probe@example.com"} if method == "POST" else None
    api = create_app(admin, settings=ServerSettings(ui=True))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://admin.test"
    ) as api_client:
        served = await api_client.request(method, path, json=body, headers=world.platform.headers)
    assert served.status_code != 404, "the API itself must serve this route"

    refused = await collector_client.request(
        method, path, json=body, headers=world.platform.headers
    )

    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["code"] == "not_found"


async def test_health_answers_on_the_collector_listener(
    collector_client: httpx.AsyncClient,
) -> None:
    response = await collector_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_the_collector_listener_keeps_the_apis_limits_and_errors(
    admin: MastraAdmin, deployment: Deployment, collector_client: httpx.AsyncClient
) -> None:
    path = _publish_path(admin, deployment, "logs")
    big = {"logs": [{"message": "x" * 1000, "level": "info"} for _ in range(100)]}

    too_big = await collector_client.post(path, json=big, headers=_auth(admin, deployment))
    no_token = await collector_client.post(path, json={"logs": [{"message": "hi"}]})

    assert too_big.status_code == 413
    assert too_big.json()["error"]["details"]["limit"] == 64 * 1024
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "unauthenticated"


async def test_what_arrives_on_the_listener_counts_in_the_apis_metrics(
    admin: MastraAdmin, deployment: Deployment, world: World, server_settings: ServerSettings
) -> None:
    api = create_app(admin, settings=server_settings)
    collector = create_collector_app(admin, settings=server_settings, metrics=api.state.metrics)
    body = exporter_body("logs")
    sent = body["logs"]
    assert isinstance(sent, list)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=collector), base_url="http://collector.test"
    ) as http:
        posted = await http.post(
            _publish_path(admin, deployment, "logs"), json=body, headers=_auth(admin, deployment)
        )
    assert posted.status_code == 200, posted.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://admin.test"
    ) as http:
        metrics = (await http.get("/metrics")).text

    assert f'mastra_admin_collector_events_total{{signal="logs"}} {float(len(sent))}' in metrics


# --- run_platform: the listener beside the API ----------------------------------------


@dataclass
class Running:
    settings: MastraAdminSettings
    platform: Platform
    task: asyncio.Task[None]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.collector_port}"


def _platform_settings(root: Path, database_url: str, **overrides: object) -> MastraAdminSettings:
    """The platform with PostgreSQL and local files, and no source, runner, router or
    observability: enough to serve the API and the collector."""
    values: dict[str, object] = {
        "data_dir": root,
        "host": "127.0.0.1",
        "port": free_port(),
        "collector_port": free_port(),
        "storage": {"provider": "pg", "url": database_url},
        "file_storage": {"provider": "local", "path": str(root / "files")},
        **{kind: {"provider": "none"} for kind in ("source", "runner", "router", "observability")},
        **overrides,
    }
    return MastraAdminSettings.model_validate(values)


def _server_settings() -> ServerSettings:
    return ServerSettings(ui=False, ingestion=False)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def _running(settings: MastraAdminSettings) -> AsyncIterator[Running]:
    """``run_platform`` in a task until it is ready; cancelled (as on SIGTERM) after."""
    ready: asyncio.Future[Platform] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_platform(settings, _server_settings(), on_ready=ready.set_result)
    )
    either: set[asyncio.Future[Any]] = {task, ready}
    await asyncio.wait(either, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    try:
        if task.done():
            task.result()
        assert ready.done(), "run_platform was not ready within 60 s"
        yield Running(settings, ready.result(), task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def running(pg_database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    async with _running(_platform_settings(tmp_path / "data", pg_database_url)) as started:
        yield started


async def test_run_platform_serves_the_collector_on_its_own_port(running: Running) -> None:
    token = running.platform.bootstrap_token
    assert token is not None
    headers = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(timeout=10) as http:
        api_me = await http.get(f"{running.api_url}/api/me", headers=headers)
        api_collector = await http.post(f"{running.api_url}/api/collector/d/spans/publish")
        health = await http.get(f"{running.collector_url}/health")
        collector_me = await http.get(f"{running.collector_url}/api/me", headers=headers)
        publish = await http.post(f"{running.collector_url}/api/collector/d/spans/publish")

    assert api_me.status_code == 200
    assert api_collector.status_code == 401, "the collector stays on the API port too"
    assert health.status_code == 200
    assert collector_me.status_code == 404
    assert collector_me.json()["error"]["code"] == "not_found"
    assert publish.status_code == 401
    assert publish.json()["error"]["code"] == "unauthenticated"


async def test_run_platform_stops_both_listeners(running: Running) -> None:
    ports = (running.settings.port, running.settings.collector_port)
    assert all(_listening(port) for port in ports if port is not None)

    running.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running.task

    assert not any(_listening(port) for port in ports if port is not None)


async def test_run_platform_announces_the_collector_listener(
    pg_database_url: str, tmp_path: Path
) -> None:
    settings = _platform_settings(tmp_path / "data", pg_database_url)
    with capture_logs() as logs:
        async with _running(settings):
            pass

    [event] = [log for log in logs if log["event"] == "platform.collector_ready"]
    assert event["url"] == f"http://127.0.0.1:{settings.collector_port}"


async def test_a_taken_collector_port_ends_run_platform_naming_the_setting(
    pg_database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = _platform_settings(tmp_path / "data", pg_database_url, collector_port=port)

        with pytest.raises(SystemExit) as exited:
            await run_platform(settings, _server_settings())

    message = str(exited.value.code)
    assert "collector_port" in message
    assert f"127.0.0.1:{port}" in message
    assert "address already in use" in message
    assert not _listening(settings.port), "the API listener is stopped again"


async def test_forwarded_headers_from_a_loopback_peer_are_not_trusted(running: Running) -> None:
    """A deployed server on this machine is a loopback peer: rotating X-Forwarded-For
    neither escapes the failed-attempt limit nor moves it onto another address."""
    limit = _server_settings().auth_failure_limit
    bad = {"Authorization": "Bearer mat_" + "x" * 43}
    async with httpx.AsyncClient(timeout=10) as http:
        statuses = [
            (
                await http.get(
                    f"{running.api_url}/api/me",
                    headers={**bad, "X-Forwarded-For": f"203.0.113.{n}"},
                )
            ).status_code
            for n in range(limit + 1)
        ]
        token = running.platform.bootstrap_token
        valid = await http.get(
            f"{running.api_url}/api/me", headers={"Authorization": f"Bearer {token}"}
        )
    assert statuses[:limit] == [401] * limit
    assert statuses[limit] == 429, "the header did not make each attempt a new client"
    assert valid.status_code == 200
