"""Exports write a commit's files and nothing else: no ``.git``, nothing outside the
target, no links that lead out, no special files."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.errors import Conflict, InvalidInput
from mastra_admin.sources.git import (
    CommitNotFound,
    GitError,
    GitCache,
    GitSourceSettings,
    RepositoryTooLarge,
    RepositoryUrl,
    UnsafeTree,
)
from mastra_admin.sources.git.testing import (
    Executable,
    FileContent,
    GitHttpServer,
    Symlink,
    make_repository,
)

from .conftest import Spawned

Check = Callable[[str], RepositoryUrl]
NewKey = Callable[[], str]


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    done = subprocess.run(
        ["git", "--git-dir", str(repo), *args], input=data, capture_output=True, env=env, check=True
    )
    return done.stdout.decode().strip()


def raw_main(repo: Path, entries: list[str]) -> str:
    """Point ``main`` at a commit of a tree made with ``git mktree`` from ``entries``
    (``"<mode> <type> <sha>\\t<name>"``), names git itself would never write."""
    tree = git(repo, "mktree", data="\n".join(entries).encode() + b"\n")
    return main_at(repo, tree)


def main_at(repo: Path, tree: str) -> str:
    sha = git(repo, "commit-tree", tree, "-m", "hand-made tree")
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree object of ``(mode, name, sha)`` entries written byte for byte, unchecked:
    names with ``/``, ``..``, duplicates — what a crafted push can hold."""
    data = b"".join(
        mode.encode() + b" " + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries
    )
    return git(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", data=data)


def blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", data=data)


async def fetched_export(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    key: str,
    target: Path,
    subdirectory: str | None = None,
) -> Path:
    commit = await cache.fetch(key, checked(server.url("app")), "main")
    return await cache.export(key, commit.sha, target, subdirectory)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        Path(folder, name).relative_to(root).as_posix(): Path(folder, name).read_bytes()
        for folder, _dirs, files in os.walk(root)
        for name in files
    }


def listing(root: Path) -> set[str]:
    return {
        Path(folder, name).relative_to(root).as_posix()
        for folder, dirs, files in os.walk(root)
        for name in [*dirs, *files]
    }


# -- symlinks from a real repository --------------------------------------------------


