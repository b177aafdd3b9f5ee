"""Exports written by git itself, after every name of the tree was checked here.

``git ls-tree -r -t -l`` lists the commit; ``plan_export`` refuses absolute, ``..``,
empty and ``.git`` names and names used twice or both as a file and a folder
(``UnsafeTree``), leaves out excluded names, adds up the file sizes against the export
limit and keeps the symlinks aside — all before anything is written. ``make_folders``
makes every folder; git writes the regular files (``update-index --index-info`` into a
private index, then ``checkout-index`` in a few processes side by side, each given its
share of the paths); ``finish_export`` makes the symlinks (``make_links``) and walks the
result: only the planned paths, nothing else (and modes as umask 022 gives them, when
the process umask is another: ``modes_need_fixing``).

Paths stay bytes from git's output to the file system, so any name survives unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

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
    "checkout_shares",
    "finish_export",
    "index_info",
    "link_texts",
    "make_folders",
    "modes_need_fixing",
    "parse_batch",
    "parse_listing",
    "parse_names",
    "plan_export",
    "run_git_input",
    "sized_items",
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
``working-tree-encoding``); git's own parallel checkout is off (``checkout_shares``
splits the work between processes, which measured faster)."""

MAX_LINK_TEXT = 4095
"""Longest symlink text made (PATH_MAX less one); longer ones are skipped unread."""

FILES_PER_CHECKOUT = 1000
"""``checkout-index`` processes side by side: one per this many files..."""
MAX_CHECKOUTS = 4
"""...and at most this many (measured on 2 cores: 4 processes write 5,000 files in
about 60% of the time one takes)."""

_MODES = {b"100644": 0o644, b"100755": 0o755}
_LINK = b"120000"
_GITLINK = b"160000"
_TREE = b"040000"
_PLAIN_UMASK = 0o022
_RECORD = re.compile(rb"([0-7]+) ([a-z]+) ([0-9a-f]+) +(-|[0-9]+)\t([^\0]*)\0")
_NAME_RECORD = re.compile(rb"([0-7]+) ([a-z]+) ([0-9a-f]+)\t([^\0]*)\0")
_BLOB = b"blob"

NameRecord = tuple[bytes, bytes, bytes, bytes]
"""One record of ``git ls-tree -r -t -z`` (without ``-l``): mode, kind, oid, path."""


class TreeItem(NamedTuple):
    """One record of ``git ls-tree -r -t -l``: ``size`` is -1 for trees and submodules."""

    mode: bytes
    kind: bytes
    oid: bytes
    size: int
    path: bytes


@dataclass
class ExportPlan:
    """What an export will write: regular ``files`` (path -> item), the symlinks to read
    and make (``links``), every ``folder`` it holds (trees and submodules), the figures."""

    files: dict[bytes, TreeItem] = field(default_factory=dict)
    links: list[TreeItem] = field(default_factory=list)
    folders: list[bytes] = field(default_factory=list)
    stats: ExportStats = field(default_factory=ExportStats)


def _text(path: bytes) -> str:
    return os.fsdecode(path)


def parse_listing(data: bytes) -> list[TreeItem]:
    """The records of ``git ls-tree -r -t -z -l`` output."""
    items = [
        TreeItem(mode, kind, oid, int(size) if size != b"-" else -1, path)
        for mode, kind, oid, size, path in _RECORD.findall(data)
    ]
    if len(items) != data.count(b"\0") or (data and not data.endswith(b"\0")):
        raise GitError("git ls-tree gave an unexpected answer")
    return items


def parse_names(data: bytes) -> list[NameRecord]:
    """The records of ``git ls-tree -r -t -z`` output (no sizes: reading every blob's
    size costs ``ls-tree -l`` more than half of its time; ``sized_items`` adds them)."""
    records: list[NameRecord] = _NAME_RECORD.findall(data)
    if len(records) != data.count(b"\0") or (data and not data.endswith(b"\0")):
        raise GitError("git ls-tree gave an unexpected answer")
    return records


