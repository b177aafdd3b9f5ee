"""Versioned migrations: recorded with checksums, applied once, safe to run at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import psycopg
import pytest

from mastra_admin.core.errors import Conflict
from mastra_admin.stores.pg import PgAdminStorage, load_migrations
from mastra_admin.stores.pg._migrations import migrate

EXPECTED_TABLES = {
    "admin_users",
    "admin_user_tokens",
    "admin_teams",
    "admin_team_members",
    "admin_team_invites",
    "admin_team_installations",
    "admin_projects",
    "admin_project_env_vars",
    "admin_project_api_tokens",
    "admin_deployments",
    "admin_builds",
    "admin_running_servers",
    "admin_routes",
    "admin_roles",
    "admin_role_assignments",
    "admin_webhook_deliveries",
    "admin_domains",
    "admin_schema_migrations",
}


def _rows(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


async def test_init_creates_every_table_index_and_trigger(pg_database_url: str) -> None:
    storage = PgAdminStorage(pg_database_url)
    await storage.init()
    await storage.close()
    tables = {
        r[0]
        for r in _rows(
            pg_database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'mastra_admin'"
        )
    }
    assert tables == EXPECTED_TABLES
    indexes = {
        r[0]
        for r in _rows(
            pg_database_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'mastra_admin'"
        )
    }
    assert {
        "admin_builds_queue_idx",
        "admin_users_email_key",
        "admin_routes_subdomain_key",
        "admin_webhook_deliveries_received_idx",
        "admin_projects_repository_key_idx",
        "admin_projects_source_id_idx",
        "admin_domains_hostname_key",
        "admin_domains_status_idx",
    } <= indexes
    triggers = {
        r[0]
        for r in _rows(
            pg_database_url,
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'mastra_admin' AND NOT t.tgisinternal",
        )
    }
    updated_at = {t for t in triggers if t.endswith("_updated_at")}
    notify = {t for t in triggers if t.endswith("_notify_change")}
    assert len(updated_at) == 9
    # Change notifications on every table but the build machinery's busy ones, the
    # webhook deliveries and the custom domains (nothing caches them).
    assert {t.removesuffix("_notify_change") for t in notify} == EXPECTED_TABLES - {
        "admin_builds",
        "admin_running_servers",
        "admin_routes",
        "admin_webhook_deliveries",
        "admin_domains",
        "admin_schema_migrations",
    }
    assert triggers == updated_at | notify
    recorded = _rows(
        pg_database_url,
        "SELECT version, name, checksum FROM mastra_admin.admin_schema_migrations ORDER BY 1",
    )
    assert recorded == [(m.version, m.name, m.checksum) for m in load_migrations()]


async def test_migrations_run_twice_apply_once(pg_database_url: str) -> None:
    for _ in range(2):
        storage = PgAdminStorage(pg_database_url)
        await storage.init()
        status = await storage.migrate()
        assert status.newly_applied == []
        await storage.close()
    count = _rows(pg_database_url, "SELECT count(*) FROM mastra_admin.admin_schema_migrations")
    assert count == [(len(load_migrations()),)]


async def test_concurrent_init_on_an_empty_database(pg_database_url: str) -> None:
    storages = [PgAdminStorage(pg_database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.init() for s in storages))
    finally:
        await asyncio.gather(*(s.close() for s in storages))
    assert _rows(pg_database_url, "SELECT count(*) FROM mastra_admin.admin_schema_migrations") == [
        (len(load_migrations()),)
    ]
    names = _rows(
        pg_database_url,
        "SELECT name, count(*) FROM mastra_admin.admin_roles WHERE is_system GROUP BY name",
    )
    assert names
    assert all(count == 1 for _, count in names)


async def test_check_only_reports_pending_and_changes_nothing(pg_database_url: str) -> None:
    storage = PgAdminStorage(pg_database_url)
    try:
        await storage.connect()
        status = await storage.migrate(check_only=True)
        assert [m.version for m in status.pending] == [m.version for m in load_migrations()]
        assert status.applied == []
        schemas = _rows(
            pg_database_url,
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'mastra_admin'",
        )
        assert schemas == []
        await storage.migrate()
        after = await storage.migrate(check_only=True)
        assert after.pending == []
        assert len(after.applied) == len(load_migrations())
    finally:
        await storage.close()


async def test_a_changed_applied_migration_is_an_error(pg_database_url: str) -> None:
    storage = PgAdminStorage(pg_database_url)
    await storage.init()
    await storage.close()
    with psycopg.connect(pg_database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE mastra_admin.admin_schema_migrations SET checksum = 'edited' WHERE version = 1"
        )
    again = PgAdminStorage(pg_database_url)
    with pytest.raises(Conflict) as info:
        await again.init()
    await again.close()
    assert info.value.details["version"] == 1
    assert "changed" in info.value.message


async def test_new_migrations_apply_in_order_and_a_newer_database_is_tolerated(
    pg_database_url: str,
) -> None:
    shipped = load_migrations()
    extra = replace(
        shipped[-1],
        version=shipped[-1].version + 1,
        name="add_note",
        sql="ALTER TABLE admin_teams ADD COLUMN note text;",
    )
    async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as conn:
        first = await migrate(conn, "mastra_admin", migrations=shipped)
        assert [m.version for m in first.newly_applied] == [m.version for m in shipped]
        second = await migrate(conn, "mastra_admin", migrations=[*shipped, extra])
        assert [m.name for m in second.newly_applied] == ["add_note"]
        # an older release sees a migration it does not know: it carries on
        older = await migrate(conn, "mastra_admin", migrations=shipped)
        assert older.newly_applied == []
    columns = _rows(
        pg_database_url,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'mastra_admin' AND table_name = 'admin_teams'",
    )
    assert ("note",) in columns


async def test_numbers_may_have_gaps_and_a_lower_block_may_land_later(
    pg_database_url: str,
) -> None:
    # docs/architecture.md reserves blocks (1-99 core, 100-199 audit log ...): a
    # feature's 0100 can be applied before the core's next number exists.
    shipped = load_migrations()
    last_core = max((m for m in shipped if m.version < 100), key=lambda m: m.version)
    assert all(m.version != 100 for m in shipped), "block 100 is used: pick a free number"
    feature = replace(
        last_core, version=100, name="audit_note", sql="CREATE TABLE audit_note (id int);"
    )
    core = replace(
        last_core,
        version=last_core.version + 1,
        name="core_note",
        sql="ALTER TABLE admin_teams ADD COLUMN core_note text;",
    )
    async with await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True) as conn:
        first = await migrate(conn, "mastra_admin", migrations=[*shipped, feature])
        assert 100 in [m.version for m in first.newly_applied]
        later = await migrate(conn, "mastra_admin", migrations=[*shipped, core, feature])
        assert [m.name for m in later.newly_applied] == ["core_note"]
        versions = [m.version for m in later.applied]
        assert versions == sorted(versions)
        assert versions.index(core.version) < versions.index(100)


async def test_schemas_are_independent(pg_database_url: str) -> None:
    one = PgAdminStorage(pg_database_url, schema="tenant_one")
    two = PgAdminStorage(pg_database_url, schema="tenant_two")
    try:
        await one.init()
        await two.init()
        from mastra_admin.core.models import Team

        await one.teams.create(Team(name="a", slug="same"))
        await two.teams.create(Team(name="b", slug="same"))
        assert await one.teams.count() == 1
        assert await two.teams.count() == 1
    finally:
        await one.close()
        await two.close()