async def test_symlinks_are_kept_only_when_they_stay_inside(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(
        server.root,
        "app",
        {
            "src/index.ts": "export {};\n",
            "entry.ts": Symlink("src/index.ts"),
            "lib": Symlink("src"),
            "src/up.ts": Symlink("../entry.ts"),
            "leak": Symlink("/etc/passwd"),
            "climb": Symlink("../../x"),
            "src/deep/climb": Symlink("../../../outside"),
            "self": Symlink("."),
            "escape": Symlink("self/../outside"),
        },
    )

    with capture_logs() as logs:
        root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert os.readlink(root / "entry.ts") == "src/index.ts"
    assert (root / "lib" / "index.ts").read_text() == "export {};\n"
    assert (root / "src/up.ts").read_text() == "export {};\n"
    for dropped in ("leak", "climb", "src/deep/climb", "escape"):
        assert not os.path.lexists(root / dropped), dropped
    skipped = {e["path"] for e in logs if e["event"] == "git.export.skipped"}
    assert skipped == {"leak", "climb", "src/deep/climb", "escape"}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            real = os.path.realpath(os.path.join(folder, name))
            assert real == str(root) or real.startswith(f"{root}/")


async def test_gitattributes_cannot_hide_or_rewrite_files(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    files: dict[str, FileContent] = {
        ".gitattributes": "hidden.txt export-ignore\nversion.txt export-subst\n*.txt text eol=crlf\n",
        "hidden.txt": "still here\n",
        "version.txt": "$Format:%H$\n",
    }
    make_repository(server.root, "app", files)

    root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert {p: (root / p).read_text() for p in files} == files


async def test_a_submodule_is_an_empty_folder(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    blob = git(repo, "hash-object", "-w", "--stdin", data=b"1")
    vendor = git(repo, "mktree", data=f"160000 commit {'1' * 40}\tlib\n".encode())
    raw_main(repo, [f"100644 blob {blob}\ta", f"040000 tree {vendor}\tvendor"])

    root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert listing(root) == {"a", "vendor", "vendor/lib"}
    assert os.listdir(root / "vendor" / "lib") == []


async def test_a_tree_naming_dot_dot_is_refused(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    blob = git(repo, "hash-object", "-w", "--stdin", data=b"pwned")
    inner = git(repo, "mktree", data=f"100644 blob {blob}\tevil\n".encode())
    raw_main(repo, [f"040000 tree {inner}\t..", f"100644 blob {blob}\tfine"])
    target = tmp_path / "sandbox" / "out"

    with pytest.raises(UnsafeTree):
        await fetched_export(server, cache, checked, new_key(), target)

    assert not target.exists()
    assert not (tmp_path / "sandbox" / "evil").exists()


async def test_a_tree_naming_dot_git_is_refused(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    blob = git(repo, "hash-object", "-w", "--stdin", data=b"[core]\n\tfsmonitor = touch x\n")
    inner = git(repo, "mktree", data=f"100644 blob {blob}\tconfig\n".encode())
    raw_main(repo, [f"040000 tree {inner}\t.git"])

    with pytest.raises(UnsafeTree):
        await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not (tmp_path / "out").exists()


# -- subdirectories -----------------------------------------------------------------------

MONOREPO: dict[str, FileContent] = {
    "package.json": '{"workspaces": ["apps/*"]}\n',
    "apps/web/package.json": '{"name": "web"}\n',
    "apps/web/src/mastra/index.ts": "export const mastra = {};\n",
    "apps/other/x": "y",
    "apps/link": Symlink("web"),
}


async def test_a_subdirectory_export_returns_the_app_folder(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(server.root, "app", MONOREPO)

    root = await fetched_export(
        server, cache, checked, new_key(), tmp_path / "out", subdirectory="apps/web/"
    )

    assert root == tmp_path / "out" / "apps" / "web"
    assert (root / "src/mastra/index.ts").is_file()
    assert (tmp_path / "out" / "package.json").is_file(), "the workspace root comes along"


@pytest.mark.parametrize(
    "subdirectory",
    [
        "../x",
        "/etc",
        "missing",
        "apps/../apps/web",
        "apps//web",
        "./apps/web",
        "apps/web/package.json",
        "apps/link",
        ".git",
        "",
        "apps/web\x00",
        "a" * 2000,
    ],
)
async def test_hostile_subdirectories_are_refused(
    subdirectory: str,
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> None:
    make_repository(server.root, "app", MONOREPO)
    key = new_key()
    commit = await cache.fetch(key, checked(server.url("app")), "main")

    with pytest.raises(InvalidInput, match="subdirectory"):
        await cache.export(key, commit.sha, tmp_path / "out", subdirectory)

    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


# -- targets ------------------------------------------------------------------------------


async def test_targets_must_be_empty_real_folders_outside_the_cache(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(server.root, "app", {"a": "1"})
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")

    with pytest.raises(Conflict):
        await cache.export(key, sha, tmp_path / "full")
    with pytest.raises(InvalidInput, match="symlink"):
        await cache.export(key, sha, tmp_path / "link")
    with pytest.raises(InvalidInput, match="cache"):
        await cache.export(key, sha, cache.root / "inside")
    assert (await cache.export(key, sha, tmp_path / "empty")) == tmp_path / "empty"
    assert (tmp_path / "full" / "keep").read_text() == "mine"
    assert (tmp_path / "empty" / "a").read_text() == "1"


async def test_a_commit_that_was_never_fetched_is_not_exported(
    cache: GitCache, new_key: NewKey, tmp_path: Path
) -> None:
    with pytest.raises(CommitNotFound):
        await cache.export(new_key(), "a" * 40, tmp_path / "out")
    with pytest.raises(InvalidInput):
        await cache.export(new_key(), "main", tmp_path / "out")


async def test_files_past_the_export_limit_stop_the_export(
    server: GitHttpServer, tmp_path: Path, checked: Check, new_key: NewKey
) -> None:
    make_repository(server.root, "app", {"zeros.bin": bytes(3 * 2**20)})
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, max_export_mb=1
    )
    cache = GitCache(tmp_path / "cache", settings)

    with pytest.raises(RepositoryTooLarge):
        await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not (tmp_path / "out").exists()


# -- trees no git command would write ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [b"../escape", b"a/../../escape", b"/etc/cron.d/evil", b"//abs", b"a/b/../../../x", b"a//b", b"./x"],
)
async def test_absolute_dot_dot_and_empty_names_are_refused(
    name: bytes,
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    pwned = blob(repo, b"pwned")
    main_at(repo, raw_tree(repo, [("100644", b"ok", pwned), ("100644", name, pwned)]))
    target = tmp_path / "sandbox" / "out"

    with pytest.raises(UnsafeTree):
        await fetched_export(server, cache, checked, new_key(), target)

    assert not target.exists()
    assert sorted(os.listdir(tmp_path / "sandbox")) == [] if (tmp_path / "sandbox").exists() else True
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "x").exists()
    assert not any("checkout-index" in s.argv for s in spawned), "refused before git writes"


@pytest.mark.parametrize(
    "path",
    [[b"sub", b".GIT", b"hooks"], [b"a", b".git"], [b"GIT~1"], [b".git."], [b"x", b".git "]],
)
async def test_a_git_folder_at_any_depth_is_refused(
    path: list[bytes],
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    entry = ("100644", b"post-checkout", blob(repo, b"#!/bin/sh\ntouch /tmp/pwned\n"))
    for name in reversed(path):
        entry = ("040000", name, raw_tree(repo, [entry]))
    main_at(repo, raw_tree(repo, [("100644", b"fine", blob(repo, b"1")), entry]))

    with pytest.raises(UnsafeTree):
        await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("100644", b"a", "one"), ("100644", b"a", "two")], "twice"),
        ([("100644", b"a", "one"), ("120000", b"a", "two")], "twice"),
        ([("100644", b"a", "one"), ("040000", b"a", "tree")], "file and as a folder"),
        ([("160000", b"a", "one"), ("100644", b"a", "one")], "file and as a folder"),
        ([("100644", b"d/f", "one"), ("040000", b"d", "tree")], "twice"),
    ],
)
async def test_a_name_used_twice_is_refused(
    entries: list[tuple[str, bytes, str]],
    message: str,
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    oids = {"one": blob(repo, b"1"), "two": blob(repo, b"2")}
    oids["tree"] = raw_tree(repo, [("100644", b"f", oids["one"])])
    main_at(repo, raw_tree(repo, [(mode, name, oids[oid]) for mode, name, oid in entries]))

    with pytest.raises(UnsafeTree, match=message):
        await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not (tmp_path / "out").exists()


async def test_a_link_cannot_lead_out_through_another_link(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(
        server.root,
        "app",
        {
            "escape": Symlink("here/../outside"),
            "here": Symlink("."),
            "deep/x": Symlink("../here/../../outside"),
            "deep/file": "kept",
        },
    )
    (tmp_path / "outside").mkdir()

    root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not os.path.lexists(root / "escape")
    assert not os.path.lexists(root / "deep" / "x")
    assert os.readlink(root / "here") == "."
    assert (root / "deep" / "file").read_text() == "kept"


@pytest.mark.parametrize("text", [b"../outside", b"."])
async def test_a_file_is_never_written_through_a_link(
    text: bytes,
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    planted = raw_tree(repo, [("100644", b"planted", blob(repo, b"pwned"))])
    main_at(repo, raw_tree(repo, [("120000", b"dir", blob(repo, text)), ("040000", b"dir", planted)]))
    (tmp_path / "outside").mkdir()

    with capture_logs() as logs:
        root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert os.listdir(tmp_path / "outside") == []
    assert not (root / "dir").is_symlink()
    assert (root / "dir" / "planted").read_bytes() == b"pwned"
    assert [e["path"] for e in logs if e["event"] == "git.export.skipped"] == ["dir"]


async def test_names_that_are_not_utf8_are_written_as_they_are(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    repo = make_repository(server.root, "app", {"a": "1"})
    inner = raw_tree(repo, [("100755", b"caf\xe9.sh", blob(repo, b"#!/bin/sh\n"))])
    main_at(repo, raw_tree(repo, [("040000", b"d\xff", inner)]))

    root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    path = os.path.join(os.fsencode(root), b"d\xff", b"caf\xe9.sh")
    with open(path, "rb") as handle:
        assert handle.read() == b"#!/bin/sh\n"
    assert os.stat(path).st_mode & 0o777 == 0o755


# -- what git is allowed to do -------------------------------------------------------------


async def test_a_commit_cannot_bring_filters_line_endings_or_ident(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    """info/attributes of the cache outranks every .gitattributes of the commit: even a
    filter configured for the cache repository (no commit can do that) never runs."""
    files: dict[str, FileContent] = {
        ".gitattributes": (
            "* text eol=crlf\n"
            "*.txt ident\n"
            "*.bin filter=evil\n"
            "*.u16 working-tree-encoding=UTF-16\n"
            "[attr]sneaky text eol=crlf filter=evil\n"
            "*.js sneaky\n"
        ),
        "notes.txt": "$Id$\nline\n",
        "data.bin": "plain\n",
        "app.js": "run()\nagain()\n",
        "utf.u16": "h\u00e9llo\n",
        "sub/.gitattributes": "* eol=crlf text=auto filter=evil\n",
        "sub/x.md": "a\nb\n",
    }
    make_repository(server.root, "app", files)
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha
    marker = tmp_path / "filter-ran"
    repository = cache.path_for(key)
    git(repository, "config", "filter.evil.smudge", f"touch {marker}; cat")
    git(repository, "config", "filter.evil.required", "true")

    root = await cache.export(key, sha, tmp_path / "out")

    assert tree_bytes(root) == {p: c.encode() for p, c in files.items() if isinstance(c, str)}
    assert not marker.exists()
    checkout = next(s for s in spawned if "checkout-index" in s.argv)
    for option in ("core.autocrlf=false", "core.eol=lf", "core.fsmonitor=false"):
        assert option in checkout.argv


async def test_nothing_written_is_group_or_world_writable(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(
        server.root,
        "app",
        {"a/b/c.txt": "1", "run.sh": Executable("#!/bin/sh\n"), "link": Symlink("a")},
    )
    old = os.umask(0)
    try:
        root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")
    finally:
        os.umask(old)

    modes = {
        path: stat.S_IMODE(os.lstat(root / path).st_mode)
        for path in listing(root)
        if not (root / path).is_symlink()
    }
    assert modes == {"a": 0o755, "a/b": 0o755, "a/b/c.txt": 0o644, "run.sh": 0o755}


# -- limits, failures and cancellation ----------------------------------------------------


async def test_a_tree_too_large_is_refused_before_anything_is_written(
    server: GitHttpServer,
    tmp_path: Path,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
) -> None:
    # 2.4 MB that compress to almost nothing: only the tree's sizes tell.
    make_repository(server.root, "app", {f"part-{n}.bin": bytes(600_000) for n in range(4)})
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, max_export_mb=2
    )
    cache = GitCache(tmp_path / "cache", settings)

    with pytest.raises(RepositoryTooLarge):
        await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    assert not (tmp_path / "out").exists()
    assert not any({"update-index", "checkout-index"} & set(s.argv) for s in spawned)


async def test_the_private_index_never_stays_behind(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    make_repository(server.root, "app", {"a": "1", "b/c": "2"})
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha
    await cache.export(key, sha, tmp_path / "ok")
    # A blob the cache does not hold: git update-index takes it, checkout-index fails.
    missing = "0123456789abcdef0123456789abcdef01234567"
    repository = cache.path_for(key)
    broken = main_at(repository, raw_tree(repository, [("100644", b"gone", missing)]))

    with pytest.raises(GitError):
        await cache.export(key, broken, tmp_path / "broken")

    indexes = [s.env["GIT_INDEX_FILE"] for s in spawned if "GIT_INDEX_FILE" in s.env]
    assert len(indexes) == 4
    assert all(not os.path.exists(os.path.dirname(index)) for index in indexes)
    assert all(not os.path.exists(index) for index in indexes)
    assert not (tmp_path / "broken").exists()
    assert listing(tmp_path / "ok") == {"a", "b", "b/c"}


async def test_a_cancelled_export_leaves_nothing(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    group_members: Callable[[int], list[int]],
    tmp_path: Path,
) -> None:
    make_repository(server.root, "app", {f"d{n // 100}/f{n}.txt": f"{n}\n" * 200 for n in range(3000)})
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha
    target = tmp_path / "given"
    target.mkdir()

    task = asyncio.ensure_future(cache.export(key, sha, target))
    while not any("checkout-index" in s.argv for s in spawned):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    checkout = next(s for s in spawned if "checkout-index" in s.argv)
    assert group_members(checkout.pid) == []
    assert os.listdir(target) == [], "a folder it was given is emptied, not removed"
    assert not os.path.exists(os.path.dirname(checkout.env["GIT_INDEX_FILE"]))


async def test_excluded_names_are_left_out_at_any_depth(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(
        server.root,
        "app",
        {
            "node_modules/a.js": "x",
            "apps/web/node_modules/b.js": "x",
            "apps/web/node_modules/.bin/tool": Symlink("../b.js"),
            "apps/web/dist/index.js": "x",
            "apps/web/dist-tools/kept.js": "x",
            "apps/web/src/kept.ts": "x",
            "NODE_MODULES/kept.js": "x",
        },
    )
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha

    with capture_logs() as logs:
        root = await cache.export(key, sha, tmp_path / "out", exclude=("node_modules", "dist"))

    assert listing(root) == {
        "NODE_MODULES", "NODE_MODULES/kept.js", "apps", "apps/web", "apps/web/dist-tools",
        "apps/web/dist-tools/kept.js", "apps/web/src", "apps/web/src/kept.ts",
    }  # fmt: skip
    finished = next(e for e in logs if e["event"] == "git.export.finished")
    assert (finished["files"], finished["excluded"], finished["skipped"]) == (3, 4, 0)
