"""The export folder around a checkout: making and emptying it, the symlinks made last,
and the figures of an export.

git writes the regular files (``_export``); symlinks are made here, after every file
and folder exists, so that no file is ever written through one, and each is kept only
when it stays inside the export — checked again once all of them exist, because a link
can lead out through another one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from mastra_admin.core.errors import Conflict, InvalidInput
from mastra_admin.sources.git._errors import UnsafeTree

__all__ = ["ExportStats", "clear_target", "make_links", "prepare_target", "skip"]

_log = structlog.get_logger("mastra_admin.sources.git.archive")


@dataclass
class ExportStats:
    """What an export wrote, and what it left out: ``skipped`` (relative paths, each
    logged) and ``excluded`` (files, symlinks and submodules under an excluded name,
    counted only)."""

    files: int = 0
    folders: int = 0
    symlinks: int = 0
    bytes: int = 0
    excluded: int = 0
    skipped: list[str] = field(default_factory=list)


def skip(stats: ExportStats, relative: str, reason: str) -> None:
    """Record (and log) a path the export leaves out."""
    stats.skipped.append(relative)
    _log.warning("git.export.skipped", path=relative, reason=reason)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _link(target: str, relative: str, text: str, stats: ExportStats) -> bool:
    path = os.path.join(target, relative)
    parent = os.path.dirname(path)
    lexical = os.path.normpath(os.path.join(os.path.dirname(relative), text))
    if not text or os.path.isabs(text) or lexical == ".." or lexical.startswith("../"):
        skip(stats, relative, "symlink points outside the export")
        return False
    if not _inside(os.path.realpath(parent), target):
        skip(stats, relative, "symlink sits below a symlink that leads outside")
        return False
    if os.path.lexists(path):
        skip(stats, relative, "symlink has the name of a file or folder")
        return False
    try:
        os.makedirs(parent, 0o755, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UnsafeTree(
            f"the commit names {relative!r} below a file", details={"path": relative}
        ) from exc
    try:
        os.symlink(text, path)
    except ValueError:
        skip(stats, relative, "symlink text is not a path")
        return False
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        skip(stats, relative, "symlink text is too long")
        return False
    if not _inside(os.path.realpath(path), target):
        os.unlink(path)
        skip(stats, relative, "symlink resolves outside the export")
        return False
    stats.symlinks += 1
    return True


def make_links(target: str, links: Iterable[tuple[str, str]], stats: ExportStats) -> list[str]:
    """Make the symlinks ``(relative path, text)`` under ``target`` (absolute, real),
    once every file and folder of the export exists; return the relative paths kept.

    A link is kept only if its text is relative, stays inside lexically and its real
    path stays inside ``target``; the others are skipped (and logged). A link made early
    can resolve outside through one made later (``a -> .`` then ``b -> a/../x``): such
    links are removed until every remaining one stays inside.
    """
    made = [relative for relative, text in links if _link(target, relative, text, stats)]
    changed = True
    while changed:
        changed = False
        for relative in list(made):
            path = os.path.join(target, relative)
            if not _inside(os.path.realpath(path), target):
                os.unlink(path)
                made.remove(relative)
                stats.symlinks -= 1
                skip(stats, relative, "symlink resolves outside the export")
                changed = True
    return made


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
