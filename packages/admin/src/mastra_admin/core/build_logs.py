"""Build logs: one file per build in file storage, with secrets masked, and live followers.

A build's log is ``builds/{build_id}.log``, one output line per line. ``sink`` is
what the orchestrator hands the runner; ``follow`` is what the server streams over
SSE: the log so far, then new lines as they are written (woken in-process at once,
and by polling the file so that a log written by another process is followed too),
until the build is finished and the file is drained. Each line comes with the byte
offset just past it, so a client can resume where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from mastra_admin.core.errors import MastraAdminError, NotFound
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.runner import LogSink

__all__ = ["MASK", "BuildLogs", "LogChunk", "mask_secrets"]

_log = structlog.get_logger("mastra_admin.core.build_logs")

MASK = "***"
READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class LogChunk:
    """One line of a build log (without its newline) and the byte offset just past it."""

    line: str
    offset: int


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value with ``***``, longest first (so that a secret that
    contains a shorter one is masked whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class BuildLogs:
    """Writes and follows build logs in a ``FileStorageProvider``."""

    def __init__(self, file_storage: FileStorageProvider, *, poll_interval_s: float = 0.5) -> None:
        self.file_storage = file_storage
        self.poll_interval_s = poll_interval_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def path(build_id: str) -> str:
        return f"builds/{build_id}.log"

    def _wake(self, build_id: str) -> None:
        for event in self._waiters.get(build_id, ()):
            event.set()

    def sink(self, build_id: str, secrets: Iterable[str] = ()) -> LogSink:
        """A ``LogSink`` for the build: masks ``secrets``, appends, wakes followers.

        A line holding newlines is written as several lines. If the log cannot be
        written (a full disk), the failure is logged and the build goes on."""
        secret_list = [s for s in secrets if s]
        path = self.path(build_id)
        lock = self._locks.setdefault(build_id, asyncio.Lock())
        warned = False

        async def write_line(line: str) -> None:
            nonlocal warned
            masked = mask_secrets(line, secret_list)
            lines = masked.replace("\r\n", "\n").split("\n")
            payload = "".join(f"{part}\n" for part in lines)
            async with lock:
                try:
                    await self.file_storage.append(path, payload)
                except MastraAdminError as exc:
                    if not warned:
                        _log.warning("build_logs.append_failed", build_id=build_id, error=str(exc))
                        warned = True
                    return
            self._wake(build_id)

        return write_line

    async def read(self, build_id: str, offset: int = 0) -> str:
        """The log from byte ``offset`` on (empty when there is none yet)."""
        try:
            data = await self.file_storage.read(self.path(build_id), offset=offset)
        except NotFound:
            return ""
        return data.decode("utf-8", errors="replace")

    async def _read_bytes(self, build_id: str, offset: int) -> bytes:
        try:
            return await self.file_storage.read(
                self.path(build_id), offset=offset, length=READ_CHUNK
            )
        except NotFound:
            return b""

    async def follow(
        self,
        build_id: str,
        *,
        offset: int = 0,
        is_finished: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[LogChunk]:
        """Yield the log's lines from ``offset``, then live lines, until
        ``is_finished()`` is true and everything written before has been yielded."""
        event = asyncio.Event()
        self._waiters.setdefault(build_id, set()).add(event)
        consumed = offset
        finished = False
        try:
            while True:
                event.clear()
                data = await self._read_bytes(build_id, consumed)
                end = data.rfind(b"\n")
                if end >= 0:
                    for raw in data[: end + 1].split(b"\n")[:-1]:
                        consumed += len(raw) + 1
                        yield LogChunk(_decode(raw), consumed)
                    continue
                if len(data) >= READ_CHUNK:  # one line longer than a chunk: pass it on in parts
                    consumed += len(data)
                    yield LogChunk(_decode(data), consumed)
                    continue
                if finished:
                    if data:  # a last line without its newline
                        consumed += len(data)
                        yield LogChunk(_decode(data), consumed)
                    return
                if await is_finished():
                    finished = True  # drain once more: lines written before it finished
                    continue
                try:
                    await asyncio.wait_for(event.wait(), timeout=self.poll_interval_s)
                except TimeoutError:
                    pass
        finally:
            waiters = self._waiters.get(build_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[build_id]

    async def finish(self, build_id: str) -> None:
        """The build is over: wake its followers so that they see it now."""
        self._locks.pop(build_id, None)
        self._wake(build_id)

    def followers(self, build_id: str) -> int:
        """How many followers this process has for the build (for tests and metrics)."""
        return len(self._waiters.get(build_id, ()))

    async def delete(self, build_id: str) -> bool:
        return await self.file_storage.delete(self.path(build_id))


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").removesuffix("\r")
