"""The one seam between the stores and psycopg: queries on pooled connections, rows
as dicts, and PostgreSQL errors turned into the core's errors."""

from __future__ import annotations

import hashlib
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from mastra_admin.core.changes import ChangeTracker
from mastra_admin.core.errors import Conflict, InvalidInput, MastraAdminError, NotFound, Unavailable

from ._changes import ChangeListener, QueryCache, statement_tables

__all__ = [
    "CheckedPool",
    "Database",
    "Row",
    "Transaction",
    "advisory_key",
    "is_uuid",
    "translate_error",
]

_log = structlog.get_logger("mastra_admin.stores.pg")

Row = dict[str, Any]
Params = Sequence[Any] | dict[str, Any] | None


def advisory_key(name: str) -> int:
    """A signed 64-bit PostgreSQL advisory lock key for ``name``."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def is_uuid(value: object) -> bool:
    """Whether ``value`` is text PostgreSQL accepts as a uuid (ids are uuid columns)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _text_dict_row(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Row]:
    """Rows as dicts, with uuid values as the text the models use."""
    description = cursor.description
    if description is None:
        return lambda values: {}
    names = [column.name for column in description]
    uuid_type = uuid.UUID

    def make_row(values: Sequence[Any]) -> Row:
        return {
            name: (str(value) if type(value) is uuid_type else value)
            for name, value in zip(names, values, strict=True)
        }

    return make_row


# Constraint name -> the field a conflict or a missing parent names.
_CONSTRAINT_FIELDS: dict[str, str] = {
    "admin_users_email_key": "email",
    "admin_users_external_id_key": "external_id",
    "admin_user_tokens_token_hash_key": "token_hash",
    "admin_user_tokens_user_id_fkey": "user_id",
    "admin_teams_slug_key": "slug",
    "admin_team_members_team_user_key": "user_id",
    "admin_team_members_team_id_fkey": "team_id",
    "admin_team_members_user_id_fkey": "user_id",
    "admin_team_invites_token_hash_key": "token_hash",
    "admin_team_invites_team_id_fkey": "team_id",
    "admin_team_installations_installation_key": "installation_id",
    "admin_team_installations_team_id_fkey": "team_id",
    "admin_projects_team_slug_key": "slug",
    "admin_projects_team_id_fkey": "team_id",
    "admin_project_env_vars_key_key": "key",
    "admin_project_env_vars_project_id_fkey": "project_id",
    "admin_project_api_tokens_token_hash_key": "token_hash",
    "admin_project_api_tokens_project_id_fkey": "project_id",
    "admin_deployments_branch_key": "branch",
    "admin_deployments_project_id_fkey": "project_id",
    "admin_builds_deployment_id_fkey": "deployment_id",
    "admin_running_servers_deployment_id_fkey": "deployment_id",
    "admin_running_servers_build_id_fkey": "build_id",
    "admin_routes_subdomain_key": "subdomain",
    "admin_routes_deployment_key": "deployment_id",
    "admin_routes_deployment_id_fkey": "deployment_id",
    "admin_routes_project_id_fkey": "project_id",
    "admin_roles_name_key": "name",
    "admin_roles_team_id_fkey": "team_id",
    "admin_role_assignments_key": "role_id",
    "admin_role_assignments_role_id_fkey": "role_id",
    "admin_role_assignments_user_id_fkey": "user_id",
    "admin_domains_hostname_key": "hostname",
    "admin_domains_team_id_fkey": "team_id",
    "admin_domains_project_id_fkey": "project_id",
    "admin_domains_deployment_id_fkey": "deployment_id",
}

_PARENTS = {
    "user_id": "user",
    "team_id": "team",
    "project_id": "project",
    "deployment_id": "deployment",
    "build_id": "build",
    "role_id": "role",
}


def _field_of(constraint: str | None) -> str:
    if constraint is None:
        return "unknown"
    if constraint in _CONSTRAINT_FIELDS:
        return _CONSTRAINT_FIELDS[constraint]
    if constraint.endswith("_pkey"):
        return "id"
    return constraint


