"""Whether a fetched commit holds a Mastra project, read from the cache without an export:
``package.json``, the entry file and the lock files, as the local source judges folders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mastra_admin.core.build_steps import LOCK_FILES, PACKAGE_MANAGERS
from mastra_admin.core.errors import PayloadTooLarge
from mastra_admin.sources.git._git import GitCache, TreeEntry

__all__ = ["MASTRA_PACKAGE", "ProjectInfo", "inspect_commit"]

MASTRA_PACKAGE = "@mastra/core"
ENTRY_FILES = ("index.ts", "index.js")
MAX_PACKAGE_JSON_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProjectInfo:
    """What a commit says about the project in it; ``problems`` say why it cannot be
    built (``valid`` is their absence)."""

    name: str | None = None
    version: str | None = None
    package_manager: str = "npm"
    mastra_version: str | None = None
    has_mastra_entry: bool = False
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return not self.problems

    def metadata(self) -> dict[str, Any]:
        return {
            "package_manager": self.package_manager,
            "mastra_version": self.mastra_version,
            "has_mastra_entry": self.has_mastra_entry,
            "version": self.version,
            "valid": self.valid,
            "problems": list(self.problems),
        }


def _text(value: Any, limit: int = 214) -> str | None:
    """A short one-line text field of ``package.json`` (npm names are at most 214)."""
    if not isinstance(value, str) or not value.strip().isprintable():
        return None
    return value.strip()[:limit] or None


def _declared_manager(data: dict[str, Any] | None) -> str | None:
    """``"pnpm@9.12.0+sha512..."`` -> ``pnpm``."""
    value = _text((data or {}).get("packageManager"))
    if value is None:
        return None
    name = value.split("@", 1)[0].strip().lower()
    return name if name in PACKAGE_MANAGERS else None


def _lock_manager(entries: dict[str, TreeEntry], folder: str) -> str | None:
    return next(
        (
            manager
            for lock, manager in LOCK_FILES
            if (entry := entries.get(folder + lock)) is not None and entry.is_file
        ),
        None,
    )


async def _package_json(
    cache: GitCache, key: str, entry: TreeEntry | None, where: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The object in ``package.json``, or why there is none."""
    try:
        raw = await cache.read_entry(key, entry, MAX_PACKAGE_JSON_BYTES) if entry else None
    except PayloadTooLarge:
        return None, f"{where} is larger than 4 MiB"
    if raw is None:
        return None, f"there is no {where}: not a Node.js project"
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return None, f"{where} is not UTF-8"
    except json.JSONDecodeError as exc:
        return None, f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno})"
    if not isinstance(data, dict):
        return None, f"{where} is not a JSON object"
    return data, None


def _wanted(folder: str) -> list[str]:
    """The paths that decide, below ``folder`` (``""`` or ``apps/agent/``)."""
    names = ["package.json", *(f"src/mastra/{name}" for name in ENTRY_FILES)]
    return [folder + name for name in (*names, *(lock for lock, _ in LOCK_FILES))]


async def inspect_commit(cache: GitCache, key: str, sha: str, folder: str | None) -> ProjectInfo:
    """Judge the project in ``folder`` (the root when ``None``) of commit ``sha``,
    fetched before into the cache of ``key`` (two or three git commands in all)."""
    prefix = f"{folder}/" if folder else ""
    paths = _wanted(prefix) + (_wanted("") if prefix else [])
    entries = await cache.entries(key, sha, paths)
    data, problem = await _package_json(
        cache, key, entries.get(prefix + "package.json"), prefix + "package.json"
    )
    if data is None:
        assert problem is not None
        return ProjectInfo(problems=(problem,))
    problems: list[str] = []
    mastra_version: str | None = None
    found = False
    for section in ("dependencies", "devDependencies"):
        deps = data.get(section)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            problems.append(f"package.json {section} is not an object")
            continue
        if MASTRA_PACKAGE in deps:
            found = True
            mastra_version = mastra_version or (str(deps[MASTRA_PACKAGE]) or None)
    if not found:
        problems.append(f"package.json does not depend on {MASTRA_PACKAGE}: not a Mastra project")

    has_entry = any(
        (entry := entries.get(f"{prefix}src/mastra/{name}")) is not None and entry.is_file
        for name in ENTRY_FILES
    )
    if found and not has_entry:
        problems.append("no Mastra entry file (src/mastra/index.ts or src/mastra/index.js)")

    manager = _declared_manager(data) or _lock_manager(entries, prefix)
    if manager is None and prefix:
        # A monorepo app: the workspace root's packageManager or lock file decides.
        root_data, _ = await _package_json(cache, key, entries.get("package.json"), "package.json")
        manager = _declared_manager(root_data) or _lock_manager(entries, "")
    return ProjectInfo(
        name=_text(data.get("name")),
        version=_text(data.get("version")),
        package_manager=manager or "npm",
        mastra_version=mastra_version,
        has_mastra_entry=has_entry,
        problems=tuple(problems),
    )
