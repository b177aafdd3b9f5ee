"""The core's source conformance suite, run against the git source: every project is a
bare repository on a real smart-HTTP server, connected and stored as the core does."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mastra_admin.core.models import Team
from mastra_admin.core.testing import SourceConformance
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.core.testing.source import FileSpec, ProjectFile
from mastra_admin.sources.git import GitProjectSource
from mastra_admin.sources.git.testing import (
    Executable,
    FileContent,
    GitHttpServer,
    commit,
    make_repository,
)

from .conftest import register

_names = itertools.count(1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path_factory.mktemp("served")) as running:
        yield running


def _committed(files: Mapping[str, FileSpec]) -> dict[str, FileContent]:
    converted: dict[str, FileContent] = {}
    for path, spec in files.items():
        item = ProjectFile.of(spec)
        converted[path] = Executable(item.content) if item.mode & 0o111 else item.content
    return converted


class GitRepositoryFactory:
    """A project is a repository on ``server`` whose ``main`` holds the files, connected
    through the source and stored in ``storage`` (unless it is no Mastra project)."""

    def __init__(
        self,
        server: GitHttpServer,
        source: GitProjectSource,
        storage: InMemoryAdminStorage,
        team_id: str,
    ) -> None:
        self.server = server
        self.source = source
        self.storage = storage
        self.team_id = team_id
        self.repositories: dict[str, Path] = {}

    async def create(self, name: str, files: Mapping[str, FileSpec]) -> None:
        repository = f"{name}-{next(_names)}"
        self.repositories[name] = await asyncio.to_thread(
            make_repository, self.server.root, repository, _committed(files)
        )
        connection = await self.source.connect(
            self.team_id, {"url": self.server.url(repository)}, default_branch="main"
        )
        if connection.source.metadata["valid"]:
            await register(self.storage, self.team_id, connection, name=name)

    async def update(self, name: str, files: Mapping[str, FileSpec]) -> None:
        await asyncio.to_thread(commit, self.repositories[name], _committed(files))

    async def remove(self, name: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.repositories.pop(name))


class TestGitSourceConformance(SourceConformance):
    __test__ = True
    supports_watch = False

    @pytest.fixture
    def source(self, git_source: GitProjectSource) -> GitProjectSource:
        return git_source

    @pytest.fixture
    async def project_factory(
        self,
        served: GitHttpServer,
        git_source: GitProjectSource,
        storage: InMemoryAdminStorage,
        team: Team,
    ) -> GitRepositoryFactory:
        return GitRepositoryFactory(served, git_source, storage, team.id)
