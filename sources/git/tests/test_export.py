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
    GitCache,
    GitError,
    GitSourceSettings,
    RepositoryTooLarge,
    RepositoryUrl,
    UnsafeTree,
)
from mastra_admin.sources.git._export import (
    TreeItem,
    checkout_shares,
    parse_listing,
    plan_export,
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


HOSTILE_NAMES = [
    b"../escape", b"a/../../escape", b"/etc/cron.d/evil", b"//abs", b"a/b/../../../x",
    b"a//b", b"./x", b"a/", b".git/config", b"sub/.GIT/hooks/post-checkout", b"x/.Git",
]  # fmt: skip


def item(mode: bytes, path: bytes, size: int = 1) -> TreeItem:
    kind = {b"040000": b"tree", b"160000": b"commit"}.get(mode, b"blob")
    return TreeItem(mode, kind, b"1" * 40, size, path)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("exclude", [(), ("node_modules",)])
def test_hostile_names_are_refused_excluded_or_not(name: bytes, exclude: tuple[str, ...]) -> None:
    items = [item(b"100644", b"ok"), item(b"100644", name)]

    with pytest.raises(UnsafeTree):
        plan_export(items, exclude=exclude, max_bytes=2**20)
    with pytest.raises(UnsafeTree):
        plan_export(
            [item(b"040000", b"node_modules"), item(b"100644", b"node_modules/" + name)],
            exclude=exclude,
            max_bytes=2**20,
        )


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([(b"100644", b"a"), (b"100755", b"a")], "twice"),
        ([(b"100644", b"a"), (b"120000", b"a")], "twice"),
        ([(b"120000", b"a"), (b"120000", b"a")], "twice"),
        ([(b"100644", b"a"), (b"040000", b"a")], "file and as a folder"),
        ([(b"100644", b"a"), (b"100644", b"a/b")], "file and as a folder"),
        ([(b"160000", b"a"), (b"100644", b"a")], "file and as a folder"),
        ([(b"100644", b"d/f"), (b"040000", b"d"), (b"100644", b"d/f")], "twice"),
    ],
)
def test_a_name_used_twice_is_refused(entries: list[tuple[bytes, bytes]], message: str) -> None:
    with pytest.raises(UnsafeTree, match=message):
        plan_export([item(mode, path) for mode, path in entries], exclude=(), max_bytes=2**20)


def test_the_plan_adds_up_sizes_before_anything_is_written() -> None:
    items = [item(b"100644", f"f{n}".encode(), 400_000) for n in range(3)]

    assert plan_export(items, exclude=(), max_bytes=1_200_000).stats.bytes == 1_200_000
    with pytest.raises(RepositoryTooLarge):
        plan_export(items, exclude=(), max_bytes=1_199_999)
    excluded = [*items, item(b"100644", b"node_modules/big", 10**12)]
    assert plan_export(excluded, exclude=("node_modules",), max_bytes=2**21).stats.excluded == 1


def test_listings_are_read_exactly_and_shared_out_whole() -> None:
    oid = b"a" * 40
    listing_ = b"".join(
        b"100644 blob %s %7d\t%s\0" % (oid, n, f"d{n // 700}/f{n}\tx\n".encode())
        for n in range(2500)
    )
    items = parse_listing(b"040000 tree " + oid + b"       -\td0\0" + listing_)

    assert items[0] == TreeItem(b"040000", b"tree", oid, -1, b"d0")
    assert items[-1] == TreeItem(b"100644", b"blob", oid, 2499, b"d3/f2499\tx\n")
    shares = checkout_shares(plan_export(items, exclude=(), max_bytes=2**30))
    assert len(shares) == 2
    assert b"".join(shares).split(b"\0")[:-1] == [i.path for i in items[1:]]
    for broken in (listing_[:-1], b"garbage\0" + listing_, b"100644 blob x\0"):
        with pytest.raises(GitError):
            parse_listing(broken)