def translate_error(exc: BaseException) -> MastraAdminError:
    """The core error for a psycopg (or pool) error."""
    if isinstance(exc, MastraAdminError):
        return exc
    if isinstance(exc, pg_errors.UniqueViolation):
        field = _field_of(exc.diag.constraint_name)
        table = (exc.diag.table_name or "").removeprefix("admin_").rstrip("s").replace("_", " ")
        return Conflict(
            f"a {table or 'record'} with this {field} already exists", details={"field": field}
        )
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        field = _field_of(exc.diag.constraint_name)
        parent = _PARENTS.get(field, field)
        return NotFound(f"{parent} not found", details={"field": field})
    if isinstance(exc, PoolTimeout | PoolClosed):
        return Unavailable(f"no database connection available: {exc}")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Unavailable(f"the database is unavailable: {_first_line(exc)}")
    if isinstance(
        exc,
        pg_errors.DataError | pg_errors.CheckViolation | pg_errors.NotNullViolation,
    ):
        return InvalidInput(f"the database refused the value: {_first_line(exc)}")
    return MastraAdminError(f"database error: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_DRIVER_ERRORS = (psycopg.Error, PoolTimeout, PoolClosed)


def _copy(found: Any) -> Any:
    """Rows handed out from (or into) the query cache are the caller's own dicts."""
    if found is None:
        return None
    if isinstance(found, list):
        return [dict(row) for row in found]
    return dict(found)


# When each pooled connection last finished a query: one that worked a moment ago
# is not worth a round trip to check before it is handed out again (if it broke
# since, its query fails with Unavailable and the pool drops it).
_RETURNED_AT: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
FRESH_S = 1.0


class CheckedPool(AsyncConnectionPool[Any]):
    """The storage's own pools: ``getconn`` checks a connection that was idle for
    over a second (``check_idle``) before lending it, with one round trip.

    psycopg_pool's ``check`` callback would do the same, but its loop around a failed
    check does two things wrong here: it waits 1 s, 2 s, 4 s ... before taking the
    next connection (so after a server restart the first call waited seconds for
    pooled connections that are all dead anyway), and it does not notice that the
    pool was closed meanwhile: the call is queued again in the closed pool and waits
    for its whole timeout. The storage closes the pool when the embedded server dies
    (``PgAdminStorage._embedded_down``) so that such calls fail at once. Here a failed
    check closes that connection and takes the next at once; once every pooled
    connection is gone the call waits in the pool's queue (where ``close`` fails it)
    for a new one, within the same deadline.
    """

    def __init__(self, conninfo: str, *, check_idle: bool = True, **kwargs: Any) -> None:
        super().__init__(conninfo, **kwargs)
        self.check_idle = check_idle

    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the pool's API)
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            conn = await super().getconn(timeout)
            if not self.check_idle:
                return conn
            used = _RETURNED_AT.get(conn)
            if used is not None and time.monotonic() - used < FRESH_S and not conn.broken:
                return conn
            try:
                await AsyncConnectionPool.check_connection(conn)
            except Exception as exc:
                _log.debug("pg.connection_check_failed", error=_first_line(exc))
                await conn.close()
                await self.putconn(conn)  # closed: the pool drops it and makes another
            except BaseException:
                await self.putconn(conn)
                raise
            else:
                return conn
            if self.closed:
                raise PoolClosed(f"the pool {self.name!r} is closed")
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise PoolTimeout("couldn't get a working connection in time")


class Database:
    """Queries against one schema through one pool.

    Every query text may contain ``{schema}``, replaced once by the quoted,
    validated schema name (``Database.sql``). Each call runs on its own pooled
    connection; ``connection()`` lends one for several statements.
    ``pool`` is ``None`` until the storage is initialised (then ``Unavailable``).

    ``outage`` is set while the storage knows the server is down (the embedded
    server's supervisor sets it): every call then raises the error it makes at once,
    with a ``retry_after`` hint, instead of waiting ``pool_timeout_s`` for a
    connection that cannot come, and without a warning per call (the outage is
    logged once, where it is noticed). ``diagnose`` (also the supervisor's) is asked
    when a call fails for want of the server before that: it returns the outage's
    error when the server has died (and has the supervisor act on it at once).
    """

    def __init__(self, pool: AsyncConnectionPool[Any] | None, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._quoted = f'"{schema}"'
        self._cache: dict[str, str] = {}
        self.tracker: ChangeTracker | None = None
        self.listener: ChangeListener | None = None
        self.query_cache: QueryCache | None = None
        self.outage: Callable[[], Unavailable] | None = None
        self.diagnose: Callable[[], Unavailable | None] | None = None

    def sql(self, text: str) -> str:
        cached = self._cache.get(text)
        if cached is None:
            cached = text.replace("{schema}", self._quoted)
            self._cache[text] = cached
        return cached

    def _pool(self) -> AsyncConnectionPool[Any]:
        outage = self.outage
        if outage is not None:
            raise outage()
        pool = self.pool
        if pool is None:
            raise Unavailable(
                "the PostgreSQL storage is not initialised: call await storage.init()"
            )
        return pool

    def _raise(self, exc: BaseException) -> NoReturn:
        error = translate_error(exc)
        if isinstance(error, Unavailable):
            outage = self.outage
            if outage is not None:  # e.g. the pool was closed under a waiting call
                raise outage() from exc
            diagnose = self.diagnose
            known = diagnose() if diagnose is not None else None
            if known is not None:  # the server died a moment ago
                raise known from exc
            _log.warning("pg.unavailable", error=error.message)
        raise error from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._pool().connection() as conn:
                yield conn
                _RETURNED_AT[conn] = time.monotonic()
        except _DRIVER_ERRORS as exc:
            self._raise(exc)

    # The three calls below are the hot path: written out, without nested context
    # managers, because every microsecond here is paid by every query.

    async def _fetch_one(self, query: str, params: Params) -> Row | None:
        try:
            async with self._pool().connection() as conn:
                cur = conn.cursor(row_factory=_text_dict_row)
                await cur.execute(self.sql(query), params)
                row: Row | None = await cur.fetchone()
                _RETURNED_AT[conn] = time.monotonic()
                return row
        except _DRIVER_ERRORS as exc:
            self._raise(exc)

    async def _fetch_all(self, query: str, params: Params) -> list[Row]:
        try:
            async with self._pool().connection() as conn:
                cur = conn.cursor(row_factory=_text_dict_row)
                await cur.execute(self.sql(query), params)
                rows: list[Row] = await cur.fetchall()
                _RETURNED_AT[conn] = time.monotonic()
                return rows
        except _DRIVER_ERRORS as exc:
            self._raise(exc)

    async def _execute(self, query: str, params: Params) -> int:
        try:
            async with self._pool().connection() as conn:
                cur = conn.cursor()
                await cur.execute(self.sql(query), params)
                count: int = cur.rowcount
                _RETURNED_AT[conn] = time.monotonic()
                return count
        except _DRIVER_ERRORS as exc:
            self._raise(exc)

    # With change tracking on (``track``), every statement is looked at once per query
    # text: writes bump the tables they reach as soon as they return, reads note what
    # they read (for the API's response cache) and may be answered from the query cache.

    def track(self, tracker: ChangeTracker, listener: ChangeListener, cache: QueryCache) -> None:
        self.tracker, self.listener, self.query_cache = tracker, listener, cache

    def untrack(self) -> None:
        self.tracker = self.listener = self.query_cache = None

    def _wrote(self, written: frozenset[str]) -> None:
        """Bump the written tables and those their deletes cascade to."""
        tracker, listener = self.tracker, self.listener
        if written and tracker is not None and listener is not None:
            tracker.changed(listener.touched(written))

    async def _read(self, one: bool, query: str, params: Params) -> Any:
        tracker = self.tracker
        assert tracker is not None
        fetch = self._fetch_one if one else self._fetch_all
        tables = statement_tables(query)
        if tables.writes:
            try:
                return await fetch(query, params)
            finally:
                self._wrote(tables.writes)
        readable = tables.is_read and bool(tables.reads)
        tracker.note_read(tables.reads if readable else None)
        cache = self.query_cache
        key = None
        if cache is not None and readable and tracker.cacheable(tables.reads):
            key = cache.key(query, params)
        if key is None or cache is None:
            return await fetch(query, params)
        key = (one, key)
        hit = cache.get(key)
        if hit is not None:
            return _copy(hit)
        snapshot = tracker.snapshot(tables.reads)
        found = await fetch(query, params)
        cache.put(key, snapshot, _copy(found))
        return found

    async def fetch_one(self, query: str, params: Params = None) -> Row | None:
        if self.tracker is None:
            return await self._fetch_one(query, params)
        row: Row | None = await self._read(True, query, params)
        return row

    async def fetch_all(self, query: str, params: Params = None) -> list[Row]:
        if self.tracker is None:
            return await self._fetch_all(query, params)
        rows: list[Row] = await self._read(False, query, params)
        return rows

    async def execute(self, query: str, params: Params = None) -> int:
        """Run a statement; return the number of rows it touched."""
        if self.tracker is None:
            return await self._execute(query, params)
        tables = statement_tables(query)
        try:
            return await self._execute(query, params)
        finally:
            self._wrote(tables.writes)
            if not tables.writes and not tables.is_read:
                self.tracker.note_read(None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Several statements in one transaction on one connection (committed when the
        block ends, rolled back when it raises). The tables it wrote are bumped for
        the change tracker afterwards, as single statements' are."""
        written: set[str] = set()
        try:
            async with self._pool().connection() as conn, conn.transaction():
                yield Transaction(self, conn, written)
            _RETURNED_AT[conn] = time.monotonic()
        except _DRIVER_ERRORS as exc:
            self._raise(exc)
        finally:
            self._wrote(frozenset(written))

    async def fetch_required(self, query: str, params: Params = None) -> Row:
        """A statement that always returns a row (``INSERT ... RETURNING``)."""
        row = await self.fetch_one(query, params)
        if row is None:
            raise MastraAdminError("the database returned no row")
        return row

    async def fetch_value(self, query: str, params: Params = None) -> Any:
        row = await self.fetch_one(query, params)
        return None if row is None else next(iter(row.values()))


class Transaction:
    """Statements inside ``Database.transaction``: rows as dicts, as elsewhere."""

    def __init__(self, db: Database, conn: psycopg.AsyncConnection[Any], written: set[str]) -> None:
        self._db = db
        self._conn = conn
        self._written = written

    async def fetch_one(self, query: str, params: Params = None) -> Row | None:
        cur = self._conn.cursor(row_factory=_text_dict_row)
        await cur.execute(self._db.sql(query), params)
        self._written.update(statement_tables(query).writes)
        row: Row | None = await cur.fetchone()
        return row

    async def execute(self, query: str, params: Params = None) -> int:
        cur = self._conn.cursor()
        await cur.execute(self._db.sql(query), params)
        self._written.update(statement_tables(query).writes)
        count: int = cur.rowcount
        return count
