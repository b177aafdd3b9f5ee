"""Walks the base paths for Mastra projects, without following symlinks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from mastra_admin.sources.local._detector import MastraProjectDetector, ProjectMetadata
from mastra_admin.sources.local._patterns import NamePatterns
from mastra_admin.sources.local._settings import ALWAYS_EXCLUDED

__all__ = ["FoundProject", "ProjectScanner", "is_scanned_name"]

log = structlog.get_logger(__name__)

_ALWAYS = frozenset(ALWAYS_EXCLUDED)


def is_scanned_name(name: str) -> bool:
    """Folders the scanner never enters, whatever the settings: dependencies, VCS data,
    build output and hidden folders."""
    return name not in _ALWAYS and not name.startswith(".")


@dataclass(frozen=True)
class FoundProject:
    metadata: ProjectMetadata
    base_path: Path
    relative_path: str


class ProjectScanner:
    """Finds Mastra projects at most ``max_depth`` folders below each base path.

    A project folder is not searched for further projects unless it is also a
    workspace root (a monorepo whose root depends on ``@mastra/core``). Symlinked
    folders are never followed, so every path found is inside its base path.
    """

    def __init__(
        self,
        detector: MastraProjectDetector,
        *,
        include: NamePatterns,
        exclude: NamePatterns,
        max_depth: int,
    ) -> None:
        self.detector = detector
        self.include = include
        self.exclude = exclude
        self.max_depth = max_depth

    def is_excluded(self, name: str, relative: str) -> bool:
        return not is_scanned_name(name) or self.exclude.matches(name, relative)

    def scan(self, base: Path) -> list[FoundProject]:
        """Every project under ``base`` (an absolute, resolved path), sorted by path."""
        found: list[FoundProject] = []
        workspace_cache: dict[Path, list[str] | None] = {}
        stack: list[tuple[str, str, int]] = [(str(base), "", 0)]
        while stack:
            folder, relative, depth = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as exc:
                event = "source.scan.base_unreadable" if depth == 0 else "source.scan.unreadable"
                log.warning(event, path=folder, error=exc.strerror or str(exc))
                continue
            names = {entry.name for entry in entries}
            if "package.json" in names:
                metadata = self.detector.detect(folder, names, workspace_cache=workspace_cache)
                if metadata is not None:
                    if self.include.matches(metadata.path.name, relative or "."):
                        found.append(FoundProject(metadata, base, relative or "."))
                    if not metadata.declares_workspace:
                        continue
            if depth >= self.max_depth:
                continue
            for entry in entries:
                name = entry.name
                child = f"{relative}/{name}" if relative else name
                if self.is_excluded(name, child):
                    continue
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                except OSError:
                    continue
                stack.append((entry.path, child, depth + 1))
        found.sort(key=lambda p: p.metadata.path)
        return found
