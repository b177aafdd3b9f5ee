"""Processes: run a build step in its own session, and end whole process trees.

Every child starts with ``start_new_session=True``, so its pid is also its process
group id and one ``killpg`` reaches everything that stayed in the group. Processes
that left the group (``setsid``, ``detached: true`` in node) are found as
descendants with psutil while their parent lives, and, for build steps, as any of
our processes whose working directory is inside the build folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import structlog

from mastra_admin.core.build_steps import describe
from mastra_admin.core.errors import BuildFailed

if TYPE_CHECKING:
    from mastra_admin.runners.local._sandbox import Sandbox, Sandboxed, SandboxSpec

__all__ = [
    "LineSink",
    "Mask",
    "StepResult",
    "group_alive",
    "kill_group",
    "kill_processes",
    "matching_process",
    "run_step",
    "snapshot_descendants",
    "sweep_dir",
]

_log = structlog.get_logger("mastra_admin.runners.local")

LineSink = Callable[[str], Awaitable[None]]

MAX_LINE = 16 * 1024
START_TIME_TOLERANCE_S = 0.05


def matching_process(pid: int | None, started_at: float | None) -> psutil.Process | None:
    """The process with this pid *and* this start time, if it still runs (a reused pid
    belongs to another process and does not match)."""
    if pid is None or started_at is None or pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started_at) > START_TIME_TOLERANCE_S:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return process


def snapshot_descendants(pid: int) -> list[psutil.Process]:
    """Every living descendant of ``pid`` now (psutil remembers each one's start time,
    so killing one later never hits a reused pid)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group (zombies included until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_has_live_members(pgid: int) -> bool:
    """Whether a process of the group is alive, zombies not counted (``group_alive``
    counts them: a zombie whose parent is gone waits for init to reap it, which some
    inits do only every second or two). Reads ``/proc``; elsewhere, ``group_alive``."""
    if not group_alive(pgid):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_processes(processes: Iterable[psutil.Process], sig: int = signal.SIGKILL) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            process.send_signal(sig)  # checks that it is still the same process


def sweep_dir(folder: Path, *, exclude: Iterable[int] = ()) -> list[int]:
    """SIGKILL every process of this user whose working directory is inside
    ``folder`` (what is left of a step whose parent already died); return their pids."""
    root = str(folder.resolve())
    skip = {os.getpid(), *exclude}
    uid = os.getuid()
    killed: list[int] = []
    for process in psutil.process_iter(["pid", "uids"]):
        try:
            if process.pid in skip or process.info["uids"] is None:
                continue
            if process.info["uids"].real != uid:
                continue
            cwd = process.cwd()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                process.kill()
                killed.append(process.pid)
    return killed


class StepResult:
    """What a finished step left: its exit code and last output lines."""

    def __init__(self, returncode: int, tail: Sequence[str], duration_s: float) -> None:
        self.returncode = returncode
        self.tail = list(tail)
        self.duration_s = duration_s


Mask = Callable[[str], str]


async def _pump(stream: asyncio.StreamReader, sink: LineSink, tail: deque[str], mask: Mask) -> None:
    pending = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            await _emit(raw, sink, tail, mask)
        if len(pending) > MAX_LINE:
            await _emit(pending, sink, tail, mask)
            pending = b""
    if pending:
        await _emit(pending, sink, tail, mask)


async def _emit(raw: bytes, sink: LineSink, tail: deque[str], mask: Mask) -> None:
    line = mask(raw.decode("utf-8", errors="replace").rstrip("\r"))
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE] + " [line truncated]"
    tail.append(line)
    await sink(line)


def _end_tree(started: Sandboxed, folder: Path) -> None:
    """SIGKILL the step's group, its escaped descendants, its sandbox (whose pid
    namespace ends with its init), and strays in its folder."""
    pid = started.process.pid
    escaped = snapshot_descendants(pid)
    kill_group(pid)
    kill_processes(escaped)
    if started.init is not None:
        kill_processes([started.init])
    sweep_dir(folder)


async def run_step(
    step: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    sink: LineSink,
    sweep: Path,
    mask: Mask = str,
    tail_lines: int = 20,
    label: str | None = None,
    sandbox: Sandbox,
    spec: SandboxSpec,
) -> StepResult:
    """Run one build step to the end, every output line (stdout and stderr merged) to
    ``sink`` after ``mask`` (which hides secret values; the failure message quotes
    masked lines too); ``label`` is the command as messages show it.
    ``BuildFailed`` on a non-zero exit or when ``timeout_s`` passes;
    nothing of the step outlives it, whether it succeeds, fails, times out or is
    cancelled (``CancelledError`` is re-raised after the tree is gone).
    """
    command = label or describe(argv)
    tail: deque[str] = deque(maxlen=tail_lines)
    started = time.monotonic()
    try:
        spawned = await sandbox.spawn(
            argv,
            replace(spec, cwd=cwd),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise BuildFailed(step, f"{command} could not be started: {exc}") from exc
    process = spawned.process
    assert process.stdout is not None
    _log.debug("step.spawned", step=step, command=argv[0], pid=process.pid)
    pump = asyncio.ensure_future(_pump(process.stdout, sink, tail, mask))
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
            await pump
    except TimeoutError:
        _end_tree(spawned, sweep)
        await _reap(process, pump)
        await spawned.close()
        raise BuildFailed(
            step,
            f"{command} timed out after {timeout_s:g} s{_quote(tail)}",
            details={"command": command, "timeout_s": timeout_s},
        ) from None
    except BaseException:
        # Cancelled (or the sink failed): nothing of the step may outlive it.
        _end_tree(spawned, sweep)
        await _reap(process, pump)
        await spawned.close()
        raise
    # The step is done; anything it left running in its group, sandbox or folder goes.
    if group_alive(process.pid):
        kill_group(process.pid)
    if spawned.init is not None:
        kill_processes([spawned.init])
    await spawned.close()
    sweep_dir(sweep)
    returncode = process.returncode
    assert returncode is not None
    duration = time.monotonic() - started
    if returncode != 0:
        raise BuildFailed(
            step,
            f"{command} failed with exit code {returncode}{_quote(tail)}",
            details={"command": command, "exit_code": returncode},
        )
    return StepResult(returncode, tail, duration)


async def _reap(process: asyncio.subprocess.Process, pump: asyncio.Future[None]) -> None:
    """Wait (briefly, shielded from a second cancellation) for the killed step."""
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(process.wait()), 5)
    if not pump.done():
        pump.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.shield(pump), 1)


def _quote(tail: Iterable[str]) -> str:
    lines = [line for line in tail if line.strip()]
    if not lines:
        return ""
    return ":\n" + "\n".join(lines)
