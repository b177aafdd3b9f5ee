"""Recognises a Mastra project in a folder and reads what a build needs to know about it."""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from mastra_admin.core.build_steps import LOCK_FILES, PACKAGE_MANAGERS
from mastra_admin.sources.local._patterns import workspace_pattern_matches

__all__ = ["ENTRY_FILES", "LOCK_FILES", "MastraProjectDetector", "ProjectMetadata"]

log = structlog.get_logger(__name__)

MASTRA_PACKAGE = "@mastra/core"
ENTRY_FILES = ("src/mastra/index.ts", "src/mastra/index.js")
MAX_PACKAGE_JSON_BYTES = 4 * 1024 * 1024
_GIT_HEAD_REF = re.compile(r"ref:\s*refs/heads/(\S+)")


@dataclass(frozen=True)
class ProjectMetadata:
    """What the detector knows about one Mastra project.

    ``problems`` lists, in words, why the project cannot be built as it is (a
    malformed ``package.json``, no ``src/mastra/index.ts``); ``valid`` is their absence.
    """

    path: Path
    name: str
    version: str | None = None
    description: str | None = None
    package_manager: str = "npm"
    package_manager_from: str = "default"
    mastra_version: str | None = None
    has_mastra_entry: bool = False
    entry: str | None = None
    workspace_root: Path | None = None
    git_branch: str | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)
    declares_workspace: bool = False
    """The folder is also a workspace root (``workspaces`` or ``pnpm-workspace.yaml``)."""

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_metadata(self) -> dict[str, Any]:
        """The ``ProjectSource.metadata`` of this project (JSON-safe values only)."""
        return {
            "package_manager": self.package_manager,
            "package_manager_from": self.package_manager_from,
            "mastra_version": self.mastra_version,
            "has_mastra_entry": self.has_mastra_entry,
            "entry": self.entry,
            "version": self.version,
            "description": self.description,
            "workspace_root": str(self.workspace_root) if self.workspace_root else None,
            "git_branch": self.git_branch,
            "valid": self.valid,
            "problems": list(self.problems),
        }


@dataclass
class _PackageJson:
    data: dict[str, Any] | None
    problem: str | None


def _entry_file(folder: str) -> str | None:
    return next((e for e in ENTRY_FILES if os.path.isfile(os.path.join(folder, e))), None)


