"""Paths from outside are checked: nothing outside the base paths is read, listed or copied."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput, NotFound, PermissionDenied
from mastra_admin.core.source import ProjectSource
from mastra_admin.sources.local import LocalProjectSource, project_id_for

WriteProject = Callable[..., Path]


def forged(path: Path | str, *, source_id: str | None = None, kind: str = "local") -> ProjectSource:
    """A ProjectSource as a client (or a tampered stored project) could hand it in."""
    text = str(path)
    return ProjectSource(id=source_id or project_id_for(text), name="forged", type=kind, path=text)


def resolved_entries(root: Path) -> list[str]:
    """Where every entry below ``root`` really is, symlinks followed."""
    return [
        os.path.realpath(os.path.join(folder, name))
        for folder, dirs, files in os.walk(root)
        for name in [*dirs, *files]
    ]


@pytest.fixture
def outside(write_project: WriteProject, tmp_path: Path) -> Path:
    """A perfectly good Mastra project that is not below the base path."""
    return write_project(tmp_path / "outside" / "agent")


async def test_a_project_outside_the_base_paths_is_refused(
    source: LocalProjectSource, outside: Path, builds: Path
) -> None:
    project = forged(outside)

    with pytest.raises(PermissionDenied):
        await source.get_project_path(project, builds / "b1")
    assert await source.validate_access(project) is False
    assert not (builds / "b1").exists()


async def test_dot_dot_cannot_climb_out(
    source: LocalProjectSource, base: Path, outside: Path, builds: Path
) -> None:
    climbing = f"{base}/../outside/agent"

    with pytest.raises(PermissionDenied):
        await source.get_project_path(forged(climbing), builds / "b1")
    assert await source.validate_access(forged(climbing)) is False


async def test_a_symlink_in_the_base_cannot_lead_out(
    source: LocalProjectSource, base: Path, outside: Path, builds: Path
) -> None:
    (base / "sneaky").symlink_to(outside, target_is_directory=True)

    listed = await source.list_projects()
    with pytest.raises(PermissionDenied):
        await source.get_project_path(forged(base / "sneaky"), builds / "b1")

    assert listed == []


async def test_a_project_inside_an_excluded_folder_is_refused(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    write_project(base / "app")
    hidden = write_project(base / "app" / "node_modules" / "@mastra" / "memory")

    with pytest.raises(PermissionDenied):
        await source.get_project_path(forged(hidden), builds / "b1")


async def test_relative_paths_and_foreign_types_are_invalid(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    project = write_project(base / "agent")

    with pytest.raises(InvalidInput):
        await source.get_project_path(forged("projects/agent"), builds / "b1")
    with pytest.raises(InvalidInput):
        await source.get_project_path(forged(project, kind="github"), builds / "b1")
    with pytest.raises(InvalidInput):
        await source.get_project_path(forged(f"{project}\x00", source_id="0" * 16), builds / "b1")


async def test_an_id_that_does_not_belong_to_the_path_is_invalid(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    one = write_project(base / "one")
    write_project(base / "two")

    with pytest.raises(InvalidInput):
        await source.get_project_path(
            forged(one, source_id=project_id_for(base / "two")), builds / "b1"
        )


async def test_a_vanished_project_is_not_found(
    source: LocalProjectSource, base: Path, builds: Path
) -> None:
    with pytest.raises(NotFound):
        await source.get_project_path(forged(base / "gone"), builds / "b1")


async def test_a_base_path_behind_a_symlink_works(
    write_project: WriteProject, tmp_path: Path, base: Path, builds: Path
) -> None:
    write_project(base / "agent")
    alias = tmp_path / "alias"
    alias.symlink_to(base, target_is_directory=True)
    source = LocalProjectSource(base_paths=[alias])
    try:
        project = (await source.list_projects())[0]
        root = await source.get_project_path(project, builds / "b1")
        assert (root / "package.json").is_file()
        # The same folder named through the alias is inside too.
        assert await source.validate_access(forged(alias / "agent")) is True
    finally:
        await source.close()


async def test_the_copy_never_writes_outside_the_target(
    write_project: WriteProject,
    source: LocalProjectSource,
    base: Path,
    builds: Path,
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    project = write_project(base / "agent", files={"src/a.ts": "a\n"})
    (project / "escape-dir").symlink_to(victim, target_is_directory=True)
    (project / "escape-file").symlink_to(victim / "planted.txt")
    (project / "src" / "up").symlink_to("../../../victim")
    before = set(os.listdir(tmp_path))

    root = await source.get_project_path((await source.list_projects())[0], builds / "b1")

    assert os.listdir(victim) == []
    assert set(os.listdir(tmp_path)) == before
    assert not (root / "escape-dir").is_symlink()
    assert not (root / "escape-file").is_symlink()
    assert not (root / "src" / "up").is_symlink()
    assert all(Path(real).is_relative_to(root) for real in resolved_entries(root))