@pytest.mark.parametrize("name", [b"a/../../escape", b"/etc/cron.d/evil"])
async def test_absolute_and_dot_dot_names_are_refused(
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

    assert not (tmp_path / "sandbox").exists()
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "x").exists()
    assert not any("checkout-index" in s.argv for s in spawned), "refused before git writes"


@pytest.mark.parametrize("path", [[b"sub", b".GIT", b"hooks"], [b"GIT~1"], [b"x", b".git "]])
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
        ([("100644", b"d/f", "one"), ("040000", b"d", "tree")], "twice"),
    ],
)
async def test_a_tree_naming_a_path_twice_is_refused(
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
    main_at(
        repo, raw_tree(repo, [("120000", b"dir", blob(repo, text)), ("040000", b"dir", planted)])
    )
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


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o077])
async def test_modes_are_those_of_umask_022_whatever_the_umask(
    umask: int,
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> None:
    """Nothing written is group- or world-writable, and the modes do not depend on the
    process umask (git writes with it: uvloop cannot give git another one)."""
    make_repository(
        server.root,
        "app",
        {"a/b/c.txt": "1", "run.sh": Executable("#!/bin/sh\n"), "link": Symlink("a")},
    )
    key = new_key()
    sha = (await cache.fetch(key, checked(server.url("app")), "main")).sha
    (tmp_path / "given").mkdir(mode=0o750)
    old = os.umask(umask)
    try:
        root = await cache.export(key, sha, tmp_path / "out")
        given = await cache.export(key, sha, tmp_path / "given")
    finally:
        os.umask(old)

    for folder in (root, given):
        modes = {
            path: stat.S_IMODE(os.lstat(folder / path).st_mode)
            for path in listing(folder)
            if not (folder / path).is_symlink()
        }
        assert modes == {"a": 0o755, "a/b": 0o755, "a/b/c.txt": 0o644, "run.sh": 0o755}
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755 & ~umask, "made as mkdir makes it"
    assert stat.S_IMODE(os.stat(given).st_mode) == 0o750, "a given folder keeps its mode"


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
    # A name longer than the file system allows: git checkout-index fails on it.
    repository = cache.path_for(key)
    entries = [("100644", name, blob(repository, b"x")) for name in (b"a", b"n" * 300)]
    broken = main_at(repository, raw_tree(repository, entries))

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
    make_repository(
        server.root, "app", {f"d{n // 100}/f{n}.txt": f"{n}\n" * 200 for n in range(1500)}
    )
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


async def test_many_files_are_written_by_processes_side_by_side(
    server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    files: dict[str, FileContent] = {f"d{n // 40}/f{n}.txt": f"{n}\n" for n in range(2000)}
    files["bin/run"] = Executable("#!/bin/sh\n")
    files["bin/link"] = Symlink("run")
    make_repository(server.root, "app", files)

    root = await fetched_export(server, cache, checked, new_key(), tmp_path / "out")

    checkouts = [s for s in spawned if "checkout-index" in s.argv]
    assert len(checkouts) == 2
    assert len({s.env["GIT_INDEX_FILE"] for s in checkouts}) == 1, "one index, read by both"
    written = {
        p: (root / p).read_text()
        for p in listing(root)
        if (root / p).is_file() and not (root / p).is_symlink()
    }
    assert len(written) == 2001
    assert all(written[p] == files[p] for p in written if p.startswith("d"))
    assert os.readlink(root / "bin" / "link") == "run"
    assert os.stat(root / "bin" / "run").st_mode & 0o777 == 0o755


def test_an_export_runs_on_uvloop(
    server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    """The server runs on uvloop, whose subprocesses take fewer options than asyncio's."""
    uvloop = pytest.importorskip("uvloop")
    make_repository(server.root, "app", {"a/b.txt": "1", "run": Executable("x"), "l": Symlink("a")})

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        root = runner.run(fetched_export(server, cache, checked, new_key(), tmp_path / "out"))

    assert listing(root) == {"a", "a/b.txt", "run", "l"}
    assert os.readlink(root / "l") == "a"
