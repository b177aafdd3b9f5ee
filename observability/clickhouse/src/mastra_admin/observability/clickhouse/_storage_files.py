"""Collector and writer files in file storage: finding, claiming, batching, finishing.

Files arrive whole (written atomically) as ``{type}/{project_id}/{timestamp}_{uuid}.jsonl``.
A worker claims a file by moving it into its own folder, ``_ingest/claims/{worker}/``:
a move either succeeds or finds the file gone, so two workers never hold one file.
A worker proves it is alive with a heartbeat file; the claims (and the journal) of a
worker silent for longer than the lease are adopted by another worker, by moving
them again. Before each insert the worker writes its journal (the batch: slices and
token) and only after the insert is acknowledged does it move the files to
``processed/`` (or delete them) and clear the journal; a journal found at start-up is
repeated with its token, which ClickHouse deduplicates.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from pydantic import BaseModel, Field

from mastra_admin.core.errors import NotFound
from mastra_admin.core.file_storage import FileInfo, FileStorageProvider
from mastra_admin.observability.clickhouse._batch import Batch, Chunk, Slice, whole_lines
from mastra_admin.observability.clickhouse._transport import INSERT_PIECE_BYTES

__all__ = ["FOLDERS", "Journal", "StorageFiles"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

FOLDERS: dict[str, str] = {
    "spans": "spans",
    "traces": "traces",
    "logs": "logs",
    "metrics": "metrics",
    "scores": "scores",
    "feedback": "feedback",
}
"""Type folder -> signal."""

MOVES_AT_ONCE = 8
"""Files moved at the same time (claims, finished files): each durable move waits for
its folders to reach the disk, which many moves share when they overlap."""

INGEST = "_ingest"
PROCESSED = "processed"
UNKNOWN_PROJECT = "unknown"


class Journal(BaseModel):
    """What a worker must redo or continue after a crash."""

    worker: str
    batch: Batch | None = None
    progress: dict[str, int] = Field(
        default_factory=dict, description="identity -> bytes already ingested (big files)"
    )


@dataclass
class Claimed:
    rel: str
    size: int

    @property
    def folder(self) -> str:
        return self.rel.split("/", 1)[0]

    @property
    def project(self) -> str:
        return self.rel.split("/")[1]


class StorageFiles:
    """The file storage side of one worker."""

    def __init__(
        self,
        storage: FileStorageProvider,
        *,
        worker_id: str,
        base: str = "",
        project_id: str | None = None,
        lease_s: float = 30.0,
        delete_after_process: bool = False,
        chunk_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.storage = storage
        self.worker_id = worker_id
        self.base = base.strip("/") + "/" if base.strip("/") else ""
        self.project_id = project_id
        self.lease_s = lease_s
        self.delete_after_process = delete_after_process
        self.chunk_bytes = chunk_bytes
        self._last_heartbeat = 0.0
        self.oldest_pending: float | None = None
        self.pending_count = 0

    # --- paths ------------------------------------------------------------------------

    def claims_prefix(self, worker: str | None = None) -> str:
        return f"{self.base}{INGEST}/claims/{worker or self.worker_id}/"

    def claim_path(self, rel: str, worker: str | None = None) -> str:
        return self.claims_prefix(worker) + rel

    def processed_path(self, rel: str) -> str:
        return f"{self.base}{PROCESSED}/{rel}"

    def failed_path(self, rel: str) -> str:
        return f"{self.base}{INGEST}/failed/{rel}"

    def journal_path(self, name: str | None = None) -> str:
        return f"{self.base}{INGEST}/journal/{name or self.worker_id}.json"

    def heartbeat_path(self, worker: str | None = None) -> str:
        return f"{self.base}{INGEST}/workers/{worker or self.worker_id}.json"

    def _rel(self, path: str) -> str | None:
        """``{folder}/{project}/{name}`` when ``path`` is a pending event file."""
        if not path.startswith(self.base):
            return None
        rel = path[len(self.base) :]
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] not in FOLDERS or not parts[2].endswith(".jsonl"):
            return None
        if parts[2].startswith("."):
            return None
        if self.project_id is not None and parts[1] != self.project_id:
            return None
        return rel

    # --- liveness ---------------------------------------------------------------------

    async def heartbeat(self, *, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_heartbeat < self.lease_s / 3:
            return
        body = json.dumps({"worker": self.worker_id, "at": now})
        await self.storage.write(self.heartbeat_path(), body)
        self._last_heartbeat = now

    async def retire(self) -> None:
        """Remove this worker's heartbeat (a clean stop: nothing left to adopt)."""
        await self.storage.delete(self.heartbeat_path())

    async def _alive(self, worker: str) -> bool:
        try:
            raw = await self.storage.read(self.heartbeat_path(worker))
            at = float(json.loads(raw)["at"])
        except (NotFound, ValueError, KeyError, TypeError):
            return False
        return time.time() - at <= self.lease_s

    async def adopt_orphans(self) -> int:
        """Take over the claims and journal of workers whose heartbeat is older than
        the lease. Returns the number of files adopted."""
        listing = await self.storage.list(f"{self.base}{INGEST}/")
        owners: dict[str, list[str]] = {}
        journals: dict[str, str] = {}
        for info in listing:
            rest = info.path[len(self.base) + len(INGEST) + 1 :]
            parts = rest.split("/", 2)
            if parts[0] == "claims" and len(parts) == 3 and parts[1] != self.worker_id:
                owners.setdefault(parts[1], []).append(parts[2])
            elif parts[0] == "journal" and len(parts) == 2 and parts[1].endswith(".json"):
                name = parts[1][: -len(".json")]
                owner = name.split("+", 1)[0]
                if owner != self.worker_id:
                    journals[name] = owner
        adopted = 0
        for worker in sorted(set(owners) | set(journals.values())):
            if await self._alive(worker):
                continue
            for name, owner in journals.items():
                if owner != worker:
                    continue
                target = self.journal_path(f"{self.worker_id}+{name.replace('+', '-')}")
                try:
                    await self.storage.move(self.journal_path(name), target)
                except NotFound:
                    continue
            for rel in owners.get(worker, []):
                try:
                    await self.storage.move(self.claim_path(rel, worker), self.claim_path(rel))
                    adopted += 1
                except NotFound:
                    continue
            await self.storage.delete(self.heartbeat_path(worker))
            _log.info("ingest.adopted", worker_id=self.worker_id, from_worker=worker, files=adopted)
        return adopted

    # --- claiming ---------------------------------------------------------------------

    async def pending(self) -> list[FileInfo]:
        """Unclaimed event files, oldest first."""
        found: list[FileInfo] = []
        for folder in FOLDERS:
            for info in await self.storage.list(f"{self.base}{folder}/"):
                if self._rel(info.path) is not None:
                    found.append(info)
        found.sort(key=lambda i: (i.last_modified, i.path))
        self.pending_count = len(found)
        self.oldest_pending = found[0].last_modified.timestamp() if found else None
        return found

    async def _move_all(self, moves: list[tuple[str, str]]) -> list[bool]:
        """Move each (source, target), ``MOVES_AT_ONCE`` at a time; False for a source
        that was gone (another worker was quicker, or it moved before a crash)."""
        gate = asyncio.Semaphore(MOVES_AT_ONCE)

        async def move(source: str, target: str) -> bool:
            async with gate:
                try:
                    await self.storage.move(source, target)
                except NotFound:
                    return False
                return True

        return list(await asyncio.gather(*(move(s, t) for s, t in moves)))

    async def claim(self, files: Iterable[FileInfo], limit: int) -> int:
        candidates = [
            (info.path, self.claim_path(rel))
            for info in files
            if (rel := self._rel(info.path)) is not None
        ]
        taken = 0
        while candidates and taken < limit:
            now, candidates = candidates[: limit - taken], candidates[limit - taken :]
            taken += sum(await self._move_all(now))
        return taken

    async def claimed(self) -> list[Claimed]:
        prefix = self.claims_prefix()
        found = []
        for info in await self.storage.list(prefix):
            rel = info.path[len(prefix) :]
            if rel.count("/") == 2 and rel.split("/", 1)[0] in FOLDERS:
                found.append(Claimed(rel, info.size))
        return found

    async def release(self, keep: set[str]) -> int:
        """Give back claimed files not in ``keep`` (a stop without drain)."""
        released = 0
        for item in await self.claimed():
            if item.rel in keep:
                continue
            try:
                await self.storage.move(self.claim_path(item.rel), self.base + item.rel)
                released += 1
            except NotFound:
                continue
        return released

    # --- journals ---------------------------------------------------------------------

    async def journals(self) -> list[tuple[str, Journal]]:
        """This worker's journal and the ones it adopted (path, journal)."""
        found = []
        prefix = f"{self.base}{INGEST}/journal/"
        for info in await self.storage.list(prefix):
            name = info.path[len(prefix) :]
            if name == f"{self.worker_id}.json" or name.startswith(f"{self.worker_id}+"):
                try:
                    journal = Journal.model_validate_json(await self.storage.read(info.path))
                except NotFound:
                    continue
                except ValueError:
                    _log.warning("ingest.journal_unreadable", path=info.path)
                    continue
                found.append((info.path, journal))
        return found

    async def save_journal(self, journal: Journal) -> None:
        await self.storage.write(self.journal_path(), journal.model_dump_json())

    async def drop_journal(self, path: str | None = None) -> None:
        await self.storage.delete(path or self.journal_path())

    # --- batches ----------------------------------------------------------------------

    def _project_of(self, item: Claimed) -> str:
        return "" if item.project == UNKNOWN_PROJECT else item.project

    async def next_batch(
        self, claimed: list[Claimed], progress: dict[str, int], *, room: int | None = None
    ) -> tuple[Batch, Chunk] | None:
        """The next slices of claimed files of one type and project, up to ``room``
        bytes (default ``chunk_bytes``; at least one line), with their bytes."""
        if not claimed:
            return None
        head = claimed[0]
        group = [c for c in claimed if c.folder == head.folder and c.project == head.project]
        slices: list[Slice] = []
        parts: list[bytes] = []
        room = self.chunk_bytes if room is None else room
        for item in group:
            start = progress.get(item.rel, 0)
            if start >= item.size:
                slices.append(
                    Slice(
                        identity=item.rel,
                        location=self.claim_path(item.rel),
                        start=item.size,
                        end=item.size,
                        eof=True,
                    )
                )
                continue
            if room <= 0:
                break
            pieces = await self._read_lines(self.claim_path(item.rel), start, room, item.size)
            size = sum(len(piece) for piece in pieces)
            end = start + size
            eof = end >= item.size
            slices.append(
                Slice(
                    identity=item.rel,
                    location=self.claim_path(item.rel),
                    start=start,
                    end=end,
                    eof=eof,
                )
            )
            parts += pieces
            if eof and pieces and not pieces[-1].endswith(b"\n"):
                parts.append(b"\n")
            room -= size
        batch = Batch(
            signal=FOLDERS[head.folder],
            project_id=self._project_of(head),
            origin="collector",
            slices=slices,
        )
        return batch, await asyncio.to_thread(Chunk, parts)  # counting 16 MiB: off the loop

    async def _read_lines(self, path: str, start: int, room: int, size: int) -> list[bytes]:
        """Whole lines from ``start``, in pieces of at most ``INSERT_PIECE_BYTES``: at
        most ``room`` bytes unless one line is longer; everything to the end of the
        (complete) file when it fits."""
        pieces: list[bytes] = []
        at, newline = start, False
        while at < size and (at - start < room or not newline):
            step = min(INSERT_PIECE_BYTES, size - at)
            if at - start < room:
                step = min(step, room - (at - start))
            piece = await self.storage.read(path, offset=at, length=step)
            if not piece:
                break
            pieces.append(piece)
            at += len(piece)
            newline = newline or b"\n" in piece
        return pieces if at >= size else whole_lines(pieces)

    async def read_batch(self, batch: Batch) -> Chunk:
        """The lines of a journaled batch, from the claims or from ``processed/``; a
        slice whose file is gone (deleted after its insert) is left out."""
        parts: list[bytes] = []
        for piece in batch.slices:
            if piece.end <= piece.start:
                continue
            for where in (
                self.claim_path(piece.identity),
                piece.location,
                self.processed_path(piece.identity),
            ):
                try:
                    read = await self._read_range(where, piece.start, piece.end)
                    break
                except NotFound:
                    continue
            else:
                continue
            parts += read
            if piece.eof and read and not read[-1].endswith(b"\n"):
                parts.append(b"\n")
        return await asyncio.to_thread(Chunk, parts)

    async def _read_range(self, path: str, start: int, end: int) -> list[bytes]:
        pieces: list[bytes] = []
        while start < end:
            piece = await self.storage.read(
                path, offset=start, length=min(INSERT_PIECE_BYTES, end - start)
            )
            if not piece:
                break
            pieces.append(piece)
            start += len(piece)
        return pieces

    async def finish(self, batch: Batch, progress: dict[str, int]) -> list[str]:
        """After the insert: record progress; move (or delete) the files read to the end.
        Returns the files finished now (not those finished before a crash)."""
        ended = []
        for piece in batch.slices:
            progress[piece.identity] = piece.end
            if piece.eof:
                progress.pop(piece.identity, None)
                ended.append(piece.identity)
        if self.delete_after_process:
            return [rel for rel in ended if await self.storage.delete(self.claim_path(rel))]
        # A file already gone was finished before a crash, or by a worker that adopted it.
        moved = await self._move_all(
            [(self.claim_path(rel), self.processed_path(rel)) for rel in ended]
        )
        return [rel for rel, ok in zip(ended, moved, strict=True) if ok]

    async def quarantine(self, batch: Batch, progress: dict[str, int]) -> None:
        """Set aside the files of a batch ClickHouse keeps refusing."""
        for piece in batch.slices:
            try:
                await self.storage.move(
                    self.claim_path(piece.identity), self.failed_path(piece.identity)
                )
            except NotFound:
                pass
            progress.pop(piece.identity, None)