def sized_items(records: Sequence[NameRecord], sizes: Mapping[bytes, int]) -> list[TreeItem]:
    """``parse_names`` records as ``TreeItem``s, blob sizes from ``sizes`` (by object id:
    a blob's size never changes). Blobs whose size is not there get -1: the caller makes
    sure that only names ``plan_export`` leaves out (excluded) lack one."""
    make = tuple.__new__  # TreeItem(...) runs Python code per item: 5,000 of them
    return [
        make(TreeItem, (mode, kind, oid, sizes.get(oid, -1) if kind == _BLOB else -1, path))
        for mode, kind, oid, path in records
    ]


def _unsafe(path: bytes, what: str) -> UnsafeTree:
    text = _text(path)
    return UnsafeTree(f"the commit names {what} ({text[:200]!r})", details={"path": text})


def _twice(path: bytes) -> UnsafeTree:
    text = _text(path)
    return UnsafeTree(f"the commit names {text!r} twice", details={"path": text})


def plan_export(
    items: Sequence[TreeItem], *, exclude: Collection[str], max_bytes: int
) -> ExportPlan:
    """Check every item and decide what the export writes (nothing is written here).

    Raises ``UnsafeTree`` for absolute, ``..``, empty, ``.`` or ``.git`` names (excluded
    or not), names used twice and names that are both a file and a folder;
    ``RepositoryTooLarge`` when the files kept add up to more than ``max_bytes``.
    """
    excluded = frozenset(os.fsencode(name) for name in exclude)
    plan = ExportPlan()
    stats = plan.stats
    files = plan.files
    links: dict[bytes, TreeItem] = {}
    folders: set[bytes] = set()
    total = 0
    for item in items:
        path = item.path
        parts = path.split(b"/")
        if path.startswith(b"/"):
            raise _unsafe(path, "an absolute path")
        if b".." in parts:
            raise _unsafe(path, "a path with '..'")
        if b"" in parts or b"." in parts:
            raise _unsafe(path, "a path with an empty or '.' part")
        if b".git" in path.lower() and any(part.lower() == b".git" for part in parts):
            raise _unsafe(path, "a .git folder")
        if excluded and not excluded.isdisjoint(parts):
            if item.mode != _TREE:
                stats.excluded += 1
            continue
        parent = path.rpartition(b"/")[0]
        if parent and parent not in folders:
            folders.update(b"/".join(parts[:n]) for n in range(1, len(parts)))
        mode = item.mode
        if mode in _MODES:
            if path in files or path in links:
                raise _twice(path)
            files[path] = item
            total += item.size
            if total > max_bytes:
                raise RepositoryTooLarge(
                    f"the commit's files are larger than {max_bytes // 2**20} MB",
                    details={"limit": max_bytes},
                )
        elif mode in (_TREE, _GITLINK):
            folders.add(path)
        elif mode == _LINK:
            if path in files or path in links:
                raise _twice(path)
            links[path] = item
        else:  # pragma: no cover - git canonicalises every mode to one of the above
            skip(stats, _text(path), "not a file, folder, symlink or submodule")
    clash = sorted(folders.intersection(files))
    if clash:
        text = _text(clash[0])
        raise UnsafeTree(
            f"the commit names {text!r} both as a file and as a folder", details={"path": text}
        )
    for path, item in links.items():
        if path in folders:
            skip(stats, _text(path), "symlink has the name of a file or folder")
        elif not 0 <= item.size <= MAX_LINK_TEXT:
            skip(stats, _text(path), "symlink text is too long")
        else:
            plan.links.append(item)
    plan.folders = sorted(folders)
    stats.files = len(files)
    stats.bytes = total
    stats.folders = len(folders)
    return plan


def index_info(plan: ExportPlan) -> bytes:
    """``git update-index -z --index-info`` input for the files of ``plan``."""
    return b"".join(
        [item.mode + b" " + item.oid + b"\t" + item.path + b"\0" for item in plan.files.values()]
    )


