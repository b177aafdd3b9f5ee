"""``LocalProjectSource``: Mastra projects in folders on this machine."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import structlog

from mastra_admin.core.errors import InvalidInput, MastraAdminError, NotFound, PermissionDenied
from mastra_admin.core.source import ChangeEvent, ProjectSource, ProjectSourceProvider
from mastra_admin.sources.local._copy import CopyStats, ProjectCopier
from mastra_admin.sources.local._detector import MastraProjectDetector
from mastra_admin.sources.local._patterns import NamePatterns
from mastra_admin.sources.local._scanner import FoundProject, ProjectScanner
from mastra_admin.sources.local._settings import (
    ALWAYS_EXCLUDED,
    LocalSourceSettings,
    default_base_paths,
)
from mastra_admin.sources.local._watch import ProjectWatch

__all__ = ["LocalProjectSource", "project_id_for"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_ID = re.compile(r"[0-9a-f]{16}")
_MIN_RESCAN_S = 1.0


def project_id_for(path: Path | str) -> str:
    """The stable id of the project at ``path``: the first 16 hex digits of the SHA-256
    of its resolved absolute path. The same folder keeps its id across restarts and
    machines that mount it at the same place; a moved folder is a new project."""
    resolved = os.path.realpath(path)
    return hashlib.sha256(os.fsencode(resolved)).hexdigest()[:16]


async def _run_blocking(func: Callable[..., _T], /, *args: Any) -> _T:
    """The one place where file-system work leaves the event loop."""
    return await asyncio.to_thread(func, *args)


def _not_found(source_id: str) -> NotFound:
    return NotFound(f"no local project with id {source_id!r}", details={"source_id": source_id})


class LocalProjectSource(ProjectSourceProvider):
    """Finds Mastra projects below configured folders and copies them into build dirs.

    ``LocalProjectSource(base_paths=["~/agents"])`` or
    ``LocalProjectSource(LocalSourceSettings(...))``. Listing is cached for
    ``cache_ttl_s`` seconds; changes seen by ``watch_changes`` end the cache early,
    and ``invalidate_cache()`` does so by hand. Every path handed in from outside
    (a ``ProjectSource`` from a client, a stored project) is resolved and must lie
    inside a base path, outside excluded folders.
    """

    type: ClassVar[str] = "local"

    def __init__(self, settings: LocalSourceSettings | None = None, **options: Any) -> None:
        if settings is None:
            settings = LocalSourceSettings(**options)
        elif options:
            settings = LocalSourceSettings.model_validate({**settings.model_dump(), **options})
        self.settings = settings
        configured = [Path(p).expanduser() for p in settings.base_paths]
        self.uses_default_paths = not configured
        bases: list[Path] = []
        for path in configured or default_base_paths():
            resolved = Path(os.path.realpath(path))
            if resolved not in bases:
                bases.append(resolved)
        self.base_paths: tuple[Path, ...] = tuple(bases)
        self._exclude = NamePatterns(settings.exclude)
        self._copy_exclude = NamePatterns(settings.copy_exclude)
        self._detector = MastraProjectDetector()
        self._scanner = ProjectScanner(
            self._detector,
            include=NamePatterns(settings.include),
            exclude=self._exclude,
            max_depth=settings.max_depth,
        )
        self._copier = ProjectCopier(settings.copy_workers)
        self._cache: dict[str, ProjectSource] = {}
        self._cache_at: float | None = None
        self._generation = 0
        self._scan_lock = asyncio.Lock()
        self._watches: set[ProjectWatch] = set()
        self._closed = False
        log.info(
            "source.local.configured",
            base_paths=[str(p) for p in self.base_paths],
            default=self.uses_default_paths,
        )

    # -- listing --------------------------------------------------------------

    def invalidate_cache(self) -> None:
        """Forget the last scan; the next call scans again."""
        self._generation += 1
        self._cache_at = None

    def _fresh(self, max_age: float) -> bool:
        return self._cache_at is not None and time.monotonic() - self._cache_at < max_age

    def _to_source(self, found: FoundProject) -> ProjectSource:
        meta = found.metadata
        metadata = meta.as_metadata()
        metadata["base_path"] = str(found.base_path)
        metadata["relative_path"] = found.relative_path
        return ProjectSource(
            id=project_id_for(meta.path),
            name=meta.name,
            type=self.type,
            path=str(meta.path),
            default_branch=meta.git_branch,
            metadata=metadata,
        )

    def _scan_all(self) -> dict[str, ProjectSource]:
        projects: dict[str, ProjectSource] = {}
        for base in self.base_paths:
            for found in self._scanner.scan(base):
                source = self._to_source(found)
                projects.setdefault(source.id, source)
        return dict(sorted(projects.items(), key=lambda item: item[1].path))

    async def _projects(self, *, max_age: float | None = None) -> dict[str, ProjectSource]:
        max_age = self.settings.cache_ttl_s if max_age is None else max_age
        if self._fresh(max_age):
            return self._cache
        async with self._scan_lock:
            if self._fresh(max_age):
                return self._cache
            generation = self._generation
            started = time.perf_counter()
            projects = await _run_blocking(self._scan_all)
            self._cache = projects
            # A change seen during the scan may be missing from it: keep it stale.
            self._cache_at = time.monotonic() if generation == self._generation else None
            log.debug(
                "source.scan.finished",
                projects=len(projects),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return projects

    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        """Every Mastra project below the base paths, sorted by path. A local source
        has no notion of teams: ``team_id`` does not narrow the list."""
        projects = await self._projects()
        return [p.model_copy(deep=True) for p in projects.values()]

    async def get_project(self, source_id: str) -> ProjectSource:
        if not isinstance(source_id, str) or not _ID.fullmatch(source_id):
            raise _not_found(source_id)
        projects = await self._projects()
        if source_id not in projects:
            # A project made since the last scan: look again, but not more than once a second.
            projects = await self._projects(max_age=_MIN_RESCAN_S)
        project = projects.get(source_id)
        if project is None:
            raise _not_found(source_id)
        return project.model_copy(deep=True)

    # -- containment ----------------------------------------------------------

    def _is_ignored_in_copy(self, name: str, relative: str) -> bool:
        return name in ALWAYS_EXCLUDED or self._copy_exclude.matches(name, relative)

    def resolve_project_root(self, source: ProjectSource) -> Path:
        """The real folder of ``source``, checked: a local project, an absolute path that
        resolves (through ``..`` and symlinks) inside a base path and outside excluded
        folders, an existing folder, and the id that belongs to that folder.

        Blocking (file-system calls); the async methods run it in a thread.
        """
        if source.type != self.type:
            raise InvalidInput(
                f"the local source cannot read a {source.type!r} project",
                details={"type": source.type},
            )
        raw = source.path
        if not raw or "\x00" in raw or not os.path.isabs(raw):
            raise InvalidInput(
                "a local project path must be an absolute path", details={"path": raw}
            )
        real = Path(os.path.realpath(raw))
        base = next((b for b in self.base_paths if real == b or real.is_relative_to(b)), None)
        if base is None:
            raise PermissionDenied(
                f"project path {raw} is outside the configured base paths",
                details={"path": raw},
            )
        relative = ""
        for part in real.relative_to(base).parts:
            relative = f"{relative}/{part}" if relative else part
            if self._scanner.is_excluded(part, relative):
                raise PermissionDenied(
                    f"project path {raw} is inside an excluded folder ({relative})",
                    details={"path": raw},
                )
        if not real.is_dir():
            raise NotFound(f"project folder {raw} does not exist", details={"path": raw})
        if project_id_for(real) != source.id:
            raise InvalidInput(
                f"project id {source.id!r} does not belong to {raw}",
                details={"path": raw, "source_id": source.id},
            )
        return real

    async def validate_access(self, source: ProjectSource) -> bool:
        """True when the folder is inside the base paths, readable, and still a Mastra
        project; never raises for a bad project."""

        def check() -> bool:
            try:
                root = self.resolve_project_root(source)
            except MastraAdminError as exc:
                log.info("source.access_denied", source_id=source.id, reason=exc.code)
                return False
            if not os.access(root, os.R_OK | os.X_OK):
                return False
            return self._detector.detect(root) is not None

        return await _run_blocking(check)

    # -- copies ---------------------------------------------------------------

    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        """Copy the project into ``target_dir`` (created when absent, else it must be
        empty) and return ``target_dir``, the root of the copy.

        Left out: ``node_modules``, ``.git``, ``dist``, ``.next``, ``.mastra`` at any
        depth and the ``copy_exclude`` patterns. File modes and times are kept;
        symlinks pointing inside the project are kept (absolute ones re-expressed
        relative to the copy), those pointing outside are skipped with a warning.
        """
        target, _ = await self._copy(source, Path(target_dir))
        return target

    async def copy_project(self, source: ProjectSource, target_dir: Path) -> CopyStats:
        """``get_project_path`` returning what the copy did (files, bytes, skipped)."""
        _, stats = await self._copy(source, Path(target_dir))
        return stats

    async def _copy(self, source: ProjectSource, target_dir: Path) -> tuple[Path, CopyStats]:
        root = await _run_blocking(self.resolve_project_root, source)
        log.info("source.copy.started", project_id=source.id, target=str(target_dir))
        target, stats = await self._copier.copy(
            root, target_dir, exclude=self._copy_exclude, project_id=source.id
        )
        log.info(
            "source.copy.finished",
            project_id=source.id,
            target=str(target),
            files=stats.files,
            folders=stats.folders,
            symlinks=stats.symlinks,
            bytes=stats.bytes,
            skipped=len(stats.skipped),
            duration_ms=round(stats.seconds * 1000, 1),
        )
        return target, stats

    # -- watching -------------------------------------------------------------

    def watch_changes(self, source: ProjectSource) -> AsyncIterator[list[ChangeEvent]]:
        """Batches of changes below the project, one per burst (quiet for
        ``watch_debounce_ms``). Paths are relative to the project root; changes in
        folders that never reach a build are left out. Each batch also ends the
        listing cache. Stops when the consumer stops iterating or on ``close()``."""
        return self._watch(source)

    async def _watch(self, source: ProjectSource) -> AsyncIterator[list[ChangeEvent]]:
        if self._closed:
            raise InvalidInput("the local source is closed")
        root = await _run_blocking(self.resolve_project_root, source)
        watch = ProjectWatch(
            root,
            is_ignored=self._is_ignored_in_copy,
            debounce_ms=self.settings.watch_debounce_ms,
            max_wait_ms=self.settings.watch_max_wait_ms,
            force_polling=self.settings.watch_force_polling,
        )
        self._watches.add(watch)
        try:
            async for batch in watch.batches():
                self.invalidate_cache()
                log.debug("source.watch.batch", project_id=source.id, changes=len(batch))
                yield batch
        finally:
            self._watches.discard(watch)

    async def close(self) -> None:
        """Stop every watch and the copy threads. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        for watch in list(self._watches):
            watch.stop()
        await _run_blocking(self._copier.close)
