"""Spare exports: what turns a build's export of 5,000 files into the writing of the few
that changed.

Writing every file of a commit again for each build is most of a build's copy (and
more than a fifth of a ``git clone``). So the cache keeps, per cache key, a pristine
**spare**: a full export of the last exported commit, written by the same code as
any export (checked plan, ``checkout-index``, symlinks made last, the final walk), in
the background after a build folder was handed out, inside the cache (0700) and never
inside a build folder. The next export of that key takes the spare (one at a time:
who takes it owns it), lists the new commit with ``git ls-tree`` and plans it with
``plan_export`` — the very checks of a full export, on the very listing — compares the
plan with the spare's ``Manifest`` (what its export planned), applies the difference
(``changes_between`` and ``apply_changes``), verifies the result with
``finish_export`` and renames the spare into the build folder.

This module holds the pure parts: the manifest, the change set and its application,
which goes through folder descriptors opened with ``O_NOFOLLOW`` so that nothing can
be written, removed or changed outside the spare even if a symlink stood where a
folder is expected. ``GitCache`` (``_git``) decides when a spare is made, taken, given
back or thrown away.
"""

from __future__ import annotations

import marshal
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from mastra_admin.sources.git._errors import GitError
from mastra_admin.sources.git._export import ExportPlan, TreeItem

__all__ = ["Changes", "Manifest", "apply_changes", "changes_between", "wanted_blobs"]

_VERSION = 1
_MODES = {b"100644": 0o644, b"100755": 0o755}
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_OPEN_FOLDERS = 256
"""Folder descriptors kept open while changes are applied (then all are closed)."""


@dataclass(frozen=True)
class Manifest:
    """What a spare tree holds, as the export that wrote it planned it: regular
    ``files`` (path -> its listing record, a plain tuple equal to the ``TreeItem``), the
    symlinks it planned (path -> object id, size; made or skipped) and every folder.
    Kept beside the tree (``dump``/``load``, marshal: it is read on the build's path,
    where parsing a listing again would cost milliseconds) and only for the life of the
    ``GitCache`` that wrote it."""

    files: dict[bytes, tuple[bytes, bytes, bytes, int, bytes]]
    links: dict[bytes, tuple[bytes, int]]
    folders: frozenset[bytes]

    @classmethod
    def of(cls, plan: ExportPlan) -> Manifest:
        return cls(
            files={
                path: (item.mode, item.kind, item.oid, item.size, item.path)
                for path, item in plan.files.items()
            },
            links={item.path: (item.oid, item.size) for item in plan.links},
            folders=frozenset(plan.folders),
        )

    def dump(self) -> bytes:
        return marshal.dumps((_VERSION, self.files, self.links, sorted(self.folders)))

    @classmethod
    def load(cls, data: bytes) -> Manifest:
        """The manifest ``dump`` wrote; ``ValueError`` for anything else."""
        try:
            version, files, links, folders = marshal.loads(data)
        except (EOFError, TypeError, ValueError) as exc:
            raise ValueError("not a spare manifest") from exc
        if (
            version != _VERSION
            or not isinstance(files, dict)
            or not isinstance(links, dict)
            or not isinstance(folders, list)
        ):
            raise ValueError("not a spare manifest")
        return cls(files=files, links=links, folders=frozenset(folders))

    def sizes(self) -> dict[bytes, int]:
        """Blob sizes by object id, of every file and symlink."""
        sizes = {record[2]: record[3] for record in self.files.values()}
        sizes.update(self.links.values())
        return sizes


@dataclass
class Changes:
    """What turns a spare holding ``Manifest`` into the export of a ``plan``: removals
    first (every symlink, the files and the topmost folders that are gone), then the
    new folders (parents first), the files to write and those whose mode alone changed.
    Symlinks are all made again by ``finish_export``, as in a full export: a link kept
    from before could now lead out through a folder that became a link."""

    links: list[bytes] = field(default_factory=list)
    files: list[bytes] = field(default_factory=list)
    folders: list[bytes] = field(default_factory=list)
    new_folders: list[bytes] = field(default_factory=list)
    writes: list[TreeItem] = field(default_factory=list)
    modes: list[TreeItem] = field(default_factory=list)


def _below(path: bytes, folders: frozenset[bytes]) -> bool:
    """Whether a proper parent folder of ``path`` is in ``folders``."""
    end = path.rfind(b"/")
    while end > 0:
        if path[:end] in folders:
            return True
        end = path.rfind(b"/", 0, end)
    return False


