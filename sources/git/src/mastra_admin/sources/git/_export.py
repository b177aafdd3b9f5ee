"""Exports written by git itself, after every name of the tree was checked here.

``git ls-tree -r -t -l`` lists the commit; ``plan_export`` refuses absolute, ``..``,
empty and ``.git`` names and names used twice or both as a file and a folder
(``UnsafeTree``), leaves out excluded names, adds up the file sizes against the export
limit and keeps the symlinks aside — all before anything is written. git then writes the
regular files (``update-index --index-info`` into a private index, ``checkout-index
-a``); ``finish_export`` makes the folders of submodules, the symlinks (``make_links``)
and walks the result: only the planned paths, with the planned sizes and modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mastra_admin.sources.git._archive import ExportStats, make_links, skip
from mastra_admin.sources.git._errors import GitError, GitTimeout, RepositoryTooLarge, UnsafeTree
from mastra_admin.sources.git._process import (
    _STDERR_TAIL,
    GitEnvironment,
    GitResult,
    _kill_group,
    _read_capped,
    _read_tail,
)

__all__ = [
    "CHECKOUT_CONFIG",
    "ExportPlan",
    "TreeItem",
    "finish_export",
    "index_info",
    "link_texts",
    "parse_batch",
    "parse_listing",
    "plan_export",
    "run_git_input",
]

CHECKOUT_CONFIG: tuple[str, ...] = (
    "-c", "core.autocrlf=false",
    "-c", "core.eol=lf",
    "-c", "core.symlinks=true",
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", f"core.attributesFile={os.devnull}",
    "-c", "core.sparseCheckout=false",
    "-c", "core.splitIndex=false",
    "-c", "core.untrackedCache=false",
    "-c", "core.protectNTFS=true",
    "-c", "checkout.workers=1",
)  # fmt: skip
"""Configuration of the git commands that write an export, over ``SAFE_CONFIG``: no line
ending conversion, no fsmonitor or hooks, no attributes file outside the cache (whose
``info/attributes`` turns off ``text``, ``eol``, ``filter``, ``ident`` and
``working-tree-encoding``), one process (parallel checkout measured slower here)."""

MAX_LINK_TEXT = 4095
"""Longest symlink text made (PATH_MAX less one); longer ones are skipped unread."""

_FILE_MODES = {"100644": 0o644, "100755": 0o755}
_LINK = "120000"
_GITLINK = "160000"
_TREE = "040000"
_UMASK = 0o022


@dataclass(frozen=True)
class TreeItem:
    """One record of ``git ls-tree -r -t -l``: ``size`` is -1 for trees and submodules;
    ``path`` is decoded with ``os.fsdecode`` (any bytes survive the round trip)."""

    mode: str
    kind: str
    oid: str
    size: int
    path: str


@dataclass
class ExportPlan:
    """What an export will write: regular ``files``, the symlinks to read and make
    (``links``), every ``folder`` it holds (trees and submodules), and the figures."""

    files: dict[str, TreeItem] = field(default_factory=dict)
    links: list[TreeItem] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    stats: ExportStats = field(default_factory=ExportStats)


def parse_listing(data: bytes) -> list[TreeItem]:
    """The records of ``git ls-tree -r -t -z -l`` output."""
    items: list[TreeItem] = []
    for record in data.split(b"\0"):
        if not record:
            continue
        head, tab, name = record.partition(b"\t")
        fields = head.split()
        if not tab or len(fields) != 4:
            raise GitError(
                "git ls-tree gave an unexpected answer", details={"record": repr(record)[:200]}
            )
        mode, kind, oid, size = (f.decode("ascii", errors="replace") for f in fields)
        items.append(
            TreeItem(mode, kind, oid, int(size) if size.isdigit() else -1, os.fsdecode(name))
        )
    return items


def _checked_parts(path: str) -> list[str]:
    """The parts of ``path``, or ``UnsafeTree`` for names git itself would never write."""
    parts = path.split("/")
    if path.startswith("/"):
        raise UnsafeTree(
            f"the commit names an absolute path ({path[:200]!r})", details={"path": path}
        )
    if ".." in parts:
        raise UnsafeTree(
            f"the commit names a path with '..' ({path[:200]!r})", details={"path": path}
        )
    if "" in parts or "." in parts:
        raise UnsafeTree(
            f"the commit names a path with an empty or '.' part ({path[:200]!r})",
            details={"path": path},
        )
    if ".git" in path.lower() and any(part.lower() == ".git" for part in parts):
        raise UnsafeTree(f"the commit names a .git folder ({path[:200]!r})", details={"path": path})
    return parts


def _twice(path: str) -> UnsafeTree:
    return UnsafeTree(f"the commit names {path!r} twice", details={"path": path})


def plan_export(
    items: Sequence[TreeItem], *, exclude: Collection[str], max_bytes: int
) -> ExportPlan:
    """Check every item and decide what the export writes (nothing is written here).

    Raises ``UnsafeTree`` for absolute, ``..``, empty, ``.`` or ``.git`` names (excluded
    or not), names used twice and names that are both a file and a folder;
    ``RepositoryTooLarge`` when the files kept add up to more than ``max_bytes``.
    """
    excluded = frozenset(exclude)
    plan = ExportPlan()
    stats = plan.stats
    files = plan.files
    links: dict[str, TreeItem] = {}
    folders: set[str] = set()
    for item in items:
        parts = _checked_parts(item.path)
        if excluded and not excluded.isdisjoint(parts):
            if item.mode != _TREE:
                stats.excluded += 1
            continue
        path = item.path
        parent = path.rpartition("/")[0]
        if parent and parent not in folders:
            folders.update("/".join(parts[:n]) for n in range(1, len(parts)))
        if item.mode in (_TREE, _GITLINK):
            folders.add(path)
        elif item.mode in _FILE_MODES:
            if path in files or path in links:
                raise _twice(path)
            files[path] = item
            stats.bytes += max(item.size, 0)
            if stats.bytes > max_bytes:
                raise RepositoryTooLarge(
                    f"the commit's files are larger than {max_bytes // 2**20} MB",
                    details={"limit": max_bytes},
                )
        elif item.mode == _LINK:
            if path in files or path in links:
                raise _twice(path)
            links[path] = item
        else:
            skip(stats, path, "not a file, folder, symlink or submodule")
    clash = sorted(folders.intersection(files))
    if clash:
        raise UnsafeTree(
            f"the commit names {clash[0]!r} both as a file and as a folder",
            details={"path": clash[0]},
        )
    for path, item in links.items():
        if path in folders:
            skip(stats, path, "symlink has the name of a file or folder")
        elif not 0 <= item.size <= MAX_LINK_TEXT:
            skip(stats, path, "symlink text is too long")
        else:
            plan.links.append(item)
    plan.folders = sorted(folders)
    stats.files = len(files)
    return plan


def index_info(plan: ExportPlan) -> bytes:
    """``git update-index -z --index-info`` input for the files of ``plan``."""
    return b"".join(
        f"{item.mode} {item.oid}\t".encode("ascii") + os.fsencode(path) + b"\0"
        for path, item in plan.files.items()
    )


def parse_batch(data: bytes, count: int) -> dict[str, bytes]:
    """The blobs of ``git cat-file --batch`` output for ``count`` requests, by object id."""
    blobs: dict[str, bytes] = {}
    position = 0
    for _ in range(count):
        end = data.find(b"\n", position)
        header = data[position:end].split() if end >= 0 else []
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            raise GitError(
                "git cat-file gave an unexpected answer", details={"header": repr(header)[:200]}
            )
        size = int(header[2])
        blobs[header[0].decode("ascii")] = data[end + 1 : end + 1 + size]
        position = end + 1 + size + 1
        if position > len(data):
            raise GitError("git cat-file gave a short answer")
    return blobs


def link_texts(plan: ExportPlan, blobs: dict[str, bytes]) -> list[tuple[str, str]]:
    """``(path, text)`` of the symlinks of ``plan``; texts that are not paths are skipped."""
    texts: list[tuple[str, str]] = []
    for item in plan.links:
        data = blobs.get(item.oid)
        if data is None:
            raise GitError(
                f"cannot read symlink {item.path!r} from the cache", details={"oid": item.oid}
            )
        if b"\0" in data:
            skip(plan.stats, item.path, "symlink text is not a path")
            continue
        texts.append((item.path, os.fsdecode(data)))
    return texts


def _unexpected(relative: str, what: str) -> GitError:
    return GitError(
        f"the export holds {what} {relative!r} that was not planned", details={"path": relative}
    )


def finish_export(target: str, plan: ExportPlan, links: list[tuple[str, str]]) -> ExportStats:
    """After git wrote the files of ``plan`` into ``target``: make the folders (submodules
    and trees without files), the symlinks, and check that ``target`` holds exactly the
    planned files (sizes and modes 0644/0755), folders (0755) and kept symlinks."""
    stats = plan.stats
    for folder in plan.folders:
        path = os.path.join(target, folder)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
    made = set(make_links(target, links, stats))
    folders = set(plan.folders)
    seen = 0
    pending = [("", target)]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                relative = prefix + entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    if relative not in made:
                        raise _unexpected(relative, "a symlink")
                    continue
                if stat.S_ISDIR(info.st_mode):
                    if relative not in folders:
                        raise _unexpected(relative, "a folder")
                    want = 0o755
                    pending.append((relative + "/", entry.path))
                elif stat.S_ISREG(info.st_mode):
                    item = plan.files.get(relative)
                    if item is None:
                        raise _unexpected(relative, "a file")
                    if info.st_size != item.size:
                        raise GitError(
                            f"{relative!r} was not written byte for byte",
                            details={"path": relative, "size": info.st_size, "expected": item.size},
                        )
                    want = _FILE_MODES[item.mode]
                    seen += 1
                else:
                    raise _unexpected(relative, "a special file")
                if stat.S_IMODE(info.st_mode) != want:
                    os.chmod(entry.path, want, follow_symlinks=False)
    if seen != len(plan.files):
        raise GitError(
            f"git wrote {seen} of the commit's {len(plan.files)} files",
            details={"written": seen, "expected": len(plan.files)},
        )
    stats.folders = len(folders)
    return stats


async def run_git_input(
    git: str,
    args: Sequence[str],
    *,
    environment: GitEnvironment,
    timeout_s: float,
    data: bytes | None = None,
    cwd: Path | None = None,
    stdout_limit: int = 1024 * 1024,
    what: str = "git",
) -> GitResult:
    """``run_git`` for the commands of an export: ``data`` (when given) is git's standard
    input, and git runs with umask 022 so that nothing it writes is group- or
    world-writable. On timeout and cancellation the whole process group is killed and
    reaped before this returns or raises."""
    argv = [git, *environment.config, *args]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment.env,
        cwd=cwd,
        start_new_session=True,
        umask=_UMASK,
    )
    assert process.stdout is not None
    assert process.stderr is not None

    async def feed() -> None:
        if process.stdin is None or data is None:
            return
        try:
            process.stdin.write(data)
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # git stopped reading: its exit code tells why
        finally:
            process.stdin.close()

    feeding = asyncio.ensure_future(feed())
    stdout_task = asyncio.ensure_future(_read_capped(process.stdout, stdout_limit))
    stderr_task = asyncio.ensure_future(_read_tail(process.stderr, _STDERR_TAIL))
    waiting = asyncio.ensure_future(process.wait())
    try:
        async with asyncio.timeout(timeout_s):
            await feeding
            stdout = await stdout_task
            stderr = await stderr_task
            returncode = await waiting
    except BaseException as exc:
        _kill_group(process.pid)
        with contextlib.suppress(BaseException):
            await asyncio.shield(waiting)
        for task in (feeding, stdout_task, stderr_task):
            task.cancel()
        if isinstance(exc, TimeoutError):
            raise GitTimeout(
                f"{what} took longer than {timeout_s:g} s and was stopped",
                details={"timeout_s": timeout_s},
            ) from None
        raise
    return GitResult(
        returncode=returncode,
        stdout=stdout,
        stderr=environment.masker(stderr.decode("utf-8", errors="replace")),
    )
