"""The log relay: whole lines, rotation by size, stdout and stderr apart, and it
outlives SIGTERM until the server's pipes close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mastra_admin.runners.local import _relay


def start_relay(
    folder: Path, *, max_bytes: int, keep: int
) -> tuple[subprocess.Popen[bytes], int, int]:
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    relay = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            _relay.__file__,
            "--dir",
            str(folder),
            "--max-bytes",
            str(max_bytes),
            "--keep",
            str(keep),
            "--stderr-fd",
            str(err_read),
        ],
        stdin=out_read,
        pass_fds=(err_read,),
        start_new_session=True,
    )
    os.close(out_read)
    os.close(err_read)
    return relay, out_write, err_write


def read_stream(folder: Path, stream: str) -> list[str]:
    files = sorted(folder.glob(f"{stream}-*.log"))
    return [line for path in files for line in path.read_text().splitlines()]


def test_rotates_between_lines_and_keeps_streams_apart(tmp_path: Path) -> None:
    relay, out, err = start_relay(tmp_path, max_bytes=1024, keep=100)
    lines = [f'{{"level":30,"n":{i},"msg":"{"x" * (i % 50)}"}}' for i in range(400)]
    payload = ("\n".join(lines) + "\n").encode()
    for start in range(0, len(payload), 777):  # chunks that cut lines in half
        os.write(out, payload[start : start + 777])
    os.write(err, b"Error: boom\n    at main (index.mjs:1:1)\npartial line without newline")
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob("stderr-*.log")) and time.monotonic() < deadline:
        time.sleep(0.01)  # the relay is up and has its signal handlers
    relay.send_signal(signal.SIGTERM)  # ignored: the relay ends when the pipes close
    os.close(out)
    os.close(err)
    assert relay.wait(timeout=10) == 0

    assert read_stream(tmp_path, "stdout") == lines
    assert read_stream(tmp_path, "stderr") == [
        "Error: boom",
        "    at main (index.mjs:1:1)",
        "partial line without newline",
    ]
    files = sorted(tmp_path.glob("stdout-*.log"))
    assert len(files) > 5
    for path in files:
        content = path.read_bytes()
        assert len(content) <= 1024
        assert content.endswith(b"\n")


def test_keeps_only_the_newest_files(tmp_path: Path) -> None:
    relay, out, err = start_relay(tmp_path, max_bytes=1024, keep=3)
    os.close(err)
    lines = [f"line {i:05d} " + "y" * 90 for i in range(200)]
    os.write(out, ("\n".join(lines) + "\n").encode())
    os.close(out)
    assert relay.wait(timeout=10) == 0
    files = sorted(tmp_path.glob("stdout-*.log"))
    assert len(files) == 3
    kept = read_stream(tmp_path, "stdout")
    assert kept == lines[-len(kept) :]


def test_a_line_longer_than_a_file_is_written_whole(tmp_path: Path) -> None:
    relay, out, err = start_relay(tmp_path, max_bytes=1024, keep=10)
    os.close(err)
    long_line = "z" * 5000
    os.write(out, f"short\n{long_line}\nafter\n".encode())
    os.close(out)
    assert relay.wait(timeout=10) == 0
    assert read_stream(tmp_path, "stdout") == ["short", long_line, "after"]
