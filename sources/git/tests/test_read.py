"""Reading single files and folders of a fetched commit from the cache, without an export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput, PayloadTooLarge
from mastra_admin.sources.git import CommitNotFound, GitCache, RepositoryUrl
from mastra_admin.sources.git.testing import (
    Executable,
    FileContent,
    GitHttpServer,
    Symlink,
    make_repository,
)

Check = Callable[[str], RepositoryUrl]
NewKey = Callable[[], str]

FILES: dict[str, FileContent] = {
    "package.json": '{"name": "root"}\n',
    "apps/agent/package.json": '{"name": "agent"}\n',
    "apps/agent/run.sh": Executable("#!/bin/sh\n"),
    "apps/agent/link.json": Symlink("package.json"),
    "apps/agent/src/mastra/index.ts": "export {};\n",
    "apps/agent/w*ld.txt": "a star in the name\n",
}


@pytest.fixture
async def fetched(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> tuple[str, str]:
    make_repository(server.root, "app", FILES)
    key = new_key()
    commit = await cache.fetch(key, checked(server.url("app")), "main")
    return key, commit.sha


async def test_a_folder_lists_its_entries_with_their_kinds(
    cache: GitCache, fetched: tuple[str, str]
) -> None:
    key, sha = fetched

    root = {e.name: (e.kind, e.is_file) for e in await cache.list_folder(key, sha)}
    app = {e.name: (e.mode, e.is_file) for e in await cache.list_folder(key, sha, "apps/agent")}

    assert root == {"package.json": ("blob", True), "apps": ("tree", False)}
    assert app == {
        "package.json": ("100644", True),
        "run.sh": ("100755", True),
        "link.json": ("120000", False),
        "src": ("040000", False),
        "w*ld.txt": ("100644", True),
    }
    assert await cache.list_folder(key, sha, "apps/nowhere") == []
    assert await cache.list_folder(key, sha, "package.json") == []


async def test_a_file_is_read_without_an_export(
    cache: GitCache, fetched: tuple[str, str], tmp_path: Path
) -> None:
    key, sha = fetched

    assert (
        await cache.read_file(key, sha, "apps/agent/package.json", 1024) == b'{"name": "agent"}\n'
    )
    assert await cache.read_file(key, sha, "package.json", 1024) == b'{"name": "root"}\n'
    assert await cache.read_file(key, sha, "apps/agent/link.json", 1024) is None
    assert await cache.read_file(key, sha, "apps/agent/src", 1024) is None
    assert await cache.read_file(key, sha, "missing.json", 1024) is None
    with pytest.raises(PayloadTooLarge):
        await cache.read_file(key, sha, "package.json", 4)
    with pytest.raises(InvalidInput):
        await cache.read_file(key, sha, "../package.json", 1024)
    with pytest.raises(CommitNotFound):
        await cache.read_file(key, "0" * 40, "package.json", 1024)


async def test_entries_of_many_paths_are_read_at_once_and_literally(
    cache: GitCache, fetched: tuple[str, str]
) -> None:
    key, sha = fetched

    found = await cache.entries(
        key,
        sha,
        ["apps/agent", "apps/agent/w*ld.txt", "apps/agent/*", "apps/agent/run.sh", "nope.json"],
    )

    assert {path: entry.kind for path, entry in found.items()} == {
        "apps/agent": "tree",
        "apps/agent/w*ld.txt": "blob",
        "apps/agent/run.sh": "blob",
    }
    assert found["apps/agent/run.sh"].mode == "100755"
    assert await cache.read_entry(key, found["apps/agent/w*ld.txt"], 100) == b"a star in the name\n"
    assert await cache.read_entry(key, found["apps/agent"], 100) is None
