"""``PgAdminStorage``: the admin storage on PostgreSQL, its pool, its schema and,
when no server is named, the embedded server it starts, supervises and stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from mastra_admin.core.changes import ChangeTracker
from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.storage import AdminStorage

from ._builds import PgBuildStore
from ._changes import ChangeListener, QueryCache
from ._db import CheckedPool, Database, translate_error
from ._deployments import PgDeploymentStore
from ._domains import PgDomainStore
from ._embedded import EmbeddedPostgres
from ._migrations import MigrationStatus, migrate
from ._projects import PgProjectStore
from ._rbac import PgRbacStore
from ._routes import PgRouteStore
from ._servers import PgRunningServerStore
from ._settings import PgSettings, validate_identifier
from ._supervisor import EmbeddedStatus, EmbeddedSupervisor
from ._teams import PgTeamStore
from ._users import PgUserStore
from ._webhooks import PgWebhookDeliveryStore

__all__ = ["PgAdminStorage"]

_log = structlog.get_logger("mastra_admin.stores.pg")

DEFAULT_DATA_DIR = Path(".mastra-admin") / "postgres"


class PgAdminStorage(AdminStorage):
    """The admin storage on PostgreSQL (15 or newer).

    Give it one of: a connection URL, an open or unopened
    ``psycopg_pool.AsyncConnectionPool`` (not closed by ``close``; autocommit or
    not, each call is its own transaction), or ``PgSettings``. With settings that name no
    server it starts the embedded PostgreSQL in ``settings.embedded.data_dir`` (or
    ``data_dir``), starts it again whenever it dies (``embedded.supervise``; calls fail
    at once with ``Unavailable`` meanwhile, see ``_supervisor``) and stops it on
    ``close``::

        storage = PgAdminStorage("postgresql://admin@db/mastra")
        await storage.init()          # migrations, system roles
        ...
        await storage.close()
    """

    type: ClassVar[str] = "pg"

    def __init__(
        self,
        url: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        settings: PgSettings | None = None,
        schema: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        if url is not None and pool is not None:
            raise InvalidInput("give PgAdminStorage a url or a pool, not both")
        base = settings or PgSettings()
        if url is not None:
            base = base.model_copy(update={"url": SecretStr(url)})
        if schema is not None:
            base = base.model_copy(update={"schema_name": validate_identifier(schema)})
        self.settings = base
        self.schema = base.schema_name
        self._external_pool = pool
        self._data_dir = data_dir
        self.embedded: EmbeddedPostgres | None = None
        self.supervisor: EmbeddedSupervisor | None = None
        self._db = Database(None, self.schema)
        self._lock = asyncio.Lock()
        self._ready = False
        self._conninfo_used: str | None = None
        self.listener: ChangeListener | None = None
        self.users = PgUserStore(self._db)
        self.teams = PgTeamStore(self._db)
        self.projects = PgProjectStore(self._db)
        self.deployments = PgDeploymentStore(self._db)
        self.builds = PgBuildStore(self._db)
        self.servers = PgRunningServerStore(self._db)
        self.routes = PgRouteStore(self._db)
        self.rbac = PgRbacStore(self._db)
        self.webhooks = PgWebhookDeliveryStore(self._db)
        self.domains = PgDomainStore(self._db)

    # --- life cycle ----------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The query seam the stores share."""
        return self._db

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool (``Unavailable`` before ``init``)."""
        if self._db.pool is None:
            raise Unavailable("PgAdminStorage is not initialised: call await storage.init()")
        return self._db.pool

    async def connect(self) -> None:
        """Start the embedded server if needed and open the pool; no migrations.
        ``init`` does this and more; ``connect`` alone serves ``migrate --check``."""
        async with self._lock:
            await self._connect()

    async def _connect(self) -> None:
        if self._db.pool is not None:
            return
        pool = self._external_pool
        if pool is None:
            self._conninfo_used = await self._conninfo()
            pool = await self._open_pool(self._conninfo_used)
        else:
            self._conninfo_used = pool.conninfo if isinstance(pool.conninfo, str) else None
            if pool.closed:
                await pool.open(wait=True, timeout=self.settings.pool_timeout_s)
        self._db.pool = pool
        if self.embedded is not None and self.settings.embedded.supervise:
            self.supervisor = EmbeddedSupervisor(
                self.embedded,
                self.settings.embedded,
                on_down=self._embedded_down,
                on_up=self._embedded_up,
            )
            self.supervisor.start()
            self._db.diagnose = self.supervisor.diagnose

    @property
    def embedded_status(self) -> EmbeddedStatus | None:
        """The embedded server's state (up/down, restarts, why it last stopped) while
        it is supervised; ``None`` with a server of your own or before ``init``."""
        return self.supervisor.status if self.supervisor is not None else None

    async def _embedded_down(self) -> None:
        """The embedded server died: fail every call at once from now on, stop serving
        from caches, and close the pool, which fails the calls waiting in it for a
        connection (its connections are dead anyway). ``_embedded_up`` opens a new one."""
        supervisor = self.supervisor
        assert supervisor is not None
        self._db.outage = supervisor.unavailable
        if self.listener is not None:
            # Nothing cached above the storage may be served while it is down: the
            # listener's own connection can outlive the postmaster for a moment.
            self.listener.tracker.suspend()
        pool = self._db.pool
        if pool is not None and pool is not self._external_pool:
            await pool.close(timeout=1.0)

    async def _embedded_up(self) -> None:
        """The embedded server runs again: a new pool, and the change listener
        connects at once instead of at the end of its backoff."""
        assert self._conninfo_used is not None
        pool = await self._open_pool(self._conninfo_used)
        old, self._db.pool = self._db.pool, pool
        self._db.outage = None
        if old is not None and old is not pool:
            await old.close(timeout=1.0)
        if self.listener is not None:
            self.listener.retry_now()

    async def _init(self) -> None:
        async with self._lock:
            if self._ready:
                return
            await self._connect()
            await self.migrate()
            if self.settings.read_cache:
                await self._start_change_tracking()
            self._ready = True
            _log.info("pg.ready", schema=self.schema, embedded=self.embedded is not None)

    async def _conninfo(self) -> str:
        if not self.settings.uses_embedded:
            return self.settings.conninfo()
        options = self.settings.embedded
        data_dir = options.data_dir or self._data_dir or DEFAULT_DATA_DIR
        self.embedded = EmbeddedPostgres(
            data_dir,
            database=options.database,
            server_options=options.server_options,
            system_user=options.system_user,
            start_timeout_s=options.start_timeout_s,
        )
        url = await asyncio.to_thread(self.embedded.start)
        return psycopg.conninfo.make_conninfo(url, application_name=self.settings.application_name)

    async def _open_pool(self, conninfo: str) -> AsyncConnectionPool[Any]:
        settings = self.settings
        pool = CheckedPool(
            conninfo,
            check_idle=settings.check_connections,
            min_size=settings.pool_min_size,
            max_size=max(settings.pool_max_size, settings.pool_min_size),
            timeout=settings.pool_timeout_s,
            kwargs={"autocommit": True},
            reconnect_timeout=settings.reconnect_timeout_s,
            name=f"mastra-admin-pg-{self.schema}",
            open=False,
        )
        try:
            await pool.open(wait=settings.pool_min_size > 0, timeout=settings.pool_timeout_s)
        except BaseException as exc:  # cancelled too: no pool left half open
            await pool.close()
            if isinstance(exc, Exception):
                raise translate_error(exc) from exc
            raise
        return pool

    async def _start_change_tracking(self) -> None:
        """The listening connection, and the caches it keeps honest (see ``_changes``)."""
        if self._conninfo_used is None:
            _log.warning("pg.read_cache_off", reason="the pool's conninfo is not a string")
            return
        tracker = ChangeTracker()
        cache = QueryCache(tracker, max_entries=self.settings.read_cache_entries)
        listener = ChangeListener(self._conninfo_used, self.schema, tracker, on_reset=cache.clear)
        self._db.track(tracker, listener, cache)
        self.listener = listener
        self.changes = tracker
        await listener.start()

    async def migrate(self, *, check_only: bool = False) -> MigrationStatus:
        """Apply (or, with ``check_only``, list) pending schema migrations."""
        async with self.database.connection() as conn:
            if not conn.autocommit:
                await conn.set_autocommit(True)
            try:
                return await migrate(conn, self.schema, check_only=check_only)
            except psycopg.Error as exc:
                raise translate_error(exc) from exc

    async def _close(self) -> None:
        async with self._lock:
            self._ready = False
            supervisor, self.supervisor = self.supervisor, None
            if supervisor is not None:
                await supervisor.stop()
            self._db.outage = self._db.diagnose = None
            listener, self.listener, self.changes = self.listener, None, None
            if listener is not None:
                await listener.stop()
            self._db.untrack()
            pool, self._db.pool = self._db.pool, None
            if pool is not None and pool is not self._external_pool:
                await pool.close()
            if self.embedded is not None:
                await asyncio.to_thread(self.embedded.stop)
                self.embedded = None

    async def ping(self) -> None:
        await self.database.fetch_value("SELECT 1")

    def __repr__(self) -> str:
        where = (
            "embedded" if self.settings.uses_embedded and self._external_pool is None else "server"
        )
        return f"PgAdminStorage(schema={self.schema!r}, {where})"
