"""Versioned schema migrations: SQL files applied in order, each recorded with a checksum.

Files are ``migrations/NNNN_name.sql`` in this package. ``migrate`` holds a session
advisory lock (per schema) for the whole run, so processes that start together apply
each migration once; a migration that was applied and has since changed is an error.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
import structlog
from psycopg import sql

from mastra_admin.core.errors import Conflict, InvalidInput

from ._db import advisory_key

__all__ = ["AppliedMigration", "Migration", "MigrationStatus", "load_migrations", "migrate"]

_log = structlog.get_logger("mastra_admin.stores.pg.migrations")

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
MIN_SERVER_VERSION = 150000  # UNIQUE NULLS NOT DISTINCT


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        normalised = self.sql.replace("\r\n", "\n").strip()
        return hashlib.sha256(normalised.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """What ``migrate`` found (and, unless ``check_only``, did)."""

    applied: list[AppliedMigration]
    pending: list[Migration]
    newly_applied: list[Migration]


def load_migrations() -> list[Migration]:
    """The migrations shipped with this package, by version."""
    found: list[Migration] = []
    folder = resources.files("mastra_admin.stores.pg") / "migrations"
    for entry in folder.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise InvalidInput("two migrations share a version number")
    return found


def _lock_key(schema: str) -> int:
    """The advisory lock key for migrating ``schema``."""
    return advisory_key(f"mastra_admin.migrate.{schema}")


async def migrate(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    *,
    check_only: bool = False,
    migrations: list[Migration] | None = None,
) -> MigrationStatus:
    """Bring ``schema`` up to date (or, with ``check_only``, only report).

    ``conn`` must be in autocommit mode (each migration gets its own transaction).
    ``Conflict`` when an applied migration's checksum no longer matches its file.
    """
    wanted = load_migrations() if migrations is None else migrations
    version_num = conn.info.server_version
    if version_num < MIN_SERVER_VERSION:
        raise InvalidInput(
            f"PostgreSQL {version_num // 10000} is too old: mastra-admin-pg needs 15 or newer",
            details={"server_version": version_num},
        )
    schema_id = sql.Identifier(schema)
    table = sql.SQL("{}.admin_schema_migrations").format(schema_id)
    key = _lock_key(schema)
    await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        if not check_only:
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema_id))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(table)
            )
        applied = await _applied(conn, schema, table)
        by_version = {m.version: m for m in wanted}
        for done in applied:
            known = by_version.get(done.version)
            if known is None:
                _log.warning(
                    "pg.migration_unknown",
                    version=done.version,
                    name=done.name,
                    hint="the database was migrated by a newer mastra-admin-pg",
                )
            elif known.checksum != done.checksum:
                raise Conflict(
                    f"migration {done.version:04d}_{done.name} was applied to schema {schema!r} "
                    "but its file has changed since; restore the original file, or repair "
                    "the database by hand",
                    details={
                        "version": done.version,
                        "applied_checksum": done.checksum,
                        "file_checksum": known.checksum,
                    },
                )
        applied_versions = {a.version for a in applied}
        pending = [m for m in wanted if m.version not in applied_versions]
        newly: list[Migration] = []
        if not check_only:
            for migration in pending:
                async with conn.transaction():
                    await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema_id))
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)"
                        ).format(table),
                        (migration.version, migration.name, migration.checksum),
                    )
                newly.append(migration)
                _log.info(
                    "pg.migration_applied",
                    schema=schema,
                    version=migration.version,
                    name=migration.name,
                )
            if newly:
                applied = await _applied(conn, schema, table)
        return MigrationStatus(
            applied=applied,
            pending=[] if not check_only else pending,
            newly_applied=newly,
        )
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


async def _applied(
    conn: psycopg.AsyncConnection[Any], schema: str, table: sql.Composed
) -> list[AppliedMigration]:
    exists = await (
        await conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
            (schema, "admin_schema_migrations"),
        )
    ).fetchone()
    if exists is None:
        return []
    cur = await conn.execute(
        sql.SQL("SELECT version, name, checksum, applied_at FROM {} ORDER BY version").format(table)
    )
    return [AppliedMigration(*row) for row in await cur.fetchall()]
