"""Change notifications and the read cache they make safe.

Migration 0003 makes every statement that changes a watched table announce
``<schema>.<table>`` on the ``mastra_admin_changes`` channel when it commits. Each
storage keeps one connection that ``LISTEN``s and feeds a ``ChangeTracker``; its own
writes bump the tables they touch (and the tables their cascades reach) before the
call returns, so a process always reads its own writes, and other processes' writes
as soon as their notification arrives (well under a millisecond on one host).

While the listening connection is down or unchecked, the tracker is not live and
nothing is served from a cache; when it is back, everything cached before is dropped.
A heartbeat on the listening connection notices a dead server within seconds; a lost
connection is retried with backoff (up to 5 s), or at once when the storage knows
the server is back (``retry_now``, after the embedded server was restarted).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog

from mastra_admin.core.changes import ChangeTracker, Snapshot

__all__ = ["CHANNEL", "ChangeListener", "QueryCache", "StatementTables", "statement_tables"]

_log = structlog.get_logger("mastra_admin.stores.pg")

CHANNEL = "mastra_admin_changes"

_OBJECT = re.compile(r"\{schema\}\.(\w+)")
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+\{schema\}\.(\w+)",
    re.IGNORECASE,
)
# Anything whose answer depends on the moment, not on the tables, is never cached.
_VOLATILE = re.compile(
    r"\b(?:now|clock_timestamp|statement_timestamp|random|nextval|pg_\w+)\s*\(|"
    r"\bcurrent_(?:timestamp|date|time)\b|\bFOR\s+UPDATE\b|\bSKIP\s+LOCKED\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class StatementTables:
    """What one query text reads and writes (the schema's objects it names)."""

    reads: frozenset[str]
    writes: frozenset[str]
    volatile: bool

    @property
    def is_read(self) -> bool:
        return not self.writes and not self.volatile


_ANALYSED: dict[str, StatementTables] = {}


def statement_tables(query: str) -> StatementTables:
    """The objects a query names through ``{schema}.`` (every query of the stores
    does), and those it writes; cached per query text."""
    found = _ANALYSED.get(query)
    if found is None:
        named = frozenset(_OBJECT.findall(query))
        writes = frozenset(_WRITE.findall(query))
        found = _ANALYSED[query] = StatementTables(
            reads=named, writes=writes, volatile=bool(_VOLATILE.search(query))
        )
    return found


class QueryCache:
    """Rows of read statements, by query text and parameters, while the tables they
    came from have not changed. Bounded (least recently used goes first)."""

    def __init__(self, tracker: ChangeTracker, *, max_entries: int = 4096) -> None:
        self.tracker = tracker
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Snapshot, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(query: str, params: Any) -> Hashable | None:
        """A key for the call, or ``None`` when its parameters cannot be one."""
        if params is None:
            return (query,)
        if isinstance(params, dict):
            frozen: Any = tuple(sorted(params.items()))
        elif isinstance(params, Sequence) and not isinstance(params, str | bytes):
            frozen = tuple(params)
        else:
            return None
        try:
            hash(frozen)
        except TypeError:
            return None
        return (query, frozen)

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        snapshot, value = entry
        if not self.tracker.valid(snapshot):
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, snapshot: Snapshot, value: Any) -> None:
        if not self.tracker.valid(snapshot):
            return  # changed while it was being read
        entries = self._entries
        entries[key] = (snapshot, value)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_WATCHED_SQL = """
SELECT c.relname
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND t.tgname = c.relname || '_notify_change' AND NOT t.tgisinternal
"""

# Tables a delete in the parent reaches through ON DELETE CASCADE / SET NULL / SET DEFAULT.
_CASCADES_SQL = """
SELECT parent.relname AS parent, child.relname AS child
  FROM pg_constraint k
  JOIN pg_class parent ON parent.oid = k.confrelid
  JOIN pg_class child ON child.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = child.relnamespace
 WHERE k.contype = 'f' AND k.confdeltype IN ('c', 'n', 'd') AND n.nspname = %s
"""


class ChangeListener:
    """The ``LISTEN`` connection of one storage, kept up in a background task."""

    def __init__(
        self,
        conninfo: str,
        schema: str,
        tracker: ChangeTracker,
        *,
        heartbeat_s: float = 2.0,
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.tracker = tracker
        self.heartbeat_s = heartbeat_s
        self._on_reset = on_reset
        self._task: asyncio.Task[None] | None = None
        self._cascades: dict[str, frozenset[str]] = {}
        self._first_live = asyncio.Event()
        self.backend_pid: int | None = None
        self._went_live = False
        self._retry = asyncio.Event()

    def touched(self, written: frozenset[str]) -> set[str]:
        """The written tables and every table their deletes cascade to."""
        reached = set(written)
        pending = list(written)
        while pending:
            for child in self._cascades.get(pending.pop(), ()):
                if child not in reached:
                    reached.add(child)
                    pending.append(child)
        return reached

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening; return once live (or after ``wait_s``, not live yet)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pg-changes-{self.schema}")
        try:
            await asyncio.wait_for(self._first_live.wait(), wait_s)
        except TimeoutError:
            _log.warning("pg.changes_not_live", schema=self.schema, waited_s=wait_s)

    def retry_now(self) -> None:
        """The server is back: end the backoff and connect again now."""
        self._retry.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.tracker.suspend()
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        delay = 0.1
        while True:
            self._went_live = False
            try:
                await self._listen()  # returns only by raising; it resets on the way out
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._went_live:  # lost after working: warn, and retry soon
                    _log.warning("pg.changes_lost", schema=self.schema, error=str(exc))
                    delay = 0.1
                try:
                    await asyncio.wait_for(self._retry.wait(), delay)
                    delay = 0.1  # told the server is back
                except TimeoutError:
                    delay = min(delay * 2, 5.0)
                self._retry.clear()

    def _reset(self) -> None:
        self.tracker.suspend()
        if self._on_reset is not None:
            self._on_reset()

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        self.backend_pid = conn.info.backend_pid
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            async with conn.cursor() as cur:
                await cur.execute(_WATCHED_SQL, (self.schema,))
                watched = [str(row[0]) for row in await cur.fetchall()]
                await cur.execute(_CASCADES_SQL, (self.schema,))
                cascades: dict[str, set[str]] = {}
                for parent, child in await cur.fetchall():
                    cascades.setdefault(str(parent), set()).add(str(child))
            self._cascades = {k: frozenset(v) for k, v in cascades.items()}
            # From here on every commit reaches this connection: what was cached
            # before can go, and caching may start.
            self._reset()
            self.tracker.resume(watched)
            self._went_live = True
            self._retry.clear()
            self._first_live.set()
            _log.info("pg.changes_live", schema=self.schema, watched=len(watched))
            prefix = self.schema + "."
            while True:
                async for notice in conn.notifies(timeout=self.heartbeat_s):
                    if notice.payload.startswith(prefix):
                        self.tracker.changed((notice.payload[len(prefix) :],))
                # Quiet for a while: make sure the connection is still there.
                await asyncio.wait_for(conn.execute("SELECT 1"), self.heartbeat_s)
        finally:
            self._reset()
            await conn.close()
