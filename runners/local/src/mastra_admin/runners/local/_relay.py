"""The log relay: copies a server's stdout (fd 0) and stderr (``--stderr-fd``) into size-rotated
files, whole lines only, until both pipes close.

It runs as its own small process (``python -I -S _relay.py ...``, standard library
only) beside each server, so that a server keeps its output captured, and never
writes into a closed pipe, while the admin restarts. Files are
``{dir}/{stream}-{unix_ms}-{relay_pid}.log``; a file is never rewritten, a full one is
closed and a new one started; the oldest beyond ``--keep`` per stream are deleted.
SIGTERM and SIGINT are ignored: the relay ends when the server and everything that
inherited its output are gone, so their last lines are kept. With ``--secrets-fd``
it first reads a JSON list of secret values from that descriptor (to its end) and
writes ``***`` in their place, as build logs do.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import time

CHUNK = 65536


class RotatingFile:
    def __init__(
        self, directory: str, stream: str, max_bytes: int, keep: int, secrets: list[bytes]
    ) -> None:
        self.secrets = secrets
        self.directory = directory
        self.stream = stream
        self.max_bytes = max_bytes
        self.keep = keep
        self.fd: int | None = None
        self.size = 0
        self.pending = b""
        self.mine: list[str] = []
        self.last_stamp = 0

    def _open(self) -> None:
        # Names must sort in writing order even when files rotate within one
        # millisecond (and a deleted old name must never be reused).
        stamp = max(int(time.time() * 1000), self.last_stamp + 1)
        while True:
            name = f"{self.stream}-{stamp}-{os.getpid()}.log"
            path = os.path.join(self.directory, name)
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                self.last_stamp = stamp
                break
            except FileExistsError:
                stamp += 1
        self.size = 0
        self.mine.append(path)
        while len(self.mine) > self.keep:
            try:
                os.unlink(self.mine.pop(0))
            except OSError:
                pass

    def _rotate(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self._open()

    def _write_raw(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if cut:
            self._write_lines(data[:cut])
        if len(self.pending) > self.max_bytes:
            # A "line" larger than a whole file: write it out rather than hold it forever.
            self._write_lines(self.pending + b"\n")
            self.pending = b""

    def _write_lines(self, block: bytes) -> None:
        """Write ``block`` (whole lines), starting a new file only between lines."""
        for secret in self.secrets:
            if secret in block:
                block = block.replace(secret, b"***")
        start, end_of_block = 0, len(block)
        while start < end_of_block:
            if self.fd is None or self.size >= self.max_bytes:
                self._rotate()
            limit = start + self.max_bytes - self.size
            if limit >= end_of_block:
                cut = end_of_block
            else:
                cut = block.rfind(b"\n", start, limit) + 1
                if cut <= start:
                    if self.size > 0:
                        self._rotate()
                        continue
                    cut = block.find(b"\n", start) + 1  # one line longer than a file
            self._write_raw(block[start:cut])
            start = cut

    def close(self) -> None:
        if self.pending:
            self._write_lines(self.pending + b"\n")
            self.pending = b""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--keep", type=int, default=20)
    parser.add_argument("--stderr-fd", type=int, default=3)
    parser.add_argument("--secrets-fd", type=int, default=None)
    args = parser.parse_args()
    secrets = _read_secrets(args.secrets_fd)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.makedirs(args.dir, exist_ok=True)
    files = {
        0: RotatingFile(args.dir, "stdout", args.max_bytes, args.keep, secrets),
        args.stderr_fd: RotatingFile(args.dir, "stderr", args.max_bytes, args.keep, secrets),
    }
    selector = selectors.DefaultSelector()
    for fd in files:
        selector.register(fd, selectors.EVENT_READ)
    open_fds = set(files)
    while open_fds:
        for key, _ in selector.select():
            fd = key.fd
            assert isinstance(fd, int)
            try:
                chunk = os.read(fd, CHUNK)
            except OSError:
                chunk = b""
            if chunk:
                files[fd].feed(chunk)
            else:
                selector.unregister(fd)
                open_fds.discard(fd)
                files[fd].close()
    return 0


def _read_secrets(fd: int | None) -> list[bytes]:
    """Secret values to mask, longest first (a secret holding another goes whole)."""
    if fd is None:
        return []
    raw = b""
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            break
        raw += chunk
    os.close(fd)
    values = {str(v).encode() for v in json.loads(raw or b"[]") if v}
    return sorted(values, key=len, reverse=True)


if __name__ == "__main__":
    raise SystemExit(main())
