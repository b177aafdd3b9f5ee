"""pytest fixtures for tests that need a real PostgreSQL (a pytest plugin).

Installed with ``mastra-admin-pg`` and loaded automatically through the ``pytest11``
entry point (with plugin autoloading off: ``-p mastra_admin.stores.pg.testing``).
Fixtures:

``pg_url`` (session)
    The URL of a maintenance database on a PostgreSQL server, where tests may
    create databases. Parametrized: ``embedded`` (one embedded PostgreSQL 18 per
    test session, in a temporary dir, fsync off) and, when
    ``MASTRA_ADMIN_TEST_DATABASE_URL`` is set (e.g.
    ``postgresql://postgres@127.0.0.1:5432/postgres``), ``external`` too: every test
    that uses it runs against both servers.
``pg_database_url``
    A new, empty database on that server for one test, dropped afterwards.
``fresh_storage``
    An initialised ``PgAdminStorage`` on a new database (already migrated, system
    roles seeded, nothing else), closed and dropped afterwards.
``pg_data_root``
    A new folder for MastraAdmin data dirs whose embedded PostgreSQL a test starts
    itself (``{pg_data_root}/postgres``), removed afterwards. Use it rather than
    ``tmp_path`` when tests run as root: the server then runs as an unprivileged
    user who must be able to traverse the folder, and pytest takes that right
    away from its own temporary folders whenever another pytest session starts.

The embedded test server is stopped when the session ends; one left behind by a
killed session is stopped and removed by the next session that starts one.

Outside pytest, ``TestServers`` and ``create_database``/``drop_database`` do the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ._embedded import EmbeddedPostgres
from ._storage import PgAdminStorage

__all__ = [
    "ENV_VAR",
    "TestServers",
    "create_database",
    "drop_database",
    "fresh_storage",
    "pg_data_root",
    "pg_database_url",
    "pg_url",
    "server_params",
]

ENV_VAR = "MASTRA_ADMIN_TEST_DATABASE_URL"

# Durability is pointless for throw-away test data and costs seconds per run.
TEST_SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


def server_params() -> list[str]:
    """``["embedded"]``, plus ``"external"`` when ``MASTRA_ADMIN_TEST_DATABASE_URL`` is set."""
    return ["embedded", "external"] if os.environ.get(ENV_VAR) else ["embedded"]


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead (libpq URL or key=value string)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    params["dbname"] = database
    return psycopg.conninfo.make_conninfo("", **params)


def create_database(
    server_url: str, *, template: str = "template0", file_copy: bool = False
) -> str:
    """Create a database with a unique name on ``server_url``'s server; return its URL.

    ``file_copy`` clones the template by copying its files (quick without fsync,
    but it forces checkpoints: meant for the throw-away embedded test server).
    """
    name = f"mat_{uuid.uuid4().hex[:16]}"
    strategy = sql.SQL(" STRATEGY FILE_COPY") if file_copy else sql.SQL("")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                sql.Identifier(name), sql.Identifier(template), strategy
            )
        )
    return _with_database(server_url, name)


def drop_database(database_url: str, *, server_url: str | None = None) -> None:
    """Drop the database ``database_url`` names (its sessions are ended first),
    connected through ``server_url`` (default: the ``postgres`` database)."""
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    name = str(params["dbname"])
    admin_url = server_url or _with_database(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class TestServers:
    """The servers of one test session: the embedded one started on first use."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self) -> None:
        self._embedded: EmbeddedPostgres | None = None
        self._tmp: Path | None = None
        self._templates: dict[str, str] = {}

    def url(self, which: str) -> str:
        if which == "external":
            url = os.environ.get(ENV_VAR)
            if not url:
                raise RuntimeError(f"{ENV_VAR} is not set")
            return url
        if self._embedded is None:
            _reap_orphaned_servers()
            self._tmp = Path(tempfile.mkdtemp(prefix=_PREFIX))
            (self._tmp / "owner.pid").write_text(str(os.getpid()))
            self._embedded = EmbeddedPostgres(
                self._tmp / "pgdata", database="postgres", server_options=TEST_SERVER_OPTIONS
            )
            self._embedded.start()
        return self._embedded.url("postgres")

    def is_embedded(self, server_url: str) -> bool:
        """Whether ``server_url`` is this session's embedded server."""
        return self._embedded is not None and server_url == self._embedded.url("postgres")

    async def migrated_template(self, server_url: str) -> str:
        """A database with the admin schema migrated and the system roles seeded, to
        clone per test (cloning is far quicker than migrating)."""
        template = self._templates.get(server_url)
        if template is None:
            url = create_database(server_url)
            storage = PgAdminStorage(url)
            await storage.init()
            await storage.close()
            template = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
            self._templates[server_url] = template
        return template

    def close(self) -> None:
        for server_url, template in self._templates.items():
            with contextlib.suppress(psycopg.Error):
                drop_database(_with_database(server_url, template), server_url=server_url)
        self._templates.clear()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


_PREFIX = "mastra-admin-pg-test-"


def _reap_orphaned_servers() -> None:
    """Stop and remove the test servers of sessions that died without cleaning up
    (a killed or timed-out pytest): their server would otherwise run forever."""
    import psutil

    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if psutil.pid_exists(owner):
            continue
        with contextlib.suppress(Exception):
            EmbeddedPostgres(folder / "pgdata").stop_any()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def _pg_servers() -> Iterator[TestServers]:
    servers = TestServers()
    yield servers
    servers.close()


@pytest.fixture(scope="session", params=server_params())
def pg_url(request: pytest.FixtureRequest, _pg_servers: TestServers) -> str:
    """URL of a maintenance database on the server under test (see the module doc)."""
    return _pg_servers.url(str(request.param))


@pytest.fixture
def pg_database_url(pg_url: str) -> Iterator[str]:
    """A new empty database for this test, dropped afterwards."""
    url = create_database(pg_url)
    yield url
    drop_database(url, server_url=pg_url)


@pytest.fixture
async def fresh_storage(pg_url: str, _pg_servers: TestServers) -> AsyncIterator[PgAdminStorage]:
    """An initialised ``PgAdminStorage`` on a database of its own."""
    template = await _pg_servers.migrated_template(pg_url)
    url = create_database(pg_url, template=template, file_copy=_pg_servers.is_embedded(pg_url))
    storage = PgAdminStorage(url)
    try:
        await storage.init()
        yield storage
    finally:
        await storage.close()
        drop_database(url, server_url=pg_url)


@pytest.fixture
def pg_data_root() -> Iterator[Path]:
    """A fresh folder outside pytest's own temporary folders (see the module doc)."""
    root = Path(tempfile.mkdtemp(prefix="mastra-admin-data-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)