def checkout_shares(plan: ExportPlan, most: int = MAX_CHECKOUTS) -> list[bytes]:
    """``git checkout-index -z --stdin`` input of each process: the files of ``plan`` in
    consecutive runs (whole folders mostly), one run per process, at most ``most``."""
    paths = list(plan.files)
    count = max(1, min(most, len(paths) // FILES_PER_CHECKOUT))
    size = -(-len(paths) // count)
    return [
        b"".join([path + b"\0" for path in paths[start : start + size]])
        for start in range(0, len(paths), size)
    ]


def parse_batch(data: bytes, count: int) -> dict[bytes, bytes]:
    """The blobs of ``git cat-file --batch`` output for ``count`` requests, by object id."""
    blobs: dict[bytes, bytes] = {}
    position = 0
    for _ in range(count):
        end = data.find(b"\n", position)
        header = data[position:end].split() if end >= 0 else []
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            raise GitError(
                "git cat-file gave an unexpected answer", details={"header": repr(header)[:200]}
            )
        size = int(header[2])
        blobs[header[0]] = data[end + 1 : end + 1 + size]
        position = end + 1 + size + 1
        if position > len(data):
            raise GitError("git cat-file gave a short answer")
    return blobs


def link_texts(plan: ExportPlan, blobs: dict[bytes, bytes]) -> list[tuple[str, str]]:
    """``(path, text)`` of the symlinks of ``plan``; texts that are not paths are skipped."""
    texts: list[tuple[str, str]] = []
    for item in plan.links:
        data = blobs.get(item.oid)
        if data is None:
            raise GitError(
                f"cannot read symlink {_text(item.path)!r} from the cache",
                details={"oid": item.oid.decode("ascii")},
            )
        if b"\0" in data:
            skip(plan.stats, _text(item.path), "symlink text is not a path")
            continue
        texts.append((_text(item.path), _text(data)))
    return texts


def make_folders(target: str, plan: ExportPlan) -> None:
    """Make every folder of ``plan`` under ``target`` (empty and real), parents first, so
    that the checkout processes never race to make one."""
    root = os.fsencode(target)
    for folder in plan.folders:
        os.mkdir(root + b"/" + folder, 0o755)


def _unexpected(relative: bytes, what: str) -> GitError:
    text = _text(relative)
    return GitError(
        f"the export holds {what} {text!r} that was not planned", details={"path": text}
    )


def modes_need_fixing() -> bool:
    """Whether files written now would not get modes 0644/0755 and folders 0755, exactly:
    the process umask (read from ``/proc``, never changed: it is shared by every thread)
    is not 022, or cannot be read."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8) != _PLAIN_UMASK
    return True


def finish_export(
    target: str, plan: ExportPlan, links: list[tuple[str, str]], *, fix_modes: bool = False
) -> ExportStats:
    """After git wrote the files of ``plan`` into ``target``: make the symlinks, then check
    that ``target`` holds exactly the planned files, folders and kept symlinks (a walk that
    reads the kinds from the folder listings). ``fix_modes``: set every file to 0644 or
    0755 (executable in the commit) and every folder to 0755, as umask 022 would have."""
    stats = plan.stats
    made = {os.fsencode(path) for path in make_links(target, links, stats)}
    folders = set(plan.folders)
    files = plan.files
    seen = 0
    pending = [(b"", os.fsencode(target))]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as listing:
            for entry in listing:
                relative = prefix + entry.name
                # Regular files first: most entries are, and one call tells them.
                if entry.is_file(follow_symlinks=False):
                    item = files.get(relative)
                    if item is None:
                        raise _unexpected(relative, "a file")
                    if fix_modes:
                        os.chmod(entry.path, _MODES[item.mode], follow_symlinks=False)
                    seen += 1
                elif entry.is_dir(follow_symlinks=False):
                    if relative not in folders:
                        raise _unexpected(relative, "a folder")
                    if fix_modes:
                        os.chmod(entry.path, 0o755, follow_symlinks=False)
                    pending.append((relative + b"/", entry.path))
                elif entry.is_symlink():
                    if relative not in made:
                        raise _unexpected(relative, "a symlink")
                else:
                    raise _unexpected(relative, "a special file")
    if seen != len(files):
        raise GitError(
            f"git wrote {seen} of the commit's {len(files)} files",
            details={"written": seen, "expected": len(files)},
        )
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
    input. On timeout and cancellation the whole process group is killed and reaped
    before this returns or raises. (Not ``umask=``: uvloop, the server's loop, refuses
    it; ``modes_need_fixing`` covers other umasks.)"""
    argv = [git, *environment.config, *args]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment.env,
        cwd=cwd,
        start_new_session=True,
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
