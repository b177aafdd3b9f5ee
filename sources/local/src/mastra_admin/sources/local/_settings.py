"""Settings of the local project source, and where it looks when none are given."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ALWAYS_EXCLUDED", "LocalSourceSettings", "default_base_paths"]

ALWAYS_EXCLUDED: tuple[str, ...] = ("node_modules", ".git", "dist", ".next", ".mastra")
"""Folder names never scanned and never copied, at any depth: dependencies, VCS data
and build output are recreated by every build."""


def _split_list(value: Any, *, separator: str) -> Any:
    """Accept a list, a JSON list, or one string of items joined by ``separator``
    (how such lists arrive from environment variables)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(parsed, list):
                return parsed
    return [part.strip() for part in text.split(separator) if part.strip()]


class LocalSourceSettings(BaseModel):
    """How the local source finds projects, copies them and watches them.

    Patterns are shell-style globs (``fnmatch``) matched against a folder's or file's
    name *and* against its path relative to the base path (or project root), with
    ``/`` as separator: ``archive`` and ``clients/*/old`` both work.
    """

    model_config = ConfigDict(extra="forbid")

    base_paths: list[Path] = Field(
        default_factory=list,
        description=(
            "Folders to scan for Mastra projects; from PROJECTS_DIR a list joined by "
            f"{os.pathsep!r}. Empty: the examples/ folder of a MastraAdmin source "
            "checkout when there is one, else the current folder."
        ),
        json_schema_extra={"env": ["PROJECTS_DIR"]},
    )
    include: list[str] = Field(
        default_factory=lambda: ["*"],
        description="A project is listed only if its folder matches one of these globs.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description=(
            "Folders never scanned (nor descended into), on top of node_modules, .git, "
            "dist, .next, .mastra and hidden folders."
        ),
    )
    max_depth: int = Field(
        default=3, ge=0, le=32, description="How many folders below a base path a project may sit."
    )
    cache_ttl_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a scan is reused; change events from watch_changes end it early.",
    )
    copy_exclude: list[str] = Field(
        default_factory=list,
        description=(
            "Files and folders left out of build copies, on top of node_modules, .git, "
            "dist, .next and .mastra (e.g. '*.log', 'coverage', '.env.local')."
        ),
    )
    copy_workers: int = Field(
        default=4, ge=1, le=64, description="Threads copying files into a build directory."
    )
    watch_debounce_ms: int = Field(
        default=300,
        ge=10,
        le=60_000,
        description="Quiet time that ends a burst of changes; one batch per burst.",
    )
    watch_max_wait_ms: int = Field(
        default=5_000,
        ge=100,
        le=600_000,
        description="Longest a batch is held back while changes keep coming.",
    )
    watch_force_polling: bool | None = Field(
        default=None,
        description="Poll instead of OS notifications (network file systems); None = automatic.",
    )

    @field_validator("base_paths", mode="before")
    @classmethod
    def _paths_from_env(cls, value: Any) -> Any:
        return _split_list(value, separator=os.pathsep)

    @field_validator("include", "exclude", "copy_exclude", mode="before")
    @classmethod
    def _globs_from_env(cls, value: Any) -> Any:
        return _split_list(value, separator=",")


def _checkout_examples(start: Path) -> Path | None:
    """The ``examples/`` folder of the MastraAdmin checkout that holds ``start``."""
    for folder in (start, *start.parents):
        examples = folder / "examples"
        if examples.is_dir() and (folder / "packages" / "admin" / "pyproject.toml").is_file():
            return examples
    return None


def default_base_paths() -> list[Path]:
    """Where projects are looked for when no base path is configured: the ``examples/``
    of the source checkout this package runs from, else of the current folder's
    checkout, else the current folder itself."""
    here = Path(__file__).resolve().parent
    cwd = Path.cwd()
    found = _checkout_examples(here) or _checkout_examples(cwd)
    return [found if found is not None else cwd]