def changes_between(manifest: Manifest, plan: ExportPlan) -> Changes:
    """The ``Changes`` from what the spare holds to what ``plan`` writes (a build's copy
    waits for this: whole records are compared, a ``TreeItem`` being the tuple the
    manifest keeps)."""
    changes = Changes(links=list(manifest.links))
    before = manifest.files
    for item in [item for path, item in plan.files.items() if before.get(path) != item]:
        path = item.path
        held = before.get(path)
        if held is None or held[2] != item.oid:
            changes.writes.append(item)
        else:  # the same content: the mode alone changed
            changes.modes.append(item)
    wanted = frozenset(plan.folders)
    gone = manifest.folders - wanted
    changes.folders = sorted(folder for folder in gone if not _below(folder, gone))
    changes.files = sorted(
        path for path in before.keys() - plan.files.keys() if not _below(path, gone)
    )
    changes.new_folders = sorted(wanted - manifest.folders)
    return changes


class _Folders:
    """Descriptors of the folders of a tree, each opened from its parent's with
    ``O_NOFOLLOW``: a path is only ever reached through real folders of the tree."""

    def __init__(self, root: int) -> None:
        self._root = root
        self._open: dict[bytes, int] = {}

    def __enter__(self) -> _Folders:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def folder(self, path: bytes) -> int:
        if not path:
            return self._root
        fd = self._open.get(path)
        if fd is None:
            parent, _, name = path.rpartition(b"/")
            fd = os.open(name, _FOLDER_FLAGS, dir_fd=self.folder(parent))
            self._open[path] = fd
        return fd

    def parent(self, path: bytes) -> tuple[int, bytes]:
        """The descriptor of ``path``'s folder and its last name."""
        if len(self._open) >= _MAX_OPEN_FOLDERS:
            self._close()
        parent, _, name = path.rpartition(b"/")
        return self.folder(parent), name


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def apply_changes(root: str, changes: Changes, blobs: Mapping[bytes, bytes]) -> None:
    """Apply ``changes`` to the spare tree ``root``; ``blobs`` holds the content of every
    file to write, by object id. Files get mode 0644 or 0755 and new folders 0755 whatever
    the umask, as a full export leaves them. Raises ``GitError`` (or ``OSError``) when the
    tree is not what the manifest says: the caller then throws the spare away."""
    root_fd = os.open(root, _FOLDER_FLAGS)
    try:
        with _Folders(root_fd) as folders:
            _remove(folders, changes)
        with _Folders(root_fd) as folders:  # anew: folders may be gone
            for path in changes.new_folders:
                parent, name = folders.parent(path)
                os.mkdir(name, 0o755, dir_fd=parent)
                os.chmod(name, 0o755, dir_fd=parent)
            for item in changes.writes:
                data = blobs.get(item.oid)
                if data is None:
                    raise GitError("a changed file was not read from the cache")
                parent, name = folders.parent(item.path)
                fd = os.open(name, _WRITE_FLAGS, 0o600, dir_fd=parent)
                try:
                    os.fchmod(fd, _MODES[item.mode])
                    _write(fd, data)
                finally:
                    os.close(fd)
            for item in changes.modes:
                parent, name = folders.parent(item.path)
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                try:
                    os.fchmod(fd, _MODES[item.mode])
                finally:
                    os.close(fd)
    finally:
        os.close(root_fd)


def _remove(folders: _Folders, changes: Changes) -> None:
    for path in changes.links:
        try:
            parent, name = folders.parent(path)
            kind = os.lstat(name, dir_fd=parent).st_mode
        except FileNotFoundError:
            continue  # never made (it led out), or under a folder that is gone
        if stat.S_ISLNK(kind):
            os.unlink(name, dir_fd=parent)
    for path in changes.files:
        parent, name = folders.parent(path)
        os.unlink(name, dir_fd=parent)
    for path in changes.folders:
        parent, name = folders.parent(path)
        if not stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode):
            raise GitError("the spare does not hold a folder it should")
        shutil.rmtree(name, dir_fd=parent)


def wanted_blobs(
    records: Iterable[tuple[bytes, bytes, bytes, bytes]],
    manifest: Manifest,
    exclude: frozenset[bytes],
) -> set[bytes]:
    """Object ids to read for an export from the spare: every symlink's (their texts
    are made again), and every regular file's that the spare does not hold at that path
    (its size is needed by the plan, its content by ``apply_changes``). Names under an
    excluded folder are left out: the plan leaves them out before it reads a size."""
    wanted: set[bytes] = set()
    files = manifest.files
    for mode, _kind, oid, path in records:
        if mode == b"120000":
            wanted.add(oid)
        elif mode in _MODES:
            held = files.get(path)
            if held is not None and held[2] == oid:
                continue
            if exclude and not exclude.isdisjoint(path.split(b"/")):
                continue
            wanted.add(oid)
    return wanted
