"""Cached answers of read endpoints are exactly as fresh as the storage: every change,
made through this app or anywhere else on the same database, shows in the next
answer (elsewhere: as soon as its notification arrives)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import CreateProject
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.testing.fakes import FakeSource
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.server.app import create_app
from mastra_admin.server.cache import ResponseCache
from mastra_admin.server.routes import all_endpoints
from mastra_admin.server.settings import ServerSettings
from mastra_admin.stores.pg import PgAdminStorage

from .conftest import World


@pytest.fixture
def app(admin: MastraAdmin) -> Starlette:
    return create_app(admin, settings=ServerSettings(ui=False, ingestion=False))


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as client:
        yield client


def _cache(app: Starlette) -> ResponseCache:
    cache: ResponseCache | None = getattr(app.state, "response_cache", None)
    assert cache is not None, "no response cache: is the storage's change tracking live?"
    return cache


async def _project(admin: MastraAdmin, world: World, name: str) -> str:
    project = await admin.create_project(
        world.owner.user.id, world.team_id, CreateProject(name=name, source_id="weather-agent")
    )
    return project.id


def test_only_reads_are_cached() -> None:
    cached = [e for e in all_endpoints() if e.cache]
    assert cached, "no endpoint is cached"
    assert all(e.method == "GET" and e.access in ("user", "team") for e in cached)


async def test_the_second_read_is_served_from_memory_and_follows_every_write(
    admin: MastraAdmin, world: World, app: Starlette, http: httpx.AsyncClient
) -> None:
    url = f"/api/teams/{world.team_id}/projects"
    headers = world.owner.headers
    assert (await http.get(url, headers=headers)).json()["total"] == 0
    cache = _cache(app)

    async def served_from_memory() -> bool:
        # (The notifications of the set-up's own writes arrive a moment later and
        # drop the first answers: a later one is a hit.)
        hits = cache.hits
        assert (await http.get(url, headers=headers)).json()["total"] == 0
        return cache.hits == hits + 1

    await _eventually(served_from_memory)

    created = await http.post(
        url, json={"name": "Weather", "source_id": "weather-agent"}, headers=headers
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    page = (await http.get(url, headers=headers)).json()
    assert [p["name"] for p in page["items"]] == ["Weather"]

    renamed = await http.patch(
        f"/api/projects/{project_id}", json={"name": "Forecast"}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert (await http.get(f"/api/projects/{project_id}", headers=headers)).json()[
        "name"
    ] == "Forecast"
    assert [p["name"] for p in (await http.get(url, headers=headers)).json()["items"]] == [
        "Forecast"
    ]

    assert (await http.delete(f"/api/projects/{project_id}", headers=headers)).status_code == 204
    assert (await http.get(url, headers=headers)).json()["total"] == 0
    assert (await http.get(f"/api/projects/{project_id}", headers=headers)).status_code == 404


async def test_each_caller_gets_their_own_answer_and_loses_it_with_their_access(
    admin: MastraAdmin, world: World, app: Starlette, http: httpx.AsyncClient
) -> None:
    await _project(admin, world, "Weather")
    url = f"/api/teams/{world.team_id}/projects"
    for _ in range(2):
        assert (await http.get(url, headers=world.member.headers)).status_code == 200
        assert (await http.get(url, headers=world.outsider.headers)).status_code == 404
    removed = await http.delete(
        f"/api/teams/{world.team_id}/members/{world.member.user.id}", headers=world.owner.headers
    )
    assert removed.status_code == 204, removed.text
    assert (await http.get(url, headers=world.member.headers)).status_code == 404
    members = await http.get(f"/api/teams/{world.team_id}/members", headers=world.viewer.headers)
    assert world.member.user.id not in {m["user_id"] for m in members.json()}


async def test_changes_made_by_another_process_reach_cached_answers(
    admin: MastraAdmin, world: World, app: Starlette, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert isinstance(admin.storage, PgAdminStorage)
    url_setting = admin.storage.settings.url
    assert url_setting is not None
    other = MastraAdmin(
        storage=PgAdminStorage(url_setting.get_secret_value()),
        source=FakeSource(["weather-agent"]),
        settings=MastraAdminSettings(data_dir=tmp_path / "other"),
        collector_secret=b"o" * 32,
    )
    await other.init()
    try:
        projects = f"/api/teams/{world.team_id}/projects"
        for _ in range(2):
            assert (await http.get(projects, headers=world.viewer.headers)).json()["total"] == 0
        await _project(other, world, "Made elsewhere")

        async def listed() -> bool:
            page = (await http.get(projects, headers=world.viewer.headers)).json()
            return bool(page["total"] == 1)

        await _eventually(listed)

        # A token revoked elsewhere stops working here.
        tokens = await other.list_user_tokens(world.viewer.user.id)
        await other.revoke_user_token(world.viewer.user.id, tokens[0].id)

        async def refused() -> bool:
            response = await http.get(projects, headers=world.viewer.headers)
            return response.status_code == 401

        await _eventually(refused)
    finally:
        await other.close()


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {within} s")
        await asyncio.sleep(0.01)


async def test_without_change_tracking_nothing_is_cached(tmp_path: Path) -> None:
    admin = MastraAdmin(
        storage=InMemoryAdminStorage(),
        settings=MastraAdminSettings(data_dir=tmp_path),
        collector_secret=b"m" * 32,
    )
    await admin.init()
    try:
        _, token = await admin.bootstrap_admin("root@example.com")
        app = create_app(admin, settings=ServerSettings(ui=False, ingestion=False))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
            for _ in range(2):
                teams = await http.get("/api/teams", headers={"Authorization": f"Bearer {token}"})
                assert teams.status_code == 200
        assert admin.storage.changes is None
        assert getattr(app.state, "response_cache", None) is None
    finally:
        await admin.close()
