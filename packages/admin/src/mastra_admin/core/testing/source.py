"""The project source conformance suite: what every ``ProjectSourceProvider`` must do.

An adapter subclasses ``SourceConformance``, sets ``__test__ = True`` and overrides
the ``source`` fixture. The suite makes its projects through ``project_factory``:
by default a ``FolderProjectFactory`` writing folders under ``projects_root``, which
a folder-based source simply scans::

    class TestLocalSource(SourceConformance):
        __test__ = True

        @pytest.fixture
        async def source(self, projects_root):
            source = LocalProjectSource(base_paths=[projects_root])
            yield source
            await source.close()

A source that reads projects from somewhere else (a git host) overrides
``project_factory`` too, with an object that makes a project the source can find
(``ProjectFactory``: create, update, remove). Capability flags switch off what a
source cannot do (``supports_watch``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from mastra_admin.core.errors import NotFound
from mastra_admin.core.source import ChangeEvent, ProjectSource, ProjectSourceProvider

__all__ = [
    "BUILD_FOLDERS",
    "FolderProjectFactory",
    "ProjectFactory",
    "ProjectFile",
    "SourceConformance",
    "mastra_project_files",
    "snapshot_tree",
]

BUILD_FOLDERS = ("node_modules", "dist", ".next", ".mastra")
"""Folders a copy for a build leaves out (``.git`` too, which no factory can write)."""


@dataclass(frozen=True)
class ProjectFile:
    """The content and permission bits of one file a factory writes."""

    content: bytes
    mode: int = 0o644

    @classmethod
    def of(cls, value: str | bytes | ProjectFile) -> ProjectFile:
        if isinstance(value, ProjectFile):
            return value
        return cls(value.encode() if isinstance(value, str) else value)


FileSpec = str | bytes | ProjectFile


@runtime_checkable
class ProjectFactory(Protocol):
    """Makes projects that the source under test can find.

    ``name`` is both the project's ``package.json`` name and how the suite finds it
    in ``list_projects``; ``files`` maps ``/``-separated relative paths to contents.
    """

    async def create(self, name: str, files: Mapping[str, FileSpec]) -> None:
        """Make a new project holding exactly ``files``."""

    async def update(self, name: str, files: Mapping[str, FileSpec]) -> None:
        """Write (create or overwrite) ``files`` in an existing project, the way a
        developer would (for a git source: commit them on the default branch)."""

    async def remove(self, name: str) -> None:
        """Remove the project so that the source can no longer read it."""


def _write_files(folder: Path, files: Mapping[str, FileSpec]) -> None:
    for relative, spec in files.items():
        item = ProjectFile.of(spec)
        path = folder.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
        os.chmod(path, item.mode)


class FolderProjectFactory:
    """Projects as plain folders under ``root`` (``root / name``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / name

    async def create(self, name: str, files: Mapping[str, FileSpec]) -> None:
        folder = self.folder(name)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=False)
        await asyncio.to_thread(_write_files, folder, files)

    async def update(self, name: str, files: Mapping[str, FileSpec]) -> None:
        await asyncio.to_thread(_write_files, self.folder(name), files)

    async def remove(self, name: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.folder(name))


def mastra_project_files(name: str, *, with_build_folders: bool = True) -> dict[str, FileSpec]:
    """A small Mastra project: ``package.json`` depending on ``@mastra/core``, the
    ``src/mastra/index.ts`` entry, nested folders, a binary file, an executable
    script and non-ASCII names; with ``with_build_folders`` also ``node_modules``,
    ``dist``, ``.next`` and ``.mastra`` content that a build copy must leave out."""
    package = {
        "name": name,
        "version": "1.2.3",
        "private": True,
        "type": "module",
        "scripts": {"build": "mastra build"},
        "dependencies": {"@mastra/core": "^0.10.0"},
        "devDependencies": {"mastra": "^0.10.0"},
    }
    files: dict[str, FileSpec] = {
        "package.json": json.dumps(package, indent=2) + "\n",
        "package-lock.json": json.dumps({"name": name, "lockfileVersion": 3}) + "\n",
        "src/mastra/index.ts": "export const mastra = {};\n",
        "src/mastra/agents/weather.ts": "export const weatherAgent = { name: 'weather' };\n",
        "src/mastra/tools/deep/nested/tool.ts": "export const tool = 1;\n",
        "assets/logo.bin": ProjectFile(bytes(range(256)) * 64),
        "scripts/start.sh": ProjectFile(b"#!/bin/sh\necho start\n", 0o755),
        "docs/notes with spaces.md": "# notes\n",
        "docs/\u00fcn\u00efc\u00f6d\u00e9-\u30d5\u30a1\u30a4\u30eb.txt": "caf\u00e9\n",
        "empty.txt": b"",
    }
    if with_build_folders:
        files.update(
            {
                "node_modules/@mastra/core/package.json": '{"name": "@mastra/core"}\n',
                "dist/index.js": "built\n",
                ".next/cache.json": "{}\n",
                ".mastra/output/index.mjs": "export {};\n",
            }
        )
    return files


