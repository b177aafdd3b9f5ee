"""Helpers that lay out Mastra projects on disk for the local source's tests."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.sources.local import LocalProjectSource


def _write_project(
    folder: Path,
    *,
    name: str | None = None,
    dependencies: Mapping[str, str] | None = None,
    dev_dependencies: Mapping[str, str] | None = None,
    package: Mapping[str, Any] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    entry: str | None = "src/mastra/index.ts",
) -> Path:
    """A Mastra project in ``folder``: ``package.json`` (``@mastra/core`` in
    dependencies unless told otherwise), the entry file, and ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"name": name or folder.name, "version": "0.1.0"}
    if dependencies is None and dev_dependencies is None:
        dependencies = {"@mastra/core": "^0.10.5"}
    if dependencies is not None:
        data["dependencies"] = dict(dependencies)
    if dev_dependencies is not None:
        data["devDependencies"] = dict(dev_dependencies)
    data.update(package or {})
    (folder / "package.json").write_text(json.dumps(data, indent=2))
    if entry:
        (folder / entry).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry).write_text("export const mastra = {};\n")
    for relative, content in (files or {}).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A base path to scan, separate from the test's other folders."""
    folder = tmp_path / "projects"
    folder.mkdir()
    return folder


@pytest.fixture
def builds(tmp_path: Path) -> Path:
    folder = tmp_path / "builds"
    folder.mkdir()
    return folder


@pytest.fixture
async def make_source() -> AsyncIterator[Callable[..., LocalProjectSource]]:
    """``make_source(base_paths=[...], **settings)``; every source made is closed."""
    made: list[LocalProjectSource] = []

    def make(**options: Any) -> LocalProjectSource:
        source = LocalProjectSource(**options)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


@pytest.fixture
async def source(base: Path) -> AsyncIterator[LocalProjectSource]:
    made = LocalProjectSource(base_paths=[base], watch_debounce_ms=250)
    yield made
    await made.close()


def _relative_files(root: Path) -> set[str]:
    """Every entry below ``root`` (files, folders, symlinks), relative, not following links."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            found.add(Path(folder, name).relative_to(root).as_posix())
    return found


@pytest.fixture
def write_project() -> Callable[..., Path]:
    """``write_project(folder, name=..., dependencies=..., files=..., entry=...)``."""
    return _write_project


@pytest.fixture
def relative_files() -> Callable[[Path], set[str]]:
    return _relative_files
