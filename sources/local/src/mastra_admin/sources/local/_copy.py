"""Copies a project folder into a build directory: complete, faithful, and contained.

One thread walks the source with ``os.scandir`` and creates the folders; a small
thread pool copies the files (``copy_file_range`` where the kernel has it). Every
file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` inside folders this copy made
itself, so nothing is ever written outside the target, even if something races us.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from mastra_admin.core.errors import BuildFailed, Conflict, InvalidInput
from mastra_admin.sources.local._patterns import NamePatterns
from mastra_admin.sources.local._settings import ALWAYS_EXCLUDED

__all__ = ["CopyStats", "ProjectCopier"]

log = structlog.get_logger(__name__)

_ALWAYS = frozenset(ALWAYS_EXCLUDED)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 32
_BUFFER = 1024 * 1024
_NO_COPY_FILE_RANGE = {errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


class _CopyCancelledError(Exception):
    pass


@dataclass
class CopyStats:
    """What one copy did."""

    files: int = 0
    folders: int = 0
    symlinks: int = 0
    bytes: int = 0
    excluded: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Capabilities:
    copy_file_range = hasattr(os, "copy_file_range")


def _copy_data(fd_in: int, fd_out: int, size: int) -> int:
    copied = 0
    if _Capabilities.copy_file_range:
        try:
            while copied < size:
                n = os.copy_file_range(fd_in, fd_out, size - copied)
                if n == 0:
                    break
                copied += n
        except OSError as exc:
            if copied or exc.errno not in _NO_COPY_FILE_RANGE:
                raise
            if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
                _Capabilities.copy_file_range = False
        else:
            return copied
    while True:
        chunk = os.read(fd_in, _BUFFER)
        if not chunk:
            return copied
        view = memoryview(chunk)
        while view:
            written = os.write(fd_out, view)
            view = view[written:]
        copied += len(chunk)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _TreeCopy:
    """One copy of ``root`` into ``target``; runs in a worker thread."""

    def __init__(
        self,
        root: str,
        target: str,
        exclude: NamePatterns,
        pool: ThreadPoolExecutor | None,
        stop: threading.Event,
        project_id: str,
    ) -> None:
        self.root = root
        self.target = target
        self.exclude = exclude
        self.pool = pool
        self.stop = stop
        self.project_id = project_id
        self.stats = CopyStats()
        self._lock = threading.Lock()

    # -- files (pool threads) -------------------------------------------------

    def _copy_files(self, batch: list[tuple[str, str, str]]) -> tuple[int, int]:
        files = size = 0
        for src, dst, relative in batch:
            if self.stop.is_set():
                raise _CopyCancelledError
            copied = self._copy_file(src, dst, relative)
            if copied is not None:
                files += 1
                size += copied
        return files, size

    def _copy_file(self, src: str, dst: str, relative: str) -> int | None:
        try:
            fd_in = os.open(src, _READ_FLAGS)
        except FileNotFoundError:
            return None  # removed while we copied: a copy of the project as it is now
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._skip(relative, "became a symlink while copying")
                return None
            raise BuildFailed(
                "copy",
                f"cannot read {relative!r} in the project: {exc.strerror or exc}",
                details={"path": relative},
            ) from exc
        try:
            info = os.fstat(fd_in)
            if not stat.S_ISREG(info.st_mode):
                self._skip(relative, "is not a regular file")
                return None
            fd_out = os.open(dst, _WRITE_FLAGS, 0o600)
            try:
                copied = _copy_data(fd_in, fd_out, info.st_size)
                os.fchmod(fd_out, stat.S_IMODE(info.st_mode))
                os.utime(fd_out, ns=(info.st_atime_ns, info.st_mtime_ns))
            finally:
                os.close(fd_out)
            return copied
        except OSError as exc:
            raise BuildFailed(
                "copy",
                f"cannot copy {relative!r}: {exc.strerror or exc}",
                details={"path": relative},
            ) from exc
        finally:
            os.close(fd_in)

    def _skip(self, relative: str, reason: str) -> None:
        with self._lock:
            self.stats.skipped.append(relative)
        log.warning("source.copy.skipped", project_id=self.project_id, path=relative, reason=reason)

    # -- symlinks -------------------------------------------------------------

    def _copy_symlink(self, src: str, dst: str, relative: str) -> None:
        text = os.readlink(src)
        resolved = os.path.realpath(src)
        if not _within(resolved, self.root):
            self._skip(relative, "symlink points outside the project")
            return
        parent = os.path.dirname(relative)
        lexical = os.path.normpath(os.path.join(parent, text)) if not os.path.isabs(text) else ""
        if not lexical or lexical == ".." or lexical.startswith(".." + os.sep):
            # Absolute, or leaving the project on the way: re-express from inside so
            # that the copy never points back at the source folder.
            text = os.path.relpath(resolved, os.path.join(self.root, parent))
        os.symlink(text, dst)
        self.stats.symlinks += 1

    # -- the walk (calling thread) ----------------------------------------------

    def run(self) -> CopyStats:
        started = time.perf_counter()
        folders: list[tuple[str, os.stat_result]] = []
        pending: list[Future[tuple[int, int]]] = []
        batch: list[tuple[str, str, str]] = []
        stack: list[tuple[str, str, str]] = [(self.root, self.target, "")]

        def flush() -> None:
            nonlocal batch
            if not batch:
                return
            if self.pool is None:
                files, size = self._copy_files(batch)
                self.stats.files += files
                self.stats.bytes += size
            else:
                pending.append(self.pool.submit(self._copy_files, batch))
            batch = []

        try:
            while stack:
                if self.stop.is_set():
                    raise _CopyCancelledError
                src_dir, dst_dir, relative = stack.pop()
                try:
                    with os.scandir(src_dir) as listing:
                        entries = list(listing)
                except OSError as exc:
                    raise BuildFailed(
                        "copy",
                        f"cannot list {relative or '.'!r} in the project: {exc.strerror or exc}",
                        details={"path": relative or "."},
                    ) from exc
                for entry in entries:
                    name = entry.name
                    child = f"{relative}/{name}" if relative else name
                    if name in _ALWAYS or self.exclude.matches(name, child):
                        self.stats.excluded += 1
                        continue
                    dst = os.path.join(dst_dir, name)
                    if entry.is_symlink():
                        self._copy_symlink(entry.path, dst, child)
                    elif entry.is_dir(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        os.mkdir(dst, 0o700)
                        folders.append((dst, info))
                        stack.append((entry.path, dst, child))
                    elif entry.is_file(follow_symlinks=False):
                        batch.append((entry.path, dst, child))
                        if len(batch) >= _CHUNK:
                            flush()
                    else:
                        self._skip(child, "is not a regular file, folder or symlink")
            flush()
            for future in pending:
                files, size = future.result()
                self.stats.files += files
                self.stats.bytes += size
        except BaseException:
            self.stop.set()
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    # Wait for workers still writing; the first error is re-raised below.
                    with contextlib.suppress(BaseException):
                        future.result()
            raise
        # Folder modes last and deepest first, so read-only folders could be filled.
        for dst, info in reversed(folders):
            os.chmod(dst, stat.S_IMODE(info.st_mode), follow_symlinks=False)
            os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
        self.stats.folders = len(folders)
        self.stats.seconds = time.perf_counter() - started
        return self.stats


def _prepare_target(root: str, target: Path) -> tuple[str, bool]:
    """The absolute target folder, created if absent; refuses non-empty targets, targets
    that are symlinks, and targets inside the project (or holding it)."""
    absolute = os.path.abspath(target)
    if os.path.islink(absolute):
        raise InvalidInput(
            f"build directory {absolute} is a symlink", details={"target_dir": absolute}
        )
    parent_real = os.path.realpath(os.path.dirname(absolute))
    real = os.path.join(parent_real, os.path.basename(absolute))
    if _within(real, root) or _within(root, real):
        raise InvalidInput(
            f"build directory {absolute} overlaps the project folder",
            details={"target_dir": absolute},
        )
    os.makedirs(parent_real, exist_ok=True)
    try:
        os.mkdir(real, 0o755)
    except FileExistsError:
        if not os.path.isdir(real):
            raise InvalidInput(
                f"build directory {absolute} exists and is not a folder",
                details={"target_dir": absolute},
            ) from None
        with os.scandir(real) as listing:
            if any(True for _ in listing):
                raise Conflict(
                    f"build directory {absolute} is not empty", details={"target_dir": absolute}
                ) from None
        return real, False
    return real, True


def _clear(target: str, created: bool) -> None:
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    with os.scandir(target) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


class ProjectCopier:
    """Copies projects into build directories; one thread pool shared by all copies."""

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _get_pool(self) -> ThreadPoolExecutor | None:
        if self.workers <= 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="mastra-source-copy"
                )
            return self._pool

    def copy_blocking(
        self,
        root: Path,
        target: Path,
        *,
        exclude: NamePatterns,
        project_id: str = "",
        stop: threading.Event | None = None,
    ) -> tuple[Path, CopyStats]:
        """Copy ``root`` (absolute, resolved) into ``target``; returns the copy's root.

        On any failure or cancellation the partial copy is removed."""
        stop = stop or threading.Event()
        root_str = str(root)
        try:
            target_str, created = _prepare_target(root_str, target)
        except OSError as exc:
            raise BuildFailed(
                "copy",
                f"cannot use build directory {target}: {exc.strerror or exc}",
                details={"target_dir": str(target)},
            ) from exc
        tree = _TreeCopy(root_str, target_str, exclude, self._get_pool(), stop, project_id)
        try:
            stats = tree.run()
        except BaseException as exc:
            _clear(target_str, created)
            if isinstance(exc, OSError):
                # Writing failed (disk full, permissions of the build directory).
                raise BuildFailed(
                    "copy",
                    f"copying into {target} failed: {exc.strerror or exc}",
                    details={"target_dir": str(target)},
                ) from exc
            raise
        return Path(target_str), stats

    async def copy(
        self, root: Path, target: Path, *, exclude: NamePatterns, project_id: str = ""
    ) -> tuple[Path, CopyStats]:
        """``copy_blocking`` in a thread. Cancelling stops the copy promptly and waits
        until the partial copy is removed, so a cancelled build leaves nothing behind."""
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            None,
            lambda: self.copy_blocking(
                root, target, exclude=exclude, project_id=project_id, stop=stop
            ),
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(Exception):
                await future
            raise
        except _CopyCancelledError:  # pragma: no cover - only raised when stop is set above
            raise asyncio.CancelledError from None

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
