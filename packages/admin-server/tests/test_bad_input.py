"""Bad input is a 4xx with a code and a message: each test is an attack tried on the API.

Oversized bodies are refused before they are read, deep nesting never reaches a
recursion, unknown settings and values a process cannot hold are refused on write,
and what an older version stored keeps reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import CreateProject
from mastra_admin.core.models import Deployment, ProjectSettings
from mastra_admin.core.storage import ProjectUpdate
from mastra_admin.server.app import create_app
from mastra_admin.server.routes.collector import MAX_RECORD_DEPTH
from mastra_admin.server.routing import MAX_JSON_DEPTH
from mastra_admin.server.settings import ServerSettings

from .conftest import World


async def _project(admin: MastraAdmin, world: World) -> str:
    project = await admin.create_project(
        world.owner.user.id, world.team_id, CreateProject(name="Weather", source_id="weather-agent")
    )
    return project.id


def _nested(depth: int) -> bytes:
    return b'{"name": "x", "settings": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    limit = ServerSettings().max_body_bytes
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "x", "settings": {"install_command": ["'
        for _ in range(64):  # 64 MiB if it were all read
            sent += 1
            yield b"a" * (1 << 20)
        yield b'"]}}'

    response = await client.patch(
        f"/api/projects/{project_id}",
        content=chunks(),
        headers={**world.owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"]["limit"] == limit
    assert sent <= limit // (1 << 20) + 2  # stopped reading at the limit

    declared = await client.post(
        "/api/teams",
        content=b"{}",
        headers={**world.owner.headers, "Content-Length": str(limit + 1)},
    )
    assert declared.status_code == 413
    assert (await admin.get_project(world.owner.user.id, project_id)).name == "Weather"


async def test_the_limit_is_a_setting(admin: MastraAdmin, world: World) -> None:
    app: Starlette = create_app(admin, settings=ServerSettings(ui=False, max_body_bytes=2048))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin.test"
    ) as http:
        big = {"name": "T", "settings": {"preview_ttl_hours": 5}, "pad": "x" * 4096}
        response = await http.post("/api/teams", json=big, headers=world.owner.headers)
        assert response.status_code == 413
        small = await http.post("/api/teams", json={"name": "T"}, headers=world.owner.headers)
        assert small.status_code == 201


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 2000, 100_000])
async def test_deep_nesting_is_a_4xx_on_the_api(
    depth: int, admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    for method, path in [
        ("PATCH", f"/api/projects/{project_id}"),
        ("PATCH", f"/api/teams/{world.team_id}"),
        ("POST", "/api/teams"),
    ]:
        response = await client.request(
            method,
            path,
            content=_nested(depth),
            headers={**world.owner.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, response.text[:300])
        assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("depth", [MAX_RECORD_DEPTH + 1, 900, 2000, 5000])
async def test_deep_nesting_is_a_400_at_the_collector(
    depth: int, admin: MastraAdmin, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    url = f"/api/collector/{deployment.id}/spans/publish"
    auth = {"Authorization": f"Bearer {admin.collector_token(deployment.id)}"}
    deep = b'{"spans": [{"input": ' + b"[" * depth + b"]" * depth + b"}]}"
    response = await client.post(url, content=deep, headers=auth)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["code"] == "bad_request"
    # Deep JSON text inside an envelope is kept as text, never parsed into a recursion.
    envelope = {"spans": [{"type": "span", "data": '{"a":' * depth + "1" + "}" * depth}]}
    response = await client.post(url, json=envelope, headers=auth)
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(
    "settings",
    [
        {"health_path": "/health\r\nX-Injected: 1"},
        {"health_path": "/health\n"},
        {"health_path": "health"},
        {"start_command": ["node", "server.js\x00--inspect"]},
        {"node_options": "--max-old-space-size=512\x00"},
        {"plugin_blob": "x" * 1000},
        {"install_command": []},
        # Resource limits: a runner would pass these to the engine as they are.
        {"memory_limit_mb": 8},
        {"memory_limit_mb": "512"},
        {"memory_limit_mb": True},
        {"memory_limit_mb": 512.5},
        {"memory_limit_mb": 2**40},
        {"cpu_limit": 0},
        {"cpu_limit": -1},
        {"cpu_limit": 1000},
        {"cpu_limit": "1"},
    ],
)
async def test_bad_settings_are_refused_on_write(
    settings: dict[str, object], admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    response = await client.patch(
        f"/api/projects/{project_id}", json={"settings": settings}, headers=world.owner.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    stored = await admin.get_project(world.owner.user.id, project_id)
    assert stored.settings == ProjectSettings()


async def test_unknown_team_settings_are_refused(world: World, client: httpx.AsyncClient) -> None:
    response = await client.patch(
        f"/api/teams/{world.team_id}",
        json={"settings": {"blob": "x" * 100}},
        headers=world.owner.headers,
    )
    assert response.status_code == 422, response.text


async def test_env_values_with_nul_are_refused(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    response = await client.put(
        f"/api/projects/{project_id}/env",
        json={"key": "TOKEN", "value": "abc\x00def"},
        headers=world.owner.headers,
    )
    assert response.status_code == 422, response.text
    deployment = await client.post(
        f"/api/projects/{project_id}/deployments",
        json={"type": "production", "env_var_overrides": {"TOKEN": "a\x00b"}},
        headers=world.owner.headers,
    )
    assert deployment.status_code == 422, deployment.text
    assert await admin.list_env_vars(world.owner.user.id, project_id) == []


async def test_what_an_older_version_stored_keeps_reading(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    """Settings written before these rules (unknown keys, a bad health path) still read."""
    project_id = await _project(admin, world)
    legacy = ProjectSettings.model_validate(
        {"health_path": "/a\r\nb", "from_an_old_plugin": {"x": 1}}
    )
    await admin.storage.projects.update(project_id, ProjectUpdate(settings=legacy))
    got = await client.get(f"/api/projects/{project_id}", headers=world.owner.headers)
    assert got.status_code == 200, got.text
    assert got.json()["settings"]["from_an_old_plugin"] == {"x": 1}
    listed = await client.get(f"/api/teams/{world.team_id}/projects", headers=world.owner.headers)
    assert listed.status_code == 200


async def test_responses_say_nosniff(world: World, client: httpx.AsyncClient) -> None:
    for path, headers in [("/health", {}), ("/api/me", world.owner.headers), ("/api/nope", {})]:
        response = await client.get(path, headers=headers)
        assert response.headers["x-content-type-options"] == "nosniff", path


async def test_metrics_can_require_a_token(admin: MastraAdmin) -> None:
    app = create_app(admin, settings=ServerSettings(ui=False, metrics_token="scrape-me"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin.test"
    ) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert good.status_code == 200
        assert "mastra_admin" in good.text


def test_every_server_setting_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in ServerSettings.model_fields if f"`{name}`" not in readme]
    assert missing == [], f"document these in the server's README: {missing}"
