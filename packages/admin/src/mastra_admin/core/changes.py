"""What a storage's tables looked like when a value was read, so that caches above the
storage know when that value is stale.

A storage that can tell every process about every committed change (PostgreSQL's
``LISTEN``/``NOTIFY``, say) keeps a ``ChangeTracker``: one generation per table, bumped
by its own writes at once and by other processes' writes when their notification
arrives. A cached value remembers the generations of the tables it was read from
(a ``Snapshot``) and is good while they have not moved. While the storage cannot vouch
for delivery (the notification connection is down, or not yet up) the tracker is not
``live`` and caches neither answer nor store anything.

Only storages with such a feed set ``AdminStorage.changes``; without one nothing above
the storage caches, which is always correct.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["ChangeTracker", "ReadRecord", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The generations of some tables at one moment (and the tracker's epoch, which
    moves when every cached value must go at once)."""

    epoch: int
    versions: tuple[tuple[str, int], ...]


@dataclass(slots=True)
class ReadRecord:
    """The tables read while it was open, each with its generation *before* the read;
    ``complete`` turns false when something was read that the tracker cannot watch."""

    epoch: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    complete: bool = True


_RECORD: ContextVar[ReadRecord | None] = ContextVar("mastra_admin_read_record", default=None)


class ChangeTracker:
    """Per-table generations of one storage.

    ``watched`` are the tables whose every change is announced; a read of any other
    table can be served but not cached.
    """

    def __init__(self, watched: Iterable[str] = ()) -> None:
        self.watched: frozenset[str] = frozenset(watched)
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self._live = False

    # --- state -----------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether every change is known to reach this tracker now."""
        return self._live

    def resume(self, watched: Iterable[str] | None = None) -> None:
        """Changes are delivered again (from now on): drop everything read before."""
        if watched is not None:
            self.watched = frozenset(watched)
        self._epoch += 1
        self._live = True

    def suspend(self) -> None:
        """Changes may be missed from now on: stop answering from caches."""
        self._live = False
        self._epoch += 1

    # --- changes ---------------------------------------------------------------------

    def changed(self, tables: Iterable[str]) -> None:
        """These tables changed (a local write, or a notification)."""
        generations = self._generations
        for table in tables:
            generations[table] = generations.get(table, 0) + 1

    # --- reads -----------------------------------------------------------------------

    def snapshot(self, tables: Iterable[str]) -> Snapshot:
        generations = self._generations
        return Snapshot(
            self._epoch, tuple((table, generations.get(table, 0)) for table in sorted(tables))
        )

    def snapshot_of(self, record: ReadRecord) -> Snapshot:
        return Snapshot(record.epoch, tuple(sorted(record.versions.items())))

    def valid(self, snapshot: Snapshot) -> bool:
        """Whether a value read at ``snapshot`` may still be served."""
        if not self._live or snapshot.epoch != self._epoch:
            return False
        generations = self._generations
        for table, version in snapshot.versions:  # noqa: SIM110 - a loop: every request
            if generations.get(table, 0) != version:
                return False
        return True

    def cacheable(self, tables: Iterable[str]) -> bool:
        return self._live and all(table in self.watched for table in tables)

    @contextmanager
    def recording(self) -> Iterator[ReadRecord]:
        """Collect the tables read inside the block (across awaits of this task)."""
        outer = _RECORD.get()
        record = ReadRecord(epoch=self._epoch)
        token = _RECORD.set(record)
        try:
            yield record
        finally:
            _RECORD.reset(token)
            if outer is not None:  # what an inner block read, the outer one read too
                outer.complete = outer.complete and record.complete
                for table, version in record.versions.items():
                    outer.versions.setdefault(table, version)

    def note_reuse(self, snapshot: Snapshot) -> None:
        """A value read at ``snapshot`` (still valid) is used again: whatever is being
        recorded now depends on the same tables."""
        record = _RECORD.get()
        if record is None:
            return
        for table, version in snapshot.versions:
            record.versions.setdefault(table, version)

    def note_read(self, tables: Iterable[str] | None) -> None:
        """Called by the storage before it reads ``tables`` (``None``: something it
        cannot name or watch)."""
        record = _RECORD.get()
        if record is None:
            return
        if tables is None:
            record.complete = False
            return
        generations = self._generations
        for table in tables:
            if table not in self.watched:
                record.complete = False
            record.versions.setdefault(table, generations.get(table, 0))