def snapshot_tree(root: Path, *, ignore: tuple[str, ...] = (".git",)) -> dict[str, tuple[str, int]]:
    """Every regular file below ``root``: relative path -> (sha256, permission bits).
    Folders named in ``ignore`` are not entered; symlinks are not followed."""
    found: dict[str, tuple[str, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ignore]
        for name in files:
            path = Path(folder, name)
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.relative_to(root).as_posix()] = (digest, stat.S_IMODE(info.st_mode))
    return found


def _expected(files: Mapping[str, FileSpec], *, without: tuple[str, ...]) -> dict[str, str]:
    return {
        relative: hashlib.sha256(ProjectFile.of(spec).content).hexdigest()
        for relative, spec in files.items()
        if not any(part in without for part in relative.split("/"))
    }


class SourceConformance:
    """The behaviour every project source shares. Override ``source`` (and, for
    sources that do not read folders, ``project_factory``)."""

    __test__ = False
    pytestmark: ClassVar[list[Any]] = [pytest.mark.asyncio]

    supports_watch: ClassVar[bool] = True
    """``watch_changes`` yields batches; when false it must raise ``NotImplementedError``."""
    excludes_build_folders: ClassVar[bool] = True
    """Copies leave out ``node_modules``, ``dist``, ``.next`` and ``.mastra``."""
    lists_only_mastra_projects: ClassVar[bool] = True
    """A project without ``@mastra/core`` is not listed."""
    watch_timeout_s: ClassVar[float] = 20.0

    # -- fixtures to override -------------------------------------------------

    @pytest.fixture
    def projects_root(self, tmp_path: Path) -> Path:
        """Where the default factory writes projects; point a folder source here."""
        root = tmp_path / "projects"
        root.mkdir()
        return root

    @pytest.fixture
    def project_factory(self, projects_root: Path) -> ProjectFactory:
        return FolderProjectFactory(projects_root)

    @pytest.fixture
    def source(self) -> ProjectSourceProvider:
        raise NotImplementedError(
            "override the `source` fixture to return the ProjectSourceProvider under test"
        )

    @pytest.fixture
    def builds_root(self, tmp_path: Path) -> Path:
        """Where the suite asks for copies; separate from the projects."""
        root = tmp_path / "builds"
        root.mkdir()
        return root

    # -- helpers --------------------------------------------------------------

    async def _create(self, factory: ProjectFactory, name: str) -> dict[str, FileSpec]:
        files = mastra_project_files(name, with_build_folders=self.excludes_build_folders)
        await factory.create(name, files)
        return files

    async def _find(self, source: ProjectSourceProvider, name: str) -> ProjectSource:
        projects = [p for p in await source.list_projects() if p.name == name]
        assert len(projects) == 1, f"expected one project named {name!r}, found {projects}"
        return projects[0]

    # -- listing --------------------------------------------------------------

    async def test_lists_every_created_project(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        await self._create(project_factory, "beta-agent")

        projects = await source.list_projects()

        by_name = {p.name: p for p in projects}
        assert {"alpha-agent", "beta-agent"} <= set(by_name)
        for project in by_name.values():
            assert project.type == source.type
            assert project.id
            assert project.package_manager in {"npm", "pnpm", "yarn", "bun"}

    async def test_ids_are_unique_and_stable(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        await self._create(project_factory, "beta-agent")

        first = {p.name: p.id for p in await source.list_projects()}
        second = {p.name: p.id for p in await source.list_projects()}

        assert first == second
        assert len(set(first.values())) == len(first)

    async def test_list_with_a_team_is_a_subset(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")

        everything = {p.id for p in await source.list_projects()}
        for_team = {p.id for p in await source.list_projects("team-1")}

        assert for_team <= everything

    async def test_list_leaves_out_folders_that_are_not_mastra_projects(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        if not self.lists_only_mastra_projects:
            pytest.skip("this source lists projects that are not Mastra projects")
        await self._create(project_factory, "alpha-agent")
        plain = {"name": "plain-node-app", "dependencies": {"express": "^4.0.0"}}
        await project_factory.create(
            "plain-node-app", {"package.json": json.dumps(plain), "index.js": "1;\n"}
        )

        names = {p.name for p in await source.list_projects()}

        assert "alpha-agent" in names
        assert "plain-node-app" not in names

    async def test_get_project_returns_the_listed_project(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        listed = await self._find(source, "alpha-agent")

        got = await source.get_project(listed.id)

        assert got.id == listed.id
        assert got.name == listed.name
        assert got.path == listed.path

    @pytest.mark.parametrize(
        "bogus_id",
        ["no-such-project", "0000000000000000", "../../etc/passwd", "", "x" * 300],
    )
    async def test_get_unknown_project_raises_not_found(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, bogus_id: str
    ) -> None:
        await self._create(project_factory, "alpha-agent")

        with pytest.raises(NotFound):
            await source.get_project(bogus_id)

    # -- access ---------------------------------------------------------------

    async def test_validate_access_is_true_for_a_listed_project(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        assert await source.validate_access(project) is True

    async def test_validate_access_is_false_once_the_project_is_gone(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        await project_factory.remove("alpha-agent")

        assert await source.validate_access(project) is False

    # -- copies ---------------------------------------------------------------

    async def test_copy_is_complete_and_faithful(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        files = await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        root = await source.get_project_path(project, builds_root / "build-1")

        copied = snapshot_tree(root)
        expected = _expected(files, without=BUILD_FOLDERS if self.excludes_build_folders else ())
        assert {path: digest for path, (digest, _) in copied.items()} == expected
        assert copied["scripts/start.sh"][1] & stat.S_IXUSR
        assert not copied["package.json"][1] & stat.S_IXUSR

    async def test_copy_is_inside_the_target_never_the_source_folder(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")
        target = builds_root / "build-1"

        root = await source.get_project_path(project, target)

        real_root, real_target, real_project = await asyncio.to_thread(
            lambda: (root.resolve(), target.resolve(), os.path.realpath(project.path))
        )
        assert real_root.is_relative_to(real_target)
        assert str(real_root) != real_project
        assert (root / "package.json").is_file()

    async def test_copy_leaves_out_build_folders(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        if not self.excludes_build_folders:
            pytest.skip("this source copies build folders")
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        root = await source.get_project_path(project, builds_root / "build-1")

        for folder in (*BUILD_FOLDERS, ".git"):
            assert not (root / folder).exists(), f"{folder} was copied"

    async def test_copy_is_independent_of_later_changes(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")
        first = await source.get_project_path(project, builds_root / "build-1")

        await project_factory.update(
            "alpha-agent", {"src/mastra/index.ts": "export const changed = true;\n"}
        )
        (first / "src" / "mastra" / "agents" / "weather.ts").write_text("edited in the copy\n")
        second = await source.get_project_path(project, builds_root / "build-2")

        assert (first / "src/mastra/index.ts").read_text() == "export const mastra = {};\n"
        assert (second / "src/mastra/index.ts").read_text() == "export const changed = true;\n"
        assert "weatherAgent" in (second / "src/mastra/agents/weather.ts").read_text()

    async def test_two_copies_at_once(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        files = await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        one, two = await asyncio.gather(
            source.get_project_path(project, builds_root / "a"),
            source.get_project_path(project, builds_root / "b"),
        )

        expected = _expected(files, without=BUILD_FOLDERS if self.excludes_build_folders else ())
        assert one.resolve() != two.resolve()
        for root in (one, two):
            assert {p: d for p, (d, _) in snapshot_tree(root).items()} == expected

    async def test_copy_into_an_existing_empty_folder(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")
        target = builds_root / "ready"
        target.mkdir()

        root = await source.get_project_path(project, target)

        assert (root / "src/mastra/index.ts").is_file()

    async def test_copy_creates_missing_parent_folders(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory, builds_root: Path
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        root = await source.get_project_path(project, builds_root / "deep" / "er" / "build")

        assert (root / "package.json").is_file()

    # -- watching -------------------------------------------------------------

    async def test_watch_changes(
        self, source: ProjectSourceProvider, project_factory: ProjectFactory
    ) -> None:
        await self._create(project_factory, "alpha-agent")
        project = await self._find(source, "alpha-agent")

        if not self.supports_watch:

            async def first_batch() -> list[ChangeEvent]:
                return await anext(aiter(source.watch_changes(project)))

            with pytest.raises(NotImplementedError):
                await first_batch()
            return

        stream = source.watch_changes(project)
        async with contextlib.aclosing(_as_generator(stream)) as batches:
            waiting = asyncio.ensure_future(_next_batch(batches))
            batch: list[ChangeEvent] | None = None
            try:
                # The watch may need a moment to start: keep changing until it reports.
                for attempt in range(int(self.watch_timeout_s / 0.5)):
                    await project_factory.update(
                        "alpha-agent", {f"src/mastra/watched-{attempt}.ts": "export {};\n"}
                    )
                    done, _ = await asyncio.wait({waiting}, timeout=0.5)
                    if done:
                        batch = waiting.result()
                        break
            finally:
                if not waiting.done():
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await waiting
        assert batch, "no change was reported"
        assert all(isinstance(event, ChangeEvent) for event in batch)
        assert any("watched-" in event.path for event in batch)

    async def test_close_can_be_called_twice(self, source: ProjectSourceProvider) -> None:
        await source.close()
        await source.close()


async def _as_generator(
    stream: AsyncIterator[list[ChangeEvent]],
) -> AsyncGenerator[list[ChangeEvent], None]:
    """Any async iterator as an async generator, so that it can be closed."""
    try:
        async for batch in stream:
            yield batch
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


async def _next_batch(batches: AsyncIterator[list[ChangeEvent]]) -> list[ChangeEvent]:
    return await anext(batches)
