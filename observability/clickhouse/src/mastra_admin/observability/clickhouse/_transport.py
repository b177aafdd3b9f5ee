"""The one seam between this package and ClickHouse, with its two implementations.

``ChdbTransport`` runs the embedded engine (chDB) in this process; ``ServerTransport``
talks to a ClickHouse server over the native protocol (clickhouse-driver, with
server-side typed parameters). Both take the same SQL: ``{name:Type}`` placeholders
with values beside them, and raw JSON lines for the landing table. Both libraries
block, so every call runs in a worker thread of the transport's own executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
import queue
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlparse, urlunparse

import structlog

from mastra_admin.core.errors import InvalidInput, MastraAdminError, Unavailable
from mastra_admin.observability.clickhouse._engine_memory import (
    load_chdb_session,
    release_engine_pages,
)
from mastra_admin.observability.clickhouse._sql import (
    ParamValue,
    escape_param_text,
    render_settings,
)

__all__ = ["ChdbTransport", "ClickHouseError", "ServerTransport", "Transport", "redact_url"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

T = TypeVar("T")

Row = dict[str, Any]

Lines = bytes | Iterable[bytes]
"""Whole lines: one buffer, or consecutive buffers (which may part a line), handed
on as they were read rather than joined into one more copy. An iterator's buffers
are let go as they are sent."""


def pieces_of(data: Lines) -> Iterable[bytes]:
    """The buffers of ``data``."""
    return (data,) if isinstance(data, bytes) else data


class ClickHouseError(MastraAdminError):
    """ClickHouse refused a statement (a bug or a schema mismatch, not an outage)."""

    code = "clickhouse_error"


def redact_url(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunparse(parts._replace(netloc=netloc))


class _Offload:
    """Blocking calls in dedicated threads, awaited from the event loop."""

    def __init__(self, threads: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await loop.run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


class Transport(ABC):
    """Runs SQL against one ClickHouse (embedded or server)."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the data is, without secrets (for logs and ``migrate``)."""

    @abstractmethod
    async def execute(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, INSERT … SELECT)."""

    @abstractmethod
    async def fetch(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> list[Row]:
        """Run a query; rows as dicts keyed by column name."""

    @abstractmethod
    async def insert_lines(
        self, table: str, data: Lines, settings: Mapping[str, ParamValue]
    ) -> None:
        """Insert ``data`` (whole lines, each ending in ``\\n``) into the one-column
        ``String`` table ``table``, one row a line, with per-insert ``settings``."""

    async def ping(self) -> None:
        """``Unavailable`` when ClickHouse does not answer."""
        await self.fetch("SELECT 1 AS ok")

    async def release_unused_memory(self) -> int:
        """Give back what this process holds of the engine and no longer uses, after
        its start: the bytes released (nothing for a server)."""
        return 0

    @abstractmethod
    async def close(self) -> None: ...


# --- the embedded engine ----------------------------------------------------------

INSERT_PIECE_BYTES = 1024 * 1024
"""An insert is handed to the embedded engine in pieces of at most this size, which
it parses as they come, instead of as one copy of the whole chunk; the worker reads
files in pieces of this size too."""


ENGINE_SESSIONS = 2
"""Sessions of the embedded engine, each run by a thread of its own. An insert holds
its session until it finishes and runs on one CPU: a second session lets another
insert (the worker tails build folders beside the collector files) or a query run
meanwhile."""


class _Sessions:
    """chDB sessions on one data path, each used by one thread at a time."""

    def __init__(self, sessions: list[Any]) -> None:
        self._all = list(sessions)
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for session in sessions:
            self._free.put(session)
        self._offload = _Offload(len(sessions), "chdb")

    async def run(self, fn: Callable[[Any], T]) -> T:
        def with_session() -> T:
            session = self._free.get()
            try:
                return fn(session)
            finally:
                self._free.put(session)

        return await self._offload.run(with_session)

    def close(self) -> None:
        self._offload.shutdown()
        for session in self._all:
            session.close()


class _ChdbEngine:
    """The chDB sessions of this process.

    chDB serves one data path per process and locks it against other processes, so
    every transport of this process shares these sessions (counted)."""

    _guard = threading.Lock()
    _sessions: _Sessions | None = None
    _path: str | None = None
    _users = 0
    _pages_released = False

    @classmethod
    def first_release(cls) -> bool:
        """True once per process: the library's start-up runs once, so its pages are
        given back once (later inits would only make the kernel read back again the
        code they run)."""
        with cls._guard:
            first, cls._pages_released = not cls._pages_released, True
            return first

    @classmethod
    def acquire(cls, path: str) -> _Sessions:
        with cls._guard:
            if cls._sessions is not None:
                if cls._path != path:
                    raise Unavailable(
                        f"the embedded ClickHouse of this process already uses {cls._path}; "
                        f"one process serves one data path, so {path} cannot be opened",
                        details={"path": path, "in_use": cls._path},
                    )
                cls._users += 1
                return cls._sessions
            try:
                chdb_session = load_chdb_session()
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise Unavailable("the embedded engine needs the chdb-core package") from exc
            Path(path).mkdir(parents=True, exist_ok=True)
            opened: list[Any] = []
            try:
                for _ in range(ENGINE_SESSIONS):
                    opened.append(chdb_session.Session(path))
            except Exception as exc:
                for session in opened:
                    session.close()
                raise Unavailable(
                    f"cannot open the embedded ClickHouse at {path}: {_first_line(exc)} "
                    "(another process may be using it: one process serves one data path)",
                    details={"path": path},
                ) from exc
            cls._sessions = _Sessions(opened)
            cls._path = path
            cls._users = 1
            return cls._sessions

    @classmethod
    def release(cls) -> None:
        with cls._guard:
            cls._users -= 1
            if cls._users > 0:
                return
            sessions = cls._sessions
            cls._sessions = cls._path = None
            cls._users = 0
        if sessions is not None:
            sessions.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _chdb_failure(exc: Exception, sql: str) -> MastraAdminError:
    message = _first_line(exc)
    if "MEMORY_LIMIT_EXCEEDED" in message or "TOO_MANY_PARTS" in message:
        return Unavailable(f"the embedded ClickHouse is overloaded: {message}")
    return ClickHouseError(message, details={"statement": sql.strip().split("\n")[0][:200]})


class ChdbTransport(Transport):
    """The embedded engine, data under ``path`` (shared by every user in this process)."""

    kind: ClassVar[str] = "chdb"

    def __init__(self, path: Path | str) -> None:
        self.path = str(Path(path).resolve())
        self._sessions: _Sessions | None = None
        self._closed = False
        self._opening = asyncio.Lock()

    @property
    def description(self) -> str:
        return f"embedded ClickHouse (chDB) at {self.path}"

    async def _ready(self) -> _Sessions:
        if self._closed:
            raise Unavailable("the ClickHouse transport is closed")
        if self._sessions is None:
            async with self._opening:
                if self._sessions is None:
                    self._sessions = await asyncio.to_thread(_ChdbEngine.acquire, self.path)
        return self._sessions

    @staticmethod
    def _params(params: Mapping[str, ParamValue] | None) -> dict[str, str]:
        return {k: escape_param_text(v) for k, v in (params or {}).items()}

    async def execute(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> None:
        sessions = await self._ready()

        def run(session: Any) -> None:
            try:
                session.query(sql, "TabSeparated", params=self._params(params))
            except Exception as exc:
                raise _chdb_failure(exc, sql) from exc

        await sessions.run(run)

    async def fetch(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> list[Row]:
        sessions = await self._ready()

        def run(session: Any) -> bytes:
            try:
                result = session.query(sql, "JSONEachRow", params=self._params(params))
            except Exception as exc:
                raise _chdb_failure(exc, sql) from exc
            return bytes(result.bytes())

        raw = await sessions.run(run)
        return [json.loads(line) for line in raw.splitlines() if line]

    async def insert_lines(
        self, table: str, data: Lines, settings: Mapping[str, ParamValue]
    ) -> None:
        sessions = await self._ready()
        statement = f"INSERT INTO {table} {render_settings(settings)}"

        def run(session: Any) -> None:
            # A streaming insert: chDB silently inserts nothing for an INSERT … SELECT
            # … FROM input() with inline LineAsString data, so the lines go straight
            # into the (Null engine) landing table and its views do the parsing. The
            # engine parses the pieces as they come (no copy of the whole chunk).
            try:
                with session.send_insert(statement, "LineAsString") as inserter:
                    for buffer in pieces_of(data):
                        view = memoryview(buffer)
                        for start in range(0, len(view), INSERT_PIECE_BYTES):
                            inserter.append(view[start : start + INSERT_PIECE_BYTES])
                    inserter.finish()
            except Exception as exc:
                raise _chdb_failure(exc, statement) from exc

        await sessions.run(run)

    async def release_unused_memory(self) -> int:
        """The engine library's pages that loading it, opening the data and migrating
        left resident (see ``_engine_memory``), the first time in this process."""
        if self._sessions is None or not _ChdbEngine.first_release():
            return 0
        return await asyncio.to_thread(release_engine_pages)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sessions is not None:
            self._sessions = None
            await asyncio.to_thread(_ChdbEngine.release)


# --- a ClickHouse server ------------------------------------------------------------

_NATIVE_SCHEMES = {"clickhouse": "clickhouse", "tcp": "clickhouse", "clickhouses": "clickhouses"}
_RETRYABLE_CODES = {
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
}


def native_url(url: str) -> str:
    """``url`` for the native protocol: ``tcp://`` becomes ``clickhouse://``, and an
    HTTP URL is pointed at the native port (9000, or 9440 with TLS)."""
    parts = urlparse(url)
    scheme = parts.scheme.lower()
    if scheme in _NATIVE_SCHEMES:
        return urlunparse(parts._replace(scheme=_NATIVE_SCHEMES[scheme]))
    if scheme in ("http", "https"):
        secure = scheme == "https"
        port = 9440 if secure else 9000
        auth = ""
        if parts.username is not None:
            auth = parts.username + (f":{parts.password}" if parts.password is not None else "")
            auth += "@"
        netloc = f"{auth}{parts.hostname or 'localhost'}:{port}"
        _log.warning(
            "clickhouse.http_url_mapped",
            url=redact_url(url),
            native=redact_url(urlunparse(parts._replace(netloc=netloc))),
        )
        return urlunparse(
            parts._replace(scheme="clickhouses" if secure else "clickhouse", netloc=netloc)
        )
    raise InvalidInput(
        "a ClickHouse URL starts with clickhouse://, clickhouses://, tcp:// or http(s)://",
        details={"url": redact_url(url)},
    )


class ServerTransport(Transport):
    """A ClickHouse server over the native protocol, one connection per worker thread."""

    kind: ClassVar[str] = "server"

    def __init__(self, url: str, *, threads: int = 4, query_timeout_s: float = 30.0) -> None:
        self.url = native_url(url)
        self._timeout = query_timeout_s
        self._offload = _Offload(threads, "clickhouse")
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_guard = threading.Lock()
        self._closed = False

    @property
    def description(self) -> str:
        return f"ClickHouse server {redact_url(self.url)}"

    def client_kwargs(self) -> tuple[str, dict[str, Any]]:
        """Host and keyword arguments for ``clickhouse_driver.Client`` (typed
        parameters rendered by the server, the query timeout as a setting)."""
        from clickhouse_driver.util.helpers import parse_url

        host, kwargs = parse_url(self.url)
        settings = dict(kwargs.pop("settings", {}) or {})
        settings["server_side_params"] = True
        settings.setdefault("max_execution_time", int(self._timeout))
        kwargs.setdefault("connect_timeout", 5)
        kwargs.setdefault("send_receive_timeout", max(self._timeout, 10))
        kwargs.setdefault("client_name", "mastra-admin")
        return host, {**kwargs, "settings": settings}

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from clickhouse_driver import Client

            host, kwargs = self.client_kwargs()
            client = Client(host, **kwargs)
            self._local.client = client
            with self._clients_guard:
                self._clients.append(client)
        return client

    def _failure(self, exc: Exception, sql: str) -> MastraAdminError:
        from clickhouse_driver import errors

        message = _first_line(exc)
        if isinstance(exc, errors.ServerException):
            if exc.code in _RETRYABLE_CODES:
                return Unavailable(f"ClickHouse cannot serve now: {message}")
            return ClickHouseError(message, details={"statement": sql.strip()[:200]})
        if isinstance(
            exc,
            errors.NetworkError | errors.SocketTimeoutError | OSError | EOFError | socket.error,
        ):
            return Unavailable(
                f"ClickHouse at {redact_url(self.url)} does not answer: {message}",
                details={"url": redact_url(self.url)},
            )
        if isinstance(exc, errors.Error):
            return Unavailable(f"ClickHouse failed: {message}")
        return ClickHouseError(message, details={"statement": sql.strip()[:200]})

    def _run(self, fn: Callable[[Any], T], sql: str) -> T:
        client = self._client()
        try:
            return fn(client)
        except Exception as exc:
            # A broken connection is reopened on the next call.
            try:
                client.disconnect()
            except Exception:  # pragma: no cover - best effort
                pass
            raise self._failure(exc, sql) from exc

    async def execute(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> None:
        if self._closed:
            raise Unavailable("the ClickHouse transport is closed")
        await self._offload.run(self._run, lambda c: c.execute(sql, dict(params or {})), sql)

    async def fetch(self, sql: str, params: Mapping[str, ParamValue] | None = None) -> list[Row]:
        if self._closed:
            raise Unavailable("the ClickHouse transport is closed")

        def query(client: Any) -> list[Row]:
            rows, columns = client.execute(sql, dict(params or {}), with_column_types=True)
            names = [name for name, _type in columns]
            return [dict(zip(names, row, strict=True)) for row in rows]

        return await self._offload.run(self._run, query, sql)

    async def insert_lines(
        self, table: str, data: Lines, settings: Mapping[str, ParamValue]
    ) -> None:
        if self._closed:
            raise Unavailable("the ClickHouse transport is closed")
        statement = f"INSERT INTO {table} (line) VALUES"

        def insert(client: Any) -> None:
            text = b"".join(pieces_of(data)).decode("utf-8", errors="replace")
            rows = [(line,) for line in text.split("\n")[:-1]]
            client.execute(statement, rows, settings=dict(settings))

        await self._offload.run(self._run, insert, statement)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def disconnect_all() -> None:
            with self._clients_guard:
                clients, self._clients = self._clients, []
            for client in clients:
                try:
                    client.disconnect()
                except Exception:  # pragma: no cover - best effort
                    pass

        await asyncio.to_thread(disconnect_all)
        await asyncio.to_thread(self._offload.shutdown)


def default_worker_name() -> str:
    """``host-pid-xxxx``: unique per process, readable in claim folders."""
    host = socket.gethostname().split(".")[0] or "host"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in host)[:40]
    return f"{safe}-{os.getpid()}-{os.urandom(2).hex()}"
