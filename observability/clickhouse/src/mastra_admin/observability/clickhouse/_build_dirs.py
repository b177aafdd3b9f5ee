"""Per-build observability folders, tailed while their server may still append.

A build folder's ``observability/`` holds ``spans/*.jsonl`` (the FileExporter),
``logs/*.jsonl`` (pino), ``runtime/*`` (the server's captured stdout and stderr) and
``meta.json`` (``project_id``, ``deployment_id``, ``build_id``, written by the runner).
Each file is read from a saved offset, whole lines only. A file is known by a
fingerprint of its first bytes: when those change, or the file is shorter than its
offset, it is a new file (a new generation) read again from 0. The state lives in
``observability/.ingest-state.json``; ``observability/.ingest.lock`` (``flock``)
keeps two workers out of one folder, and is released by the kernel if a worker dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import BaseModel, Field

from mastra_admin.observability.clickhouse._batch import Batch, Chunk, Slice, whole_lines
from mastra_admin.observability.clickhouse._runtime import before_last_record
from mastra_admin.observability.clickhouse._transport import INSERT_PIECE_BYTES

__all__ = ["BuildDir", "TailFile", "TailState", "find_build_dirs"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

FINGERPRINT_BYTES = 1024
MAX_BATCHES_PER_PASS = 32
"""Batches taken from one stream of one build per pass, so that others get their turn."""
STATE_FILE = ".ingest-state.json"
LOCK_FILE = ".ingest.lock"

_SIGNAL_DIRS = (("spans", "spans"), ("logs", "logs"), ("runtime", "runtime"))


class TailFile(BaseModel):
    fingerprint: str = ""
    fp_len: int = 0
    generation: int = 0
    offset: int = 0


class TailState(BaseModel):
    files: dict[str, TailFile] = Field(default_factory=dict)
    pending: Batch | None = None


def find_build_dirs(roots: list[str]) -> list[Path]:
    """The ``observability`` folders of every build under ``roots`` (a root may also
    be one build folder itself)."""
    found: list[Path] = []
    for root in roots:
        base = Path(root)
        if (base / "observability").is_dir():
            found.append(base / "observability")
        try:
            children = sorted(base.iterdir())
        except OSError:
            continue
        for child in children:
            obs = child / "observability"
            if obs.is_dir():
                found.append(obs)
    return found


def _fingerprint(path: Path, length: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read(length), usedforsecurity=False).hexdigest()


def _origin(name: str) -> str:
    lowered = name.lower()
    if "stderr" in lowered:
        return "stderr"
    if "stdout" in lowered:
        return "stdout"
    return "runtime"


@dataclass
class _Candidate:
    rel: str
    path: Path
    signal: str
    origin: str
    size: int


class BuildDir:
    """One build's ``observability`` folder (all calls are blocking: run in a thread)."""

    def __init__(self, path: Path, *, chunk_bytes: int) -> None:
        self.path = path
        self.chunk_bytes = chunk_bytes
        """Most bytes the next batch reads (the worker sets it before each batch)."""
        self._lock_fd: int | None = None

    @property
    def key(self) -> str:
        return self.path.parent.name

    @contextlib.contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the folder's lock; yields False when another worker holds it."""
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def meta(self) -> dict[str, str]:
        try:
            raw = json.loads((self.path / "meta.json").read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {k: str(v) for k, v in raw.items() if isinstance(v, str | int) and v != ""}

    def load(self) -> TailState:
        try:
            return TailState.model_validate_json((self.path / STATE_FILE).read_bytes())
        except FileNotFoundError:
            return TailState()
        except ValueError:
            _log.warning("ingest.tail_state_unreadable", path=str(self.path / STATE_FILE))
            return TailState()

    def save(self, state: TailState) -> None:
        target = self.path / STATE_FILE
        temp = target.with_name(f".{STATE_FILE}.tmp-{os.getpid()}")
        with open(temp, "wb") as handle:
            handle.write(state.model_dump_json().encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)

    def _candidates(self) -> list[_Candidate]:
        found = []
        for folder, signal in _SIGNAL_DIRS:
            directory = self.path / folder
            try:
                entries = sorted(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                try:
                    size = entry.stat().st_size
                except OSError:
                    continue
                origin = _origin(entry.name) if signal == "runtime" else "file"
                found.append(_Candidate(f"{folder}/{entry.name}", entry, signal, origin, size))
        return found

    def _track(self, state: TailState, item: _Candidate) -> TailFile:
        """The file's entry, starting a new generation when it was replaced or cut."""
        entry = state.files.get(item.rel)
        if entry is None:
            entry = state.files[item.rel] = TailFile()
        # The size listed at the start of the pass is stale once a batch of this pass
        # has read further into a growing file; judging truncation by it would take
        # a file still being appended to for a new one and read it all again.
        with contextlib.suppress(OSError):
            item.size = item.path.stat().st_size
        restart = item.size < entry.offset
        if not restart and entry.fp_len:
            restart = _fingerprint(item.path, entry.fp_len) != entry.fingerprint
        if restart:
            _log.info(
                "ingest.tail_restarted",
                file=str(item.path),
                offset=entry.offset,
                size=item.size,
            )
            entry = state.files[item.rel] = TailFile(generation=entry.generation + 1)
        if entry.fp_len < FINGERPRINT_BYTES and item.size > entry.fp_len:
            entry.fp_len = min(item.size, FINGERPRINT_BYTES)
            entry.fingerprint = _fingerprint(item.path, entry.fp_len)
        return entry

    def identity(self, rel: str, entry: TailFile) -> str:
        return f"build:{self.key}/{rel}#{entry.generation}"

    def batches(self, state: TailState) -> Iterator[tuple[Batch, Chunk]]:
        """New whole lines of every file, in batches per signal and stream, each read
        after the previous one was committed."""
        meta = self.meta()
        candidates = self._candidates()
        present = {item.rel for item in candidates}
        for rel in [rel for rel in state.files if rel not in present]:
            del state.files[rel]  # rotated away or deleted: forget it
        groups: dict[tuple[str, str], list[_Candidate]] = {}
        for item in candidates:
            groups.setdefault((item.signal, item.origin), []).append(item)
        for (signal, origin), items in groups.items():
            for _ in range(MAX_BATCHES_PER_PASS):
                # Lazily: the offsets read here were moved by the commit of the last batch.
                item_batch = self._next_batch(state, items, signal, origin, meta)
                if item_batch is None:
                    break
                yield item_batch

    def _next_batch(
        self,
        state: TailState,
        items: list[_Candidate],
        signal: str,
        origin: str,
        meta: dict[str, str],
    ) -> tuple[Batch, Chunk] | None:
        room = self.chunk_bytes
        slices: list[Slice] = []
        parts: list[bytes] = []
        for item in items:
            if room <= 0:
                break
            entry = self._track(state, item)
            if item.size <= entry.offset:
                continue
            pieces = self._read_lines(item.path, entry.offset, room)
            if signal == "runtime" and entry.offset + sum(map(len, pieces)) < item.size:
                # More follows: the last record's continuation lines may be in it.
                pieces = before_last_record(pieces)
            size = sum(len(piece) for piece in pieces)
            if not size:
                continue
            slices.append(
                Slice(
                    identity=self.identity(item.rel, entry),
                    location=str(item.path),
                    start=entry.offset,
                    end=entry.offset + size,
                )
            )
            parts += pieces
            room -= size
        if not slices:
            return None
        batch = Batch(
            signal=signal,
            project_id=meta.get("project_id", ""),
            deployment_id=meta.get("deployment_id", ""),
            origin=origin,
            slices=slices,
        )
        return batch, Chunk(parts)

    @staticmethod
    def _read_lines(path: Path, start: int, room: int) -> list[bytes]:
        """The whole lines from ``start``, in pieces of at most ``INSERT_PIECE_BYTES``:
        at most ``room`` bytes unless the first line is longer (then up to the end of
        the piece holding its end); [] while a line is not finished."""
        pieces: list[bytes] = []
        total, newline = 0, False
        with open(path, "rb") as handle:
            handle.seek(start)
            while total < room or not newline:
                want = min(INSERT_PIECE_BYTES, room - total) if total < room else INSERT_PIECE_BYTES
                piece = handle.read(want)
                if not piece:
                    break
                pieces.append(piece)
                total += len(piece)
                newline = newline or b"\n" in piece
        return whole_lines(pieces)

    def read_batch(self, batch: Batch) -> Chunk:
        """The lines of a journaled batch (the file may have been cut since: then
        what is there now)."""
        parts: list[bytes] = []
        for piece in batch.slices:
            try:
                with open(piece.location, "rb") as handle:
                    handle.seek(piece.start)
                    left, read = piece.end - piece.start, []
                    while left > 0 and (data := handle.read(min(INSERT_PIECE_BYTES, left))):
                        read.append(data)
                        left -= len(data)
            except OSError:
                continue
            parts += whole_lines(read)
        return Chunk(parts)

    def commit(self, state: TailState, batch: Batch) -> None:
        """After the insert: move each file's offset past its slice."""
        for piece in batch.slices:
            for rel, entry in state.files.items():
                if self.identity(rel, entry) == piece.identity:
                    entry.offset = max(entry.offset, piece.end)
        state.pending = None
