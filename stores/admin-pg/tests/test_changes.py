"""The read cache and the change notifications that keep it exact: own writes are
read back at once, other connections' writes as soon as their notification arrives,
cascades reach the children, and nothing is served from memory while the listening
connection is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import psycopg
import pytest

from mastra_admin.core.models import Project, Team
from mastra_admin.stores.pg import PgAdminStorage
from mastra_admin.stores.pg._changes import QueryCache, statement_tables
from mastra_admin.stores.pg._settings import PgSettings


def _project(team_id: str, n: int) -> Project:
    return Project(team_id=team_id, name=f"P{n}", slug=f"p{n}", source_type="local")


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> float:
    """Seconds until ``check`` holds; fails the test after ``timeout``."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > within:
            pytest.fail(f"not true after {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def _cache(storage: PgAdminStorage) -> QueryCache:
    cache = storage.database.query_cache
    assert cache is not None
    return cache


async def _team_with_projects(storage: PgAdminStorage, count: int) -> Team:
    team = await storage.teams.create(Team(name="Search", slug="search"))
    for n in range(count):
        await storage.projects.create(_project(team.id, n))
    return team


def test_statements_are_sorted_into_reads_writes_and_volatile() -> None:
    read = statement_tables(
        "SELECT p.* FROM {schema}.admin_projects p JOIN {schema}.admin_teams t"
        " ON t.id = p.team_id WHERE t.id = %s"
    )
    assert read.reads == {"admin_projects", "admin_teams"}
    assert read.writes == frozenset()
    assert read.is_read
    write = statement_tables(
        "WITH doomed AS (DELETE FROM {schema}.admin_teams WHERE id = %(id)s RETURNING id)"
        " DELETE FROM {schema}.admin_role_assignments a USING doomed"
    )
    assert write.writes == {"admin_teams", "admin_role_assignments"}
    assert not write.is_read
    for volatile in (
        "SELECT * FROM {schema}.admin_team_invites WHERE expires_at > now()",
        "SELECT * FROM {schema}.admin_builds WHERE status = 'queued' FOR UPDATE SKIP LOCKED",
        "SELECT current_timestamp, * FROM {schema}.admin_users",
    ):
        assert statement_tables(volatile).volatile, volatile
        assert not statement_tables(volatile).is_read


async def test_reads_are_served_from_memory_until_this_process_writes(
    fresh_storage: PgAdminStorage,
) -> None:
    storage = fresh_storage
    assert storage.changes is not None
    assert storage.changes.live
    team = await _team_with_projects(storage, 3)
    cache = _cache(storage)
    first = await storage.projects.list_for_team(team.id)

    async def served_from_memory() -> bool:
        # (The notifications of the inserts above come back to this process too, a
        # moment later, and drop the first reads: a later one is a hit.)
        hits = cache.hits
        assert await storage.projects.list_for_team(team.id) == first
        return cache.hits == hits + 1

    await _eventually(served_from_memory, within=2.0)
    # A write of this process is visible to the very next read, with no wait.
    await storage.projects.create(_project(team.id, 9))
    assert [p.name for p in await storage.projects.list_for_team(team.id)] == [
        "P0",
        "P1",
        "P2",
        "P9",
    ]
    renamed = await storage.projects.get(first[0].id)
    assert renamed is not None
    from mastra_admin.core.storage import ProjectUpdate

    await storage.projects.update(first[0].id, ProjectUpdate(name="Renamed"))
    again = await storage.projects.get(first[0].id)
    assert again is not None
    assert again.name == "Renamed"


async def test_rows_handed_out_are_the_callers_own(fresh_storage: PgAdminStorage) -> None:
    team = await _team_with_projects(fresh_storage, 1)
    query = "SELECT * FROM {schema}.admin_projects WHERE team_id = %s"
    rows = await fresh_storage.database.fetch_all(query, (team.id,))
    rows[0]["name"] = "scribbled"
    cached = await fresh_storage.database.fetch_all(query, (team.id,))
    assert cached[0]["name"] == "P0"
    cached[0]["name"] = "scribbled again"
    assert (await fresh_storage.database.fetch_all(query, (team.id,)))[0]["name"] == "P0"


async def test_a_write_elsewhere_reaches_the_cache_through_its_notification(
    fresh_storage: PgAdminStorage,
) -> None:
    storage = fresh_storage
    team = await _team_with_projects(storage, 2)
    await storage.projects.list_for_team(team.id)
    await storage.projects.list_for_team(team.id)  # now cached
    url = storage.settings.conninfo()
    with psycopg.connect(url, autocommit=True) as other:  # another process, in effect
        other.execute(
            "UPDATE mastra_admin.admin_projects SET name = 'Changed elsewhere' WHERE slug = 'p1'"
        )

    async def seen() -> bool:
        names = [p.name for p in await storage.projects.list_for_team(team.id)]
        return "Changed elsewhere" in names

    waited = await _eventually(seen, within=2.0)
    assert waited < 2.0


async def test_a_cascading_delete_drops_what_was_cached_from_the_children(
    fresh_storage: PgAdminStorage,
) -> None:
    storage = fresh_storage
    team = await _team_with_projects(storage, 2)
    assert len(await storage.projects.list_for_team(team.id)) == 2
    assert len(await storage.projects.list_for_team(team.id)) == 2  # cached
    assert await storage.teams.delete(team.id)
    # The projects went with the team (ON DELETE CASCADE), read at once.
    assert await storage.projects.list_for_team(team.id) == []


async def test_nothing_is_served_from_memory_while_the_listener_is_down(
    fresh_storage: PgAdminStorage,
) -> None:
    storage = fresh_storage
    listener = storage.listener
    tracker = storage.changes
    assert listener is not None
    assert tracker is not None
    team = await _team_with_projects(storage, 1)
    await storage.projects.list_for_team(team.id)
    url = storage.settings.conninfo()
    first_pid = listener.backend_pid
    with psycopg.connect(url, autocommit=True) as admin_conn:
        admin_conn.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        # A change made while nobody listens: its notification is lost for good.
        admin_conn.execute("UPDATE mastra_admin.admin_projects SET name = 'Missed'")

    async def down_or_replaced() -> bool:
        return not tracker.live or listener.backend_pid != first_pid

    await _eventually(down_or_replaced, within=10.0)

    async def back() -> bool:
        return tracker.live and listener.backend_pid != first_pid

    await _eventually(back, within=15.0)
    # Whatever was cached before the gap was dropped: the missed change is read.
    assert [p.name for p in await storage.projects.list_for_team(team.id)] == ["Missed"]


async def test_uncachable_parameters_are_read_every_time(fresh_storage: PgAdminStorage) -> None:
    team = await _team_with_projects(fresh_storage, 2)
    cache = _cache(fresh_storage)
    before = len(cache)
    query = "SELECT name FROM {schema}.admin_projects WHERE team_id = ANY(%s) ORDER BY name"
    for _ in range(2):
        rows = await fresh_storage.database.fetch_all(query, ([team.id],))
        assert [r["name"] for r in rows] == ["P0", "P1"]
    assert len(cache) == before


async def test_the_read_cache_can_be_turned_off(pg_database_url: str) -> None:
    settings = PgSettings.model_validate({"url": pg_database_url, "read_cache": False})
    storage = PgAdminStorage(settings=settings)
    await storage.init()
    try:
        assert storage.changes is None
        assert storage.listener is None
        assert storage.database.query_cache is None
        with psycopg.connect(pg_database_url, autocommit=True) as conn:
            listening = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            ).fetchone()
        assert listening == (0,)
    finally:
        await storage.close()


async def test_close_stops_listening(pg_database_url: str) -> None:
    storage = PgAdminStorage(pg_database_url)
    await storage.init()
    listener = storage.listener
    assert listener is not None
    assert listener.backend_pid is not None
    pid = listener.backend_pid
    await storage.close()
    assert storage.changes is None
    with psycopg.connect(pg_database_url, autocommit=True) as conn:
        alive = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        assert alive.fetchone() == (0,)
