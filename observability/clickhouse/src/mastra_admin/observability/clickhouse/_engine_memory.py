"""What the embedded engine keeps resident that it does not use.

chDB is one 555 MB shared library. Loading it runs the static initialisers of the
whole of ClickHouse (every function, format and table engine registers itself), and
opening a data folder and migrating the schema run code that is not needed again:
about 170 MB of the library's pages are then resident in the process, most of them
never read again. ``release_engine_pages`` hands those pages back to the kernel
(``madvise(MADV_PAGEOUT)``); the pages the engine goes on using are read in again
when they are next run (about 100 MB while ingesting).

Only the library's read-only mappings (code and constants) are advised, which are
copies of the file: the kernel drops them or, where a page was written (relocations),
keeps it, so nothing is lost whatever the page holds. Pages mapped by another process
too are left where they are.

chDB also imports pyarrow (and with it numpy) when it loads, for Arrow results this
provider does not ask for: 50 MB of the process. ``load_chdb_session`` loads chDB
with pyarrow out of sight unless pyarrow is imported already.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from typing import Any

import structlog

from mastra_admin.core.errors import Unavailable

__all__ = ["load_chdb_session", "release_engine_pages"]

_log = structlog.get_logger("mastra_admin.observability.clickhouse")

MADV_PAGEOUT = 21
"""Reclaim these pages now (Linux 5.4 and later)."""

ENGINE_ALLOCATOR_CONF = "dirty_decay_ms:0"
"""The embedded engine's allocator settings (chDB's own jemalloc reads them from
``JE_MALLOC_CONF`` once, when the library loads). By default jemalloc keeps freed
pages for 5 s before handing them back, so the pages of one insert were still held
when the next inserts allocated their own: the worker's private memory grew to about
twice what one insert needs. Handing them back at once makes an insert fault in again
the pages it freed, about a sixth slower (100 ms: as fast as 5 s, 60 MB more)."""


@contextlib.contextmanager
def _without_pyarrow() -> Iterator[None]:
    """``import pyarrow`` fails inside (unless it is imported already): chDB treats
    pyarrow as optional and needs it only for Arrow results."""
    if "pyarrow" in sys.modules:
        yield
        return
    sys.modules["pyarrow"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("pyarrow", 0) is None:
            del sys.modules["pyarrow"]


def load_chdb_session() -> Any:
    """chDB's ``session`` module, loaded without pyarrow and with
    ``ENGINE_ALLOCATOR_CONF`` unless the user set ``JE_MALLOC_CONF`` (or chDB was
    loaded already, when it is too late for both). The variable is removed again once
    read, so processes started later do not get it."""
    ours = "chdb" not in sys.modules and "JE_MALLOC_CONF" not in os.environ
    if ours:
        os.environ["JE_MALLOC_CONF"] = ENGINE_ALLOCATOR_CONF
    try:
        with _without_pyarrow():
            from chdb import session
    except ImportError as exc:
        raise Unavailable(
            "the embedded ClickHouse engine (chDB) is not installed: pip install"
            " 'mastra-admin-observability-clickhouse[embedded]' (or"
            " 'mastra-admin-server[platform]'), or give observability.url a ClickHouse server"
        ) from exc
    finally:
        if ours:
            os.environ.pop("JE_MALLOC_CONF", None)
    return session


def _engine_library() -> str | None:
    module = sys.modules.get("chdb._chdb")
    path = getattr(module, "__file__", None)
    return os.path.realpath(path) if path else None


def _read_only_mappings(library: str) -> list[tuple[int, int]]:
    """(start, end) of the library's mappings that the process cannot write."""
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[1] not in ("r--p", "r-xp"):
                continue
            if fields[5].rstrip("\n") != library:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.append((start, end))
    return found


def _resident_file_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - Linux reports it


def release_engine_pages() -> int:
    """Hand the resident pages of the engine's code and constants back to the kernel;
    the bytes the process's resident memory fell by (0 where this is not Linux or
    chDB is not loaded)."""
    library = _engine_library()
    if library is None or not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):  # pragma: no cover - Linux has it
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    before = _resident_file_bytes()
    for start, end in _read_only_mappings(library):
        if madvise(start, end - start, MADV_PAGEOUT) != 0:
            # EINVAL before Linux 5.4: the pages stay, which costs memory, not data.
            _log.debug("clickhouse.pageout_refused", errno=ctypes.get_errno())
            break
    return max(0, before - _resident_file_bytes())
