"""Which commands install, build and start a project, per package manager."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

import structlog

from mastra_admin.core.errors import BuildFailed

__all__ = [
    "PACKAGE_MANAGERS",
    "START_COMMAND",
    "build_command",
    "describe",
    "detect_package_manager",
    "install_command",
    "resolve_executable",
]

_log = structlog.get_logger("mastra_admin.runners.local")

PACKAGE_MANAGERS = ("npm", "pnpm", "yarn", "bun")

# Lock files in order of precedence when a folder holds several.
_LOCK_FILES: tuple[tuple[str, str], ...] = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lockb", "bun"),
    ("bun.lock", "bun"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
)

START_COMMAND: tuple[str, ...] = ("node", ".mastra/output/index.mjs")


def detect_package_manager(project_root: Path, declared: str | None = None) -> str:
    """The project's package manager: what the source found, else the
    ``packageManager`` field of ``package.json``, else the lock file, else npm."""
    if declared in PACKAGE_MANAGERS:
        return declared
    package_json = project_root / "package.json"
    try:
        field = json.loads(package_json.read_text(encoding="utf-8")).get("packageManager")
    except (OSError, ValueError, AttributeError):
        field = None
    if isinstance(field, str):
        name = field.split("@", 1)[0].strip()
        if name in PACKAGE_MANAGERS:
            return name
    for lock_file, manager in _LOCK_FILES:
        if (project_root / lock_file).is_file():
            return manager
    return "npm"


def _has_lock(project_root: Path, manager: str) -> bool:
    return any(m == manager and (project_root / f).is_file() for f, m in _LOCK_FILES)


def install_command(project_root: Path, manager: str) -> list[str]:
    """A reproducible install when there is a lock file, a plain one otherwise."""
    locked = _has_lock(project_root, manager)
    if manager == "npm":
        return ["npm", "ci" if locked else "install", "--no-audit", "--no-fund"]
    if manager == "pnpm":
        return ["pnpm", "install", "--frozen-lockfile"] if locked else ["pnpm", "install"]
    if manager == "yarn":
        return ["yarn", "install", "--frozen-lockfile"] if locked else ["yarn", "install"]
    if manager == "bun":
        return ["bun", "install", "--frozen-lockfile"] if locked else ["bun", "install"]
    raise ValueError(f"unknown package manager {manager!r}")


def build_command(manager: str) -> list[str]:
    """``mastra build`` through the package manager, never fetching the CLI."""
    if manager == "npm":
        return ["npm", "exec", "--no", "--", "mastra", "build"]
    if manager == "pnpm":
        return ["pnpm", "exec", "mastra", "build"]
    if manager == "yarn":
        return ["yarn", "run", "mastra", "build"]
    if manager == "bun":
        return ["bun", "run", "mastra", "build"]
    raise ValueError(f"unknown package manager {manager!r}")


def describe(argv: Sequence[str]) -> str:
    """The command as a person would type it (for logs and messages)."""
    return shlex.join(argv)


def resolve_executable(step: str, argv: Sequence[str], path: str | None) -> list[str]:
    """``argv`` with its program resolved on ``path``; ``BuildFailed`` naming the
    missing tool when it is not installed."""
    if not argv:
        raise BuildFailed(step, f"the {step} command is empty")
    program = argv[0]
    if "/" in program:
        if not Path(program).is_file():
            raise BuildFailed(step, f"{program} does not exist", details={"tool": program})
        return list(argv)
    found = shutil.which(program, path=path)
    if found is None:
        raise BuildFailed(
            step,
            f"{program} is not installed (no `{program}` on PATH); install it on the "
            f"admin's machine or set the project's {step} command",
            details={"tool": program},
        )
    return [found, *argv[1:]]
