"""Fetching from a real git server over smart HTTP and exporting what was fetched."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput
from mastra_admin.sources.git import (
    CommitNotFound,
    GitCache,
    GitSourceSettings,
    GitTimeout,
    HttpsToken,
    RefNotFound,
    RepositoryTooLarge,
    RepositoryUnreadable,
    RepositoryUrl,
    check_repository_url,
)
from mastra_admin.sources.git.testing import (
    AUTHOR_EMAIL,
    AUTHOR_NAME,
    Executable,
    FileContent,
    GitHttpServer,
    Symlink,
    commit,
    force_push,
    make_repository,
    tag,
)

from .conftest import Spawned, fake_resolve

Check = Callable[[str], RepositoryUrl]
NewKey = Callable[[], str]

APP: dict[str, FileContent] = {
    "package.json": '{"name": "agent", "dependencies": {"@mastra/core": "^0.10.0"}}\n',
    "src/mastra/index.ts": "export const mastra = {};\n",
    "scripts/start.sh": Executable("#!/bin/sh\nexec node .\n"),
    "assets/logo.bin": bytes(range(256)) * 4,
}


def tree_of(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path: content), folders and links left out."""
    found: dict[str, bytes] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def expected(files: dict[str, FileContent]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path, content in files.items():
        assert not isinstance(content, Symlink)
        data = content.content if isinstance(content, Executable) else content
        out[path] = data.encode() if isinstance(data, str) else data
    return out


async def test_a_fetched_commit_exports_exactly_its_files(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(server.root, "app", APP)
    key = new_key()

    fetched = await cache.fetch(key, checked(server.url("app")), "main")
    root = await cache.export(key, fetched.sha, tmp_path / "build" / "src")

    assert root == tmp_path / "build" / "src"
    assert tree_of(root) == expected(APP)
    assert not (root / ".git").exists()
    assert os.stat(root / "scripts/start.sh").st_mode & 0o777 == 0o755
    assert os.stat(root / "package.json").st_mode & 0o777 == 0o644


async def test_the_commit_is_described(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", APP)
    message = "Ship the agent\n\nWith a body that says why. Ünïcödé too."
    sha = commit(repo, {"README.md": "hi\n"}, message)

    fetched = await cache.fetch(new_key(), checked(server.url("app")), "main")

    assert fetched.sha == sha
    assert fetched.message == message
    assert (fetched.author_name, fetched.author_email) == (AUTHOR_NAME, AUTHOR_EMAIL)
    assert abs(fetched.committed_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert fetched.committed_at.tzinfo is not None


async def test_long_messages_are_cut_to_4_kb(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", APP)
    commit(repo, {"a": "b"}, "é" * 5000)

    fetched = await cache.fetch(new_key(), checked(server.url("app")), "main")

    assert len(fetched.message.encode()) <= 4096
    assert fetched.message == "é" * 2048


async def test_a_second_fetch_transfers_only_what_changed(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {**APP, "vendor/blob.bin": os.urandom(300_000)})
    url, key = checked(server.url("app")), new_key()
    await cache.fetch(key, url, "main")
    first = server.pack_bytes()
    sha = commit(repo, {"src/mastra/index.ts": "export const mastra = { v: 2 };\n"})

    fetched = await cache.fetch(key, url, "main")
    second = server.pack_bytes() - first
    root = await cache.export(key, fetched.sha, tmp_path / "out")

    assert fetched.sha == sha
    assert first > 300_000
    assert second < 5_000, f"the second fetch sent {second} bytes"
    assert (root / "src/mastra/index.ts").read_text() == "export const mastra = { v: 2 };\n"
    assert len((root / "vendor/blob.bin").read_bytes()) == 300_000


async def test_a_commit_is_fetched_by_its_id(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {"v": "1"})
    old = commit(repo, {"v": "2"})
    commit(repo, {"v": "3"})
    key = new_key()

    fetched = await cache.fetch(key, checked(server.url("app")), old.upper())
    root = await cache.export(key, fetched.sha, tmp_path / "out")

    assert fetched.sha == old
    assert (root / "v").read_text() == "2"


async def test_tags_are_fetched(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", {"v": "1"})
    light = tag(repo, "v1.0.0")
    annotated = tag(repo, "release/2024-05", message="a release")
    commit(repo, {"v": "2"})
    url, key = checked(server.url("app")), new_key()

    assert (await cache.fetch(key, url, "v1.0.0")).sha == light
    assert (await cache.fetch(key, url, "release/2024-05")).sha == annotated


async def test_an_unknown_branch_is_named(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    make_repository(server.root, "app", {"v": "1"})

    with pytest.raises(RefNotFound) as missing:
        await cache.fetch(new_key(), checked(server.url("app")), "feature/nope")

    assert "feature/nope" in missing.value.message
    assert missing.value.code == "git_ref_not_found"


async def test_a_commit_lost_to_a_force_push_is_explained(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", {"v": "1"})
    url, key = checked(server.url("app")), new_key()
    await cache.fetch(key, url, "main")
    lost = commit(repo, {"v": "2"})
    force_push(repo, {"v": "rewritten"})

    with pytest.raises(CommitNotFound) as missing:
        await cache.fetch(key, url, lost)

    assert missing.value.message == (
        f"commit {lost} is not in the repository (the branch may have been force-pushed)"
    )
    assert missing.value.code == "git_commit_not_found"


async def test_a_repository_that_disappears_is_not_found(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", {"v": "1"})
    url, key = checked(server.url("app")), new_key()
    await cache.fetch(key, url, "main")
    shutil.rmtree(repo)

    with pytest.raises(RepositoryUnreadable) as gone:
        await cache.fetch(key, url, "main")

    assert gone.value.message == "the repository does not exist or the credential cannot read it"
    assert isinstance(gone.value, InvalidInput)


async def test_a_local_repository_under_a_base_path_is_fetched(
    tmp_path: Path, new_key: NewKey
) -> None:
    base = tmp_path / "repos"
    make_repository(base, "app", {"v": "local"})
    settings = GitSourceSettings(file_base_paths=[base])
    cache = GitCache(tmp_path / "cache", settings)

    url = check_repository_url(f"file://{base}/app.git", settings)
    key = new_key()
    fetched = await cache.fetch(key, url, "main")

    assert (await cache.export(key, fetched.sha, tmp_path / "out") / "v").read_text() == "local"


async def test_git_connects_to_the_checked_address(
    server: GitHttpServer, tmp_path: Path, new_key: NewKey, spawned: list[Spawned]
) -> None:
    """``internal.test`` exists only in the fake resolver: git can reach the server
    only through the address pinned at the check."""
    make_repository(server.root, "app", {"v": "1"})
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["internal.test"], allow_private_addresses=True
    )
    cache = GitCache(tmp_path / "cache", settings, resolve=fake_resolve)
    url = check_repository_url(
        f"http://internal.test:{server.port}/app.git", settings, resolve=fake_resolve
    )

    fetched = await cache.fetch(new_key(), url, "main")

    assert len(fetched.sha) == 40
    fetch = next(s for s in spawned if "fetch" in s.argv)
    assert f"http.curloptResolve=internal.test:{server.port}:127.0.0.1" in fetch.argv


# -- the cache ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["", "abc", "A" * 16, "g" * 16, "../../etc/passwd", "0" * 65, "0" * 16 + "\n", "-" + "0" * 16],
)
async def test_keys_that_are_not_hex_are_refused(
    key: str, cache: GitCache, checked: Check, server: GitHttpServer, tmp_path: Path
) -> None:
    make_repository(server.root, "app", {"v": "1"})

    with pytest.raises(InvalidInput, match="cache key"):
        await cache.fetch(key, checked(server.url("app")), "main")
    with pytest.raises(InvalidInput, match="cache key"):
        await cache.export(key, "0" * 40, tmp_path / "out")
    assert not cache.root.exists() or os.listdir(cache.root) == []


async def test_two_keys_never_share_a_repository(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    make_repository(server.root, "one", {"who": "one"})
    make_repository(server.root, "two", {"who": "two"})
    first, second = new_key(), new_key()

    one = await cache.fetch(first, checked(server.url("one")), "main")
    two = await cache.fetch(second, checked(server.url("two")), "main")

    assert cache.path_for(first) != cache.path_for(second)
    assert sorted(os.listdir(cache.root)) == sorted([first, second])
    for key in (first, second):
        assert not (cache.path_for(key) / "objects/info/alternates").exists()
    with pytest.raises(CommitNotFound):
        await cache.commit(first, two.sha)
    assert (await cache.commit(first, one.sha)).sha == one.sha


@pytest.mark.parametrize(
    "ref",
    [
        "-x",
        "--upload-pack=touch /tmp/x",
        "+main",
        "a..b",
        "main:refs/heads/x",
        "x y",
        "@{1}",
        "a\x00b",
        "refs/*",
        "",
    ],
)
async def test_refs_that_are_not_names_are_refused(
    ref: str, cache: GitCache, checked: Check, server: GitHttpServer, new_key: NewKey
) -> None:
    make_repository(server.root, "app", {"v": "1"})

    with pytest.raises(InvalidInput):
        await cache.fetch(new_key(), checked(server.url("app")), ref)


async def test_fetches_of_one_key_wait_for_each_other(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    repo = make_repository(server.root, "app", {"v": "1"})
    other = commit(repo, {"v": "2"})
    url, key = checked(server.url("app")), new_key()

    results = await asyncio.gather(cache.fetch(key, url, "main"), cache.fetch(key, url, other))

    assert {r.sha for r in results} == {other}


async def test_a_repository_past_the_size_limit_is_removed(
    server: GitHttpServer, tmp_path: Path, checked: Check, new_key: NewKey
) -> None:
    make_repository(server.root, "big", {"noise.bin": os.urandom(3 * 2**20)})
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, max_repository_mb=1
    )
    cache = GitCache(tmp_path / "cache", settings)
    key = new_key()

    with pytest.raises(RepositoryTooLarge) as too_large:
        await cache.fetch(key, checked(server.url("big")), "main")

    assert too_large.value.details["limit"] == 2**20
    assert not cache.path_for(key).exists()
    assert os.listdir(cache.root) == []


async def test_a_hung_server_times_out_and_git_is_killed(
    tmp_path: Path,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    group_members: Callable[[int], list[int]],
) -> None:
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, fetch_timeout_s=1
    )
    cache = GitCache(tmp_path / "cache", settings)
    with GitHttpServer(tmp_path / "slow", delay_s=30) as slow:
        make_repository(slow.root, "app", {"v": "1"})
        started = asyncio.get_running_loop().time()

        with pytest.raises(GitTimeout) as timed_out:
            await cache.fetch(new_key(), checked(slow.url("app")), "main")

        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 10
    assert "1 s" in timed_out.value.message
    fetch = next(s for s in spawned if "fetch" in s.argv)
    assert group_members(fetch.pid) == []


async def test_a_cancelled_fetch_leaves_no_git_behind(
    tmp_path: Path,
    settings: GitSourceSettings,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    group_members: Callable[[int], list[int]],
) -> None:
    cache = GitCache(tmp_path / "cache", settings)
    with GitHttpServer(tmp_path / "slow", delay_s=30) as slow:
        make_repository(slow.root, "app", {"v": "1"})
        task = asyncio.ensure_future(cache.fetch(new_key(), checked(slow.url("app")), "main"))
        while not any("fetch" in s.argv for s in spawned):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    fetch = next(s for s in spawned if "fetch" in s.argv)
    assert group_members(fetch.pid) == []


async def test_every_git_runs_without_a_shell_in_a_clean_environment(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    make_repository(server.root, "app", {"v": "1"})
    key = new_key()
    fetched = await cache.fetch(key, checked(server.url("app")), "main")
    await cache.export(key, fetched.sha, tmp_path / "out")

    assert spawned
    for process in spawned:
        assert os.path.basename(process.argv[0]) == "git"
        assert "protocol.ext.allow=never" in process.argv
        assert "core.hooksPath=/dev/null" in process.argv
        assert "credential.helper=" in process.argv
        assert process.env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert process.env["GIT_TERMINAL_PROMPT"] == "0"
        assert not os.path.exists(process.env["HOME"]), "the private HOME is removed"
        assert set(process.env) <= {
            "PATH", "HOME", "LC_ALL", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
            "GIT_TERMINAL_PROMPT", "GIT_ALLOW_PROTOCOL", "GIT_NO_REPLACE_OBJECTS",
            "GIT_INDEX_FILE",
        }  # fmt: skip
        if "GIT_INDEX_FILE" in process.env:  # the export's private index, removed after
            assert not os.path.exists(os.path.dirname(process.env["GIT_INDEX_FILE"]))
            assert {"update-index", "checkout-index"} & set(process.argv)
    fetch = next(s for s in spawned if "fetch" in s.argv)
    assert fetch.env["GIT_ALLOW_PROTOCOL"] == "http"
    assert {"--depth=1", "--no-tags", "--no-recurse-submodules"} <= set(fetch.argv)
    assert fetch.argv.index("--end-of-options") < fetch.argv.index(server.url("app"))
    others = [s for s in spawned if "fetch" not in s.argv]
    assert all(s.env["GIT_ALLOW_PROTOCOL"] == "none" for s in others)


async def test_the_cache_folder_is_private(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    make_repository(server.root, "app", {"v": "1"})

    await cache.fetch(new_key(), checked(server.url("app")), "main")

    assert stat.S_IMODE(os.stat(cache.root).st_mode) == 0o700


class _Redirect(BaseHTTPRequestHandler):
    to = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.to + self.path.split(".git", 1)[1])
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


async def test_redirects_are_not_followed(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    """A checked host could send git (and the token) anywhere with a redirect."""
    make_repository(server.root, "app", {"v": "1"})
    handler = type("Handler", (_Redirect,), {"to": server.url("app")})
    redirector = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = checked(f"http://127.0.0.1:{redirector.server_address[1]}/app.git")
        with pytest.raises(RepositoryUnreadable, match="redirect"):
            await cache.fetch(new_key(), url, "main", HttpsToken(token="t0ken"))
    finally:
        redirector.shutdown()
        redirector.server_close()
        thread.join()
    assert server.requests == []
