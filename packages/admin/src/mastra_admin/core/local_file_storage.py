"""``LocalFileStorage``: file storage in a folder of this machine.

Writes are atomic and durable (a temp file beside the target, fsync, rename, fsync of
the folder), so a reader sees the old file or the whole new one. Every path is a
relative ``/``-separated key that must stay inside the root, symlinks included.
Blocking file system calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import structlog

from mastra_admin.core.errors import InvalidInput, NotFound, Unavailable
from mastra_admin.core.file_storage import FileInfo, FileStorageProvider

__all__ = ["LocalFileStorage"]

_log = structlog.get_logger("mastra_admin.core.local_file_storage")

_TEMP_MARK = ".tmp-"
"""Temp files are named ``.{name}.tmp-{hex}``: hidden, and never listed."""


def _is_temp(name: str) -> bool:
    return name.startswith(".") and _TEMP_MARK in name


def _unavailable(action: str, path: str, exc: OSError) -> Unavailable:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the storage is full"
    elif exc.errno == errno.EFBIG:
        reason = "the file is larger than this storage allows"
    else:
        reason = exc.strerror or type(exc).__name__
    return Unavailable(
        f"cannot {action} {path!r}: {reason}",
        details={"path": path, "errno": exc.errno},
    )


def _info(path: str, st: os.stat_result) -> FileInfo:
    return FileInfo(
        path=path,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _to_bytes(content: bytes | str) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


class LocalFileStorage(FileStorageProvider):
    """Files under ``root`` (created when missing)."""

    type: ClassVar[str] = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = Path(os.path.realpath(self.root))

    # --- paths -----------------------------------------------------------------

    def _check_key(self, key: str, *, prefix: bool = False) -> list[str]:
        """The key's parts; ``InvalidInput`` for anything that could leave the root."""
        if not isinstance(key, str):
            raise InvalidInput("a file path must be text", details={"path": repr(key)})
        if "\x00" in key:
            raise InvalidInput("a file path may not contain NUL", details={"path": repr(key)})
        if key.startswith(("/", "\\")) or (len(key) > 1 and key[1] == ":"):
            raise InvalidInput("a file path must be relative", details={"path": key})
        parts = key.split("/")
        if prefix and parts and parts[-1] == "":
            parts = parts[:-1]  # "logs/" lists the folder
        if not prefix and (not key or parts[-1] == ""):
            raise InvalidInput("a file path must name a file", details={"path": key})
        for part in parts:
            if part in ("", ".", ".."):
                raise InvalidInput(
                    "a file path may not contain empty, '.' or '..' parts",
                    details={"path": key},
                )
        return parts

    def _resolve(self, key: str) -> Path:
        """The real location of ``key``, refusing one that resolves outside the root."""
        parts = self._check_key(key)
        candidate = self._real_root.joinpath(*parts)
        real = Path(os.path.realpath(candidate))
        if real != self._real_root and self._real_root not in real.parents:
            raise InvalidInput("the file path leads outside the storage", details={"path": key})
        return real

    def local_path(self, path: str) -> str | None:
        return str(self._resolve(path))

    # --- blocking work (run in a thread) ---------------------------------------

    def _write_sync(self, key: str, data: bytes) -> None:
        target = self._resolve(key)
        temp: Path | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}{_TEMP_MARK}{uuid.uuid4().hex}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
            temp = None
            _fsync_dir(target.parent)
        except OSError as exc:
            raise _unavailable("write", key, exc) from exc
        finally:
            if temp is not None:
                try:
                    temp.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:  # pragma: no cover - the disk is failing twice
                    _log.warning("file_storage.temp_left", path=key, error=str(exc))

    def _append_sync(self, key: str, data: bytes) -> None:
        target = self._resolve(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND with one write per call: lines appended by several processes
            # at once do not interleave.
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as exc:
            raise _unavailable("append to", key, exc) from exc

    def _read_sync(self, key: str, offset: int, length: int | None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise InvalidInput("offset and length must not be negative", details={"path": key})
        target = self._resolve(key)
        try:
            with open(target, "rb") as handle:
                handle.seek(offset)
                return handle.read() if length is None else handle.read(length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound("file not found", details={"path": key}) from exc
        except OSError as exc:
            raise _unavailable("read", key, exc) from exc

    def _list_sync(self, prefix: str) -> list[FileInfo]:
        parts = self._check_key(prefix, prefix=True)
        # Walk the deepest folder the prefix names completely; filter by the rest.
        folder_parts = parts if prefix.endswith("/") else parts[:-1]
        start = self._real_root.joinpath(*folder_parts)
        if not start.is_dir():
            return []
        real_start = Path(os.path.realpath(start))
        if real_start != self._real_root and self._real_root not in real_start.parents:
            raise InvalidInput("the prefix leads outside the storage", details={"prefix": prefix})
        found: list[tuple[int, str, os.stat_result]] = []
        for folder, _dirs, files in os.walk(start):
            rel_folder = os.path.relpath(folder, self._real_root)
            for name in files:
                if _is_temp(name):
                    continue
                key = name if rel_folder == "." else f"{rel_folder}/{name}".replace(os.sep, "/")
                if not key.startswith(prefix):
                    continue
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    real = Path(os.path.realpath(full))
                    if self._real_root not in real.parents:
                        continue  # a link out of the storage is not part of it
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue  # deleted while listing
                found.append((st.st_mtime_ns, key, st))
        found.sort(key=lambda item: (item[0], item[1]))
        return [_info(key, st) for _mtime, key, st in found]

    def _stat_sync(self, key: str) -> FileInfo | None:
        target = self._resolve(key)
        try:
            st = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _unavailable("stat", key, exc) from exc
        if not os.path.isfile(target):
            return None
        return _info(key, st)

    def _delete_sync(self, key: str) -> bool:
        target = self._resolve(key)
        try:
            target.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        except IsADirectoryError:
            return False
        except OSError as exc:
            raise _unavailable("delete", key, exc) from exc
        return True

    def _move_sync(self, source: str, target_key: str) -> None:
        origin = self._resolve(source)
        target = self._resolve(target_key)
        if not origin.is_file():
            raise NotFound("file not found", details={"path": source})
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(origin, target)
            _fsync_dir(target.parent)
            if origin.parent != target.parent:
                _fsync_dir(origin.parent)
        except FileNotFoundError as exc:
            raise NotFound("file not found", details={"path": source}) from exc
        except OSError as exc:
            raise _unavailable("move", source, exc) from exc

    # --- the interface ---------------------------------------------------------

    async def write(self, path: str, content: bytes | str) -> None:
        await asyncio.to_thread(self._write_sync, path, _to_bytes(content))

    async def append(self, path: str, content: bytes | str) -> None:
        await asyncio.to_thread(self._append_sync, path, _to_bytes(content))

    async def read(self, path: str, *, offset: int = 0, length: int | None = None) -> bytes:
        return await asyncio.to_thread(self._read_sync, path, offset, length)

    async def list(self, prefix: str = "") -> list[FileInfo]:
        return await asyncio.to_thread(self._list_sync, prefix)

    async def stat(self, path: str) -> FileInfo | None:
        return await asyncio.to_thread(self._stat_sync, path)

    async def delete(self, path: str) -> bool:
        return await asyncio.to_thread(self._delete_sync, path)

    async def move(self, source: str, target: str) -> None:
        await asyncio.to_thread(self._move_sync, source, target)

    def __repr__(self) -> str:
        return f"LocalFileStorage({str(self.root)!r})"
