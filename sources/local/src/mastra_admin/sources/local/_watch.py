"""Watches one project folder and yields one batch of changes per burst.

Recursive OS watches on ``node_modules`` would cost thousands of inotify watches, so
the project root is watched on its own (not recursively) and each of its other
top-level folders recursively; the recursive watcher is restarted when a top-level
folder appears or goes. Bursts are debounced here, across both watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import structlog
import watchfiles

from mastra_admin.core.source import ChangeEvent, ChangeType

__all__ = ["ProjectWatch", "collapse_changes"]

log = structlog.get_logger(__name__)

_TYPES = {
    watchfiles.Change.added: ChangeType.ADD,
    watchfiles.Change.modified: ChangeType.CHANGE,
    watchfiles.Change.deleted: ChangeType.UNLINK,
}
_RUST_TIMEOUT_MS = 500
_STEP_MS = 30


def collapse_changes(changes: Iterable[tuple[ChangeType, str]]) -> list[ChangeEvent]:
    """One event per path for a burst, in path order: created-then-changed is an add,
    changed-then-removed an unlink, removed-then-created a change, and a file both
    created and removed within the burst is left out."""
    first: dict[str, ChangeType] = {}
    last: dict[str, ChangeType] = {}
    for change, path in changes:
        first.setdefault(path, change)
        last[path] = change
    events: list[ChangeEvent] = []
    for path in sorted(first):
        start, end = first[path], last[path]
        if end is ChangeType.UNLINK:
            if start is ChangeType.ADD:
                continue
            kind = ChangeType.UNLINK
        elif start is ChangeType.ADD:
            kind = ChangeType.ADD
        else:
            kind = ChangeType.CHANGE
        events.append(ChangeEvent(type=kind, path=path))
    return events


class _WatcherThread:
    """``watchfiles.watch`` in a daemon thread, feeding raw changes to the event loop."""

    def __init__(
        self,
        paths: list[str],
        *,
        recursive: bool,
        force_polling: bool | None,
        emit: Callable[[set[tuple[watchfiles.Change, str]]], None],
    ) -> None:
        self.paths = paths
        self.recursive = recursive
        self.force_polling = force_polling
        self.emit = emit
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mastra-source-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for changes in watchfiles.watch(
                *self.paths,
                watch_filter=None,
                debounce=_STEP_MS * 4,
                step=_STEP_MS,
                stop_event=self.stop_event,
                rust_timeout=_RUST_TIMEOUT_MS,
                recursive=self.recursive,
                force_polling=self.force_polling,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self.emit(changes)
        except Exception as exc:
            # A folder removed before its watch started: the root watcher sees the
            # removal and the recursive watcher is restarted.
            log.warning("source.watch.failed", error=str(exc), recursive=self.recursive)

    def stop(self) -> None:
        self.stop_event.set()


class ProjectWatch:
    """The changes under one project root, as debounced batches of ``ChangeEvent``.

    ``is_ignored(name, relative)`` drops changes below folders that never reach a
    build (``node_modules``, ``.git`` ...). Paths in events are relative to the root,
    with ``/`` as separator.
    """

    def __init__(
        self,
        root: Path,
        *,
        is_ignored: Callable[[str, str], bool],
        debounce_ms: int,
        max_wait_ms: int,
        force_polling: bool | None = None,
    ) -> None:
        self.root = root
        self.is_ignored = is_ignored
        self.debounce_s = debounce_ms / 1000
        self.max_wait_s = max_wait_ms / 1000
        self.force_polling = force_polling
        self._queue: asyncio.Queue[set[tuple[watchfiles.Change, str]] | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[_WatcherThread] = []
        self._deep: _WatcherThread | None = None
        self._deep_dirs: frozenset[str] = frozenset()
        self._stopped = False

    # -- threads --------------------------------------------------------------

    def _emit(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or self._stopped:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            loop.call_soon_threadsafe(queue.put_nowait, changes)

    def _top_level_dirs(self) -> frozenset[str]:
        try:
            with os.scandir(self.root) as listing:
                return frozenset(
                    entry.name
                    for entry in listing
                    if entry.is_dir(follow_symlinks=False)
                    and not self.is_ignored(entry.name, entry.name)
                )
        except OSError:
            return frozenset()

    def _start(self, thread: _WatcherThread) -> _WatcherThread:
        self._threads = [t for t in self._threads if t.thread.is_alive()]
        self._threads.append(thread)
        thread.start()
        return thread

    def _restart_deep(self) -> None:
        dirs = self._top_level_dirs()
        if dirs == self._deep_dirs and self._deep is not None:
            return
        if self._deep is not None:
            self._deep.stop()
        self._deep_dirs = dirs
        self._deep = None
        if dirs:
            self._deep = self._start(
                _WatcherThread(
                    [str(self.root / name) for name in sorted(dirs)],
                    recursive=True,
                    force_polling=self.force_polling,
                    emit=self._emit,
                )
            )

    # -- events ---------------------------------------------------------------

    def _relative(self, path: str) -> str | None:
        try:
            relative = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        if relative == ".":
            return relative
        parts = relative.split("/")
        for depth, name in enumerate(parts):
            if self.is_ignored(name, "/".join(parts[: depth + 1])):
                return None
        return relative

    def _translate(
        self, raw: set[tuple[watchfiles.Change, str]]
    ) -> tuple[list[tuple[ChangeType, str]], bool]:
        """Changes worth reporting, and whether the set of top-level folders changed."""
        out: list[tuple[ChangeType, str]] = []
        top_level_changed = False
        for change, path in raw:
            relative = self._relative(path)
            if relative is None:
                continue
            kind = _TYPES[change]
            if "/" not in relative and relative != ".":
                added_dir = (
                    kind is ChangeType.ADD and os.path.isdir(path) and not os.path.islink(path)
                )
                removed_dir = kind is ChangeType.UNLINK and relative in self._deep_dirs
                top_level_changed = top_level_changed or added_dir or removed_dir
            out.append((kind, relative))
        return out, top_level_changed

    async def batches(self) -> AsyncIterator[list[ChangeEvent]]:
        """Yield batches until ``stop()`` or until the consumer stops iterating."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._start(
            _WatcherThread(
                [str(self.root)],
                recursive=False,
                force_polling=self.force_polling,
                emit=self._emit,
            )
        )
        self._restart_deep()
        log.debug("source.watch.started", root=str(self.root), folders=len(self._deep_dirs))
        try:
            while not self._stopped:
                raw = await self._queue.get()
                if raw is None:
                    break
                pending, restart = self._translate(raw)
                deadline = time.monotonic() + self.max_wait_s
                while True:
                    wait = min(self.debounce_s, deadline - time.monotonic())
                    if wait <= 0:
                        break
                    try:
                        more = await asyncio.wait_for(self._queue.get(), wait)
                    except TimeoutError:
                        break
                    if more is None:
                        self._stopped = True
                        break
                    changes, changed = self._translate(more)
                    pending += changes
                    restart = restart or changed
                if restart and not self._stopped:
                    self._restart_deep()
                events = collapse_changes(pending)
                if events and not self._stopped:
                    yield events
        finally:
            await self._shutdown()

    def stop(self) -> None:
        """End the iteration (safe from the event loop's thread only)."""
        self._stopped = True
        for thread in self._threads:
            thread.stop()
        if self._queue is not None:
            self._queue.put_nowait(None)

    async def _shutdown(self) -> None:
        self._stopped = True
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.stop()

        def join() -> None:
            for thread in threads:
                if thread.thread.is_alive():
                    thread.thread.join(timeout=(_RUST_TIMEOUT_MS / 1000) * 4)

        await asyncio.to_thread(join)
        log.debug("source.watch.stopped", root=str(self.root))
