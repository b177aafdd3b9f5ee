"""Whole responses of read endpoints, kept exactly as fresh as the storage.

An endpoint marked ``cache=True`` answers from storage alone, and its answer depends
on nothing but the stored rows and who asks. Its rendered body is kept per caller and
URL together with the generations of every table the handler read (the storage's
``ChangeTracker`` notes them); it is served again only while none of those tables has
changed, in this process or, through the storage's change notifications, in any
other. Storages without change tracking (``AdminStorage.changes is None``) get no
caching at all. Authentication is never cached here: every request still checks its
credential.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from mastra_admin.core.changes import ChangeTracker, ReadRecord, Snapshot

__all__ = ["ResponseCache"]


class ResponseCache:
    """Bounded by entries and by bytes; the least recently used goes first."""

    def __init__(
        self, tracker: ChangeTracker, *, max_entries: int = 2048, max_bytes: int = 64 << 20
    ) -> None:
        self.tracker = tracker
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Snapshot, bytes]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None:
            snapshot, body = entry
            if self.tracker.valid(snapshot):
                self._entries.move_to_end(key)
                self.hits += 1
                return body
            self._drop(key)
        self.misses += 1
        return None

    def put(self, key: Hashable, record: ReadRecord, body: bytes) -> bool:
        """Keep ``body`` if everything it was made from is watched and unchanged."""
        if not record.complete or not record.versions or len(body) > self.max_bytes // 8:
            return False
        snapshot = self.tracker.snapshot_of(record)
        if not self.tracker.valid(snapshot):
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (snapshot, body)
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: Hashable) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)

    def __len__(self) -> int:
        return len(self._entries)
