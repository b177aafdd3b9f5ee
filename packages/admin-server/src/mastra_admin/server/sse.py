"""Build logs over Server-Sent Events: the log so far, live lines, then ``end``.

Event ids are byte offsets into the log, so a client that reconnects with
``Last-Event-ID`` resumes exactly after the last line it saw. Comments keep idle
connections alive through proxies.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.responses import StreamingResponse

from mastra_admin.core.errors import Unavailable

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.models import Build

__all__ = ["build_log_stream"]

KEEPALIVE_S = 15.0
_LINE_ENDINGS = re.compile(r"\r\n|\r|\n")


def _event(event: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # A lone CR ends a line for an SSE parser too: split on every line ending.
    lines.extend(f"data: {part}" for part in _LINE_ENDINGS.split(data))
    return ("\n".join(lines) + "\n\n").encode()


async def _with_keepalive(source: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes]:
    iterator = source.__aiter__()
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield b": keep-alive\n\n"
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def build_log_stream(
    admin: MastraAdmin, build: Build, last_event_id: str | None
) -> StreamingResponse:
    build_logs = getattr(admin, "build_logs", None)
    if build_logs is None:
        raise Unavailable("build logs need a file storage")
    offset = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    build_id = build.id

    async def finished() -> bool:
        current = await admin.storage.builds.get(build_id)
        return current is None or current.status.is_terminal

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        async for chunk in build_logs.follow(build_id, offset=offset, is_finished=finished):
            yield _event("line", chunk.line, chunk.offset)
        final = await admin.storage.builds.get(build_id)
        payload = {
            "status": str(final.status) if final else "unknown",
            "error_message": final.error_message if final else None,
        }
        yield _event("end", json.dumps(payload))

    return StreamingResponse(
        _with_keepalive(events(), KEEPALIVE_S),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
