"""Which process of an installation drives the edge.

The server and the build workers each construct the router; one of them (whoever
holds an exclusive lock on a file in the state dir) runs Caddy, loads its
configuration, answers its certificate questions and reads its access log. The others
keep routes in storage and wait for the owner to apply them, as the local router's
non-listening processes do. When the owner exits, its lock goes with it and another
process takes over at its next check.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["EdgeLock"]


class EdgeLock:
    """An exclusive, non-blocking ``flock`` held for as long as the process runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