def _read_package_json(path: Path | str) -> _PackageJson | None:
    """``None`` when there is no file; otherwise its object or why it is unusable."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PACKAGE_JSON_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return _PackageJson(None, f"package.json cannot be read: {exc.strerror or exc}")
    if len(raw) > MAX_PACKAGE_JSON_BYTES:
        return _PackageJson(None, "package.json is larger than 4 MiB")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return _PackageJson(None, "package.json is not UTF-8")
    except json.JSONDecodeError as exc:
        return _PackageJson(
            None, f"package.json is not valid JSON (line {exc.lineno}, column {exc.colno})"
        )
    if not isinstance(data, dict):
        return _PackageJson(None, "package.json is not a JSON object")
    return _PackageJson(data, None)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _package_manager_field(data: dict[str, Any]) -> str | None:
    """``"pnpm@9.12.0+sha512..."`` -> ``pnpm``."""
    value = _text(data.get("packageManager"))
    if value is None:
        return None
    name = value.split("@", 1)[0].strip().lower()
    return name if name in PACKAGE_MANAGERS else None


def _lock_file_manager(folder: Path, names: set[str] | None) -> str | None:
    for lock_name, manager in LOCK_FILES:
        if names is not None:
            if lock_name in names:
                return manager
        elif os.path.isfile(folder / lock_name):
            return manager
    return None


def _pnpm_workspace_packages(text: str) -> list[str]:
    """The ``packages`` list of a ``pnpm-workspace.yaml``: block or flow style.

    A full YAML parser is not needed for this one documented key."""

    def clean(item: str) -> str:
        item = item.split(" #", 1)[0].strip()
        return item.strip("'\"").strip()

    patterns: list[str] = []
    in_packages = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            key, _, rest = stripped.partition(":")
            in_packages = key.strip().strip("'\"") == "packages"
            rest = rest.strip()
            if in_packages and rest.startswith("["):
                inner = rest.strip("[]")
                patterns += [clean(p) for p in inner.split(",") if clean(p)]
                in_packages = False
            continue
        if in_packages and stripped.startswith("-"):
            item = clean(stripped[1:])
            if item:
                patterns.append(item)
    return patterns


def _workspace_patterns(folder: Path) -> list[str] | None:
    """The workspace globs a folder declares, or ``None`` when it is no workspace root."""
    try:
        text = (folder / "pnpm-workspace.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    else:
        return _pnpm_workspace_packages(text)
    package = _read_package_json(folder / "package.json")
    if package is None or package.data is None:
        return None
    workspaces = package.data.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    if isinstance(workspaces, list):
        return [w for w in workspaces if isinstance(w, str)]
    return None


def _git_branch(folder: Path) -> str | None:
    try:
        head = (folder / ".git" / "HEAD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _GIT_HEAD_REF.match(head.strip())
    return match.group(1) if match else None


class MastraProjectDetector:
    """Decides whether a folder is a Mastra project and reads its metadata.

    A Mastra project is a folder whose ``package.json`` names ``@mastra/core`` in
    ``dependencies`` or ``devDependencies``. A malformed ``package.json`` is logged
    once (per file version) and never raises; when the folder still has a Mastra
    entry file it is reported as an invalid project so that people see why.
    """

    def __init__(self) -> None:
        self._warned: dict[str, int] = {}
        self._lock = threading.Lock()

    def _warn_once(self, path: Path, problem: str) -> None:
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            stamp = 0
        key = str(path)
        with self._lock:
            if self._warned.get(key) == stamp:
                return
            self._warned[key] = stamp
        log.warning("source.package_json_invalid", path=key, problem=problem)

    @staticmethod
    def workspace_patterns(
        folder: Path, cache: dict[Path, list[str] | None] | None = None
    ) -> list[str] | None:
        """The workspace globs ``folder`` declares (``package.json`` ``workspaces`` or
        ``pnpm-workspace.yaml``), or ``None`` when it is no workspace root."""
        if cache is None:
            return _workspace_patterns(folder)
        if folder not in cache:
            cache[folder] = _workspace_patterns(folder)
        return cache[folder]

    def find_workspace_root(
        self, folder: Path, cache: dict[Path, list[str] | None] | None = None
    ) -> Path | None:
        """The nearest folder above ``folder`` that declares a workspace containing it."""
        cache = {} if cache is None else cache
        for parent in folder.parents:
            patterns = self.workspace_patterns(parent, cache)
            if patterns is None:
                continue
            relative = folder.relative_to(parent).as_posix()
            return parent if workspace_pattern_matches(patterns, relative) else None
        return None

    def detect(
        self,
        folder: Path | str,
        names: set[str] | None = None,
        *,
        workspace_cache: dict[Path, list[str] | None] | None = None,
    ) -> ProjectMetadata | None:
        """Metadata of the Mastra project in ``folder`` (an absolute, resolved path), or
        ``None`` when it is none. ``names`` are the folder's entries when the caller
        has listed it already (saves system calls while scanning)."""
        if names is not None and "package.json" not in names:
            return None
        folder_text = os.fspath(folder)
        package = _read_package_json(os.path.join(folder_text, "package.json"))
        if package is None:
            return None
        folder = Path(folder_text)
        if package.data is None:
            entry = _entry_file(folder_text)
            assert package.problem is not None
            self._warn_once(folder / "package.json", package.problem)
            if entry is None:
                return None
            lock_manager = _lock_file_manager(folder, names)
            return ProjectMetadata(
                path=folder,
                name=folder.name,
                has_mastra_entry=True,
                entry=entry,
                package_manager=lock_manager or "npm",
                package_manager_from="lockfile" if lock_manager else "default",
                git_branch=_git_branch(folder),
                problems=(package.problem,),
            )

        data = package.data
        problems: list[str] = []
        mastra_version: str | None = None
        found = False
        for key in ("dependencies", "devDependencies"):
            deps = data.get(key)
            if deps is None:
                continue
            if not isinstance(deps, dict):
                problems.append(f"package.json {key} is not an object")
                continue
            if MASTRA_PACKAGE in deps:
                found = True
                mastra_version = mastra_version or (str(deps[MASTRA_PACKAGE]) or None)
        if not found:
            return None
        entry = _entry_file(folder_text)
        if entry is None:
            problems.append("no Mastra entry file (src/mastra/index.ts or src/mastra/index.js)")

        workspace_root = self.find_workspace_root(folder, workspace_cache)
        manager, manager_from = _package_manager_field(data), "packageManager"
        if manager is None:
            manager, manager_from = _lock_file_manager(folder, names), "lockfile"
        if manager is None and workspace_root is not None:
            root_package = _read_package_json(workspace_root / "package.json")
            root_data = root_package.data if root_package and root_package.data else {}
            manager = _package_manager_field(root_data) or _lock_file_manager(workspace_root, None)
            manager_from = "workspace"
        if manager is None:
            manager, manager_from = "npm", "default"

        return ProjectMetadata(
            path=folder,
            name=_text(data.get("name")) or folder.name,
            version=_text(data.get("version")),
            description=_text(data.get("description")),
            package_manager=manager,
            package_manager_from=manager_from,
            mastra_version=mastra_version,
            has_mastra_entry=entry is not None,
            entry=entry,
            workspace_root=workspace_root,
            git_branch=_git_branch(folder)
            or (_git_branch(workspace_root) if workspace_root else None),
            problems=tuple(problems),
            declares_workspace=(
                (names is not None and "pnpm-workspace.yaml" in names)
                or (names is None and os.path.isfile(folder / "pnpm-workspace.yaml"))
                or isinstance(data.get("workspaces"), (list, dict))
            ),
        )
