"""Writing a commit's files out of a ``git archive`` tar stream, trusting none of its names.

Trees come from whoever controls the repository, and git does not stop a tree from
naming ``..``, so every member is checked here: absolute and ``..`` paths fail the
export, ``.git`` folders, devices, fifos, hard links and symlinks that lead outside
are left out (and logged). Symlinks are made last, after every file, so that no file
is ever written through one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import BinaryIO

import structlog

from mastra_admin.core.errors import Conflict, InvalidInput
from mastra_admin.sources.git._errors import GitError, RepositoryTooLarge, UnsafeTree

__all__ = ["ExportStats", "clear_target", "extract_tree", "prepare_target"]

_log = structlog.get_logger("mastra_admin.sources.git.archive")

_CHUNK = 1024 * 1024


@dataclass
class ExportStats:
    """What an export wrote, and what it left out: ``skipped`` (relative paths, each
    logged) and ``excluded`` (members under an excluded name, counted only)."""

    files: int = 0
    folders: int = 0
    symlinks: int = 0
    bytes: int = 0
    excluded: int = 0
    skipped: list[str] = field(default_factory=list)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class _Extraction:
    def __init__(self, target: str, max_bytes: int, exclude: frozenset[str]) -> None:
        self.target = target
        self.max_bytes = max_bytes
        self.exclude = exclude
        self.stats = ExportStats()
        self.links: list[tuple[str, str]] = []

    def skip(self, relative: str, reason: str) -> None:
        self.stats.skipped.append(relative)
        _log.warning("git.export.skipped", path=relative, reason=reason)

    def parts_of(self, name: str) -> list[str]:
        if name.startswith("/"):
            raise UnsafeTree(
                f"the commit names an absolute path ({name[:200]!r})", details={"path": name}
            )
        parts = name.split("/")
        if ".." in parts:
            raise UnsafeTree(
                f"the commit names a path with '..' ({name[:200]!r})", details={"path": name}
            )
        return [part for part in parts if part not in ("", ".")]

    def folder(self, path: str) -> None:
        try:
            os.makedirs(path, 0o755, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            relative = os.path.relpath(path, self.target)
            raise UnsafeTree(
                f"the commit names {relative!r} both as a file and as a folder",
                details={"path": relative},
            ) from exc

    def file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        source = archive.extractfile(member)
        if source is None:  # pragma: no cover - regular members always have data
            return
        self.folder(os.path.dirname(path))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError as exc:
            relative = os.path.relpath(path, self.target)
            raise UnsafeTree(
                f"the commit names {relative!r} twice", details={"path": relative}
            ) from exc
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o755 if member.mode & 0o100 else 0o644)
            while chunk := source.read(_CHUNK):
                self.stats.bytes += len(chunk)
                if self.stats.bytes > self.max_bytes:
                    raise RepositoryTooLarge(
                        f"the commit's files are larger than {self.max_bytes // 2**20} MB",
                        details={"limit": self.max_bytes},
                    )
                handle.write(chunk)
        with contextlib.suppress(OverflowError, ValueError):
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        self.stats.files += 1

    def member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = self.parts_of(member.name)
        if not parts:
            return
        relative = "/".join(parts)
        if any(part.lower() == ".git" for part in parts):
            self.skip(relative, "a .git folder is never exported")
            return
        if self.exclude and any(part in self.exclude for part in parts):
            self.stats.excluded += 1
            return
        path = os.path.join(self.target, *parts)
        if member.isdir():
            self.folder(path)
            self.stats.folders += 1
        elif member.isreg():
            self.file(archive, member, path)
        elif member.issym():
            self.links.append((relative, member.linkname))
        elif member.islnk():
            self.skip(relative, "hard links are not exported")
        else:
            self.skip(relative, "devices, fifos and other special files are not exported")

    def link(self, relative: str, text: str) -> None:
        path = os.path.join(self.target, relative)
        parent = os.path.dirname(path)
        lexical = os.path.normpath(os.path.join(os.path.dirname(relative), text))
        if not text or os.path.isabs(text) or lexical == ".." or lexical.startswith("../"):
            self.skip(relative, "symlink points outside the export")
            return
        if not _inside(os.path.realpath(parent), self.target):
            self.skip(relative, "symlink sits below a symlink that leads outside")
            return
        if os.path.lexists(path):
            self.skip(relative, "symlink has the name of a file or folder")
            return
        self.folder(parent)
        os.symlink(text, path)
        if not _inside(os.path.realpath(path), self.target):
            os.unlink(path)
            self.skip(relative, "symlink resolves outside the export")
            return
        self.stats.symlinks += 1

    def recheck_links(self, made: list[str]) -> None:
        """A link made early can resolve outside through one made later (``a -> .`` then
        ``b -> a/../x``); remove such links until every remaining one stays inside."""
        changed = True
        while changed:
            changed = False
            for relative in list(made):
                path = os.path.join(self.target, relative)
                if not _inside(os.path.realpath(path), self.target):
                    os.unlink(path)
                    made.remove(relative)
                    self.stats.symlinks -= 1
                    self.skip(relative, "symlink resolves outside the export")
                    changed = True

    def run(self, stream: BinaryIO) -> ExportStats:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                self.member(archive, member)
        made: list[str] = []
        for relative, text in self.links:
            before = self.stats.symlinks
            self.link(relative, text)
            if self.stats.symlinks > before:
                made.append(relative)
        self.recheck_links(made)
        return self.stats


def extract_tree(
    stream: BinaryIO, target: str, *, max_bytes: int, exclude: Collection[str] = ()
) -> ExportStats:
    """Write the tar ``stream`` into the folder ``target`` (absolute, real, empty).

    Members with a path part named in ``exclude`` (``node_modules``, say: exact
    names, at any depth) are left out. Raises ``UnsafeTree`` for absolute or ``..``
    names and names used twice, ``RepositoryTooLarge`` past ``max_bytes``, ``GitError``
    for a broken stream. The caller removes what was written when this raises.
    """
    try:
        return _Extraction(target, max_bytes, frozenset(exclude)).run(stream)
    except tarfile.TarError as exc:
        raise GitError(f"git archive gave a broken tar stream: {exc}") from exc
    except OSError as exc:
        raise GitError(
            f"writing the commit's files failed: {exc.strerror or exc}",
            details={"target_dir": target},
        ) from exc


def prepare_target(target: str, *, forbidden: str) -> tuple[str, bool]:
    """The absolute real export folder, made when absent (with ``created`` = True).

    An existing one must be an empty folder and not a symlink; a folder that overlaps
    ``forbidden`` (the cache) is refused.
    """
    absolute = os.path.abspath(target)
    if os.path.islink(absolute):
        raise InvalidInput(f"export folder {absolute} is a symlink", details={"target_dir": target})
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    cache = os.path.realpath(forbidden)
    if _inside(real, cache) or _inside(cache, real):
        raise InvalidInput(
            f"export folder {absolute} overlaps the git cache", details={"target_dir": target}
        )
    os.makedirs(os.path.dirname(real), exist_ok=True)
    try:
        os.mkdir(real, 0o755)
    except FileExistsError:
        if not os.path.isdir(real):
            raise InvalidInput(
                f"export folder {absolute} exists and is not a folder",
                details={"target_dir": target},
            ) from None
        with os.scandir(real) as listing:
            if any(True for _ in listing):
                raise Conflict(
                    f"export folder {absolute} is not empty", details={"target_dir": target}
                ) from None
        return real, False
    return real, True


def clear_target(target: str, created: bool) -> None:
    """Undo a failed export: remove the folder it made, or empty the one it was given."""
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    with contextlib.suppress(OSError), os.scandir(target) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
