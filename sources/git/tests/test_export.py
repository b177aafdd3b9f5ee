"""Exports write a commit's files and nothing else: no ``.git``, nothing outside the
target, no links that lead out, no special files."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.errors import Conflict, InvalidInput
from mastra_admin.sources.git import (
    CommitNotFound,
    GitCache,
    GitSourceSettings,
    RepositoryTooLarge,
    RepositoryUrl,
    UnsafeTree,
)
from mastra_admin.sources.git._archive import extract_tree
from mastra_admin.sources.git.testing import (
    FileContent,
    GitHttpServer,
    Symlink,
    make_repository,
)

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
    sha = git(repo, "commit-tree", tree, "-m", "hand-made tree")
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


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


# -- tar streams no git would write ------------------------------------------------------


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    data.seek(0)
    return data


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    for field, value in fields.items():
        setattr(info, field, value)
    return info


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "/etc/cron.d/evil", "//abs", "a/b/../../../x"]
)
def test_absolute_and_dot_dot_members_are_refused(name: str, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    stream = tar_of((member("ok"), b"fine"), (member(name), b"pwned"))

    with pytest.raises(UnsafeTree):
        extract_tree(stream, str(target), max_bytes=2**20)

    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "x").exists()


def test_special_files_hard_links_and_dot_git_are_left_out(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    stream = tar_of(
        (member("app.js"), b"run()"),
        (member("run.sh", mode=0o755), b"#!/bin/sh\n"),
        (member("fifo", tarfile.FIFOTYPE), None),
        (member("null", tarfile.CHRTYPE, devmajor=1, devminor=3), None),
        (member("disk", tarfile.BLKTYPE, devmajor=8, devminor=0), None),
        (member("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), None),
        (member(".git/config"), b"[core]\n\thooksPath = /tmp\n"),
        (member("sub/.GIT/hooks/post-checkout", mode=0o755), b"#!/bin/sh\n"),
    )

    with capture_logs() as logs:
        stats = extract_tree(stream, str(target), max_bytes=2**20)

    assert listing(target) == {"app.js", "run.sh"}
    assert os.stat(target / "run.sh").st_mode & 0o777 == 0o755
    assert stats.files == 2
    assert set(stats.skipped) == {
        "fifo", "null", "disk", "hard", ".git/config", "sub/.GIT/hooks/post-checkout"
    }  # fmt: skip
    assert len([e for e in logs if e["event"] == "git.export.skipped"]) == 6


def test_a_link_cannot_lead_out_through_another_link(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "outside").mkdir()
    stream = tar_of(
        (member("escape", tarfile.SYMTYPE, linkname="here/../outside"), None),
        (member("here", tarfile.SYMTYPE, linkname="."), None),
        (member("deep/x", tarfile.SYMTYPE, linkname="../here/../../outside"), None),
    )

    extract_tree(stream, str(target), max_bytes=2**20)

    assert not os.path.lexists(target / "escape")
    assert not os.path.lexists(target / "deep" / "x")
    assert os.readlink(target / "here") == "."


def test_a_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "outside").mkdir()
    stream = tar_of(
        (member("dir", tarfile.SYMTYPE, linkname="../outside"), None),
        (member("dir/planted"), b"pwned"),
    )

    extract_tree(stream, str(target), max_bytes=2**20)

    assert os.listdir(tmp_path / "outside") == []
    assert (target / "dir" / "planted").read_bytes() == b"pwned"


def test_a_name_used_twice_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    stream = tar_of((member("a"), b"1"), (member("a"), b"2"))

    with pytest.raises(UnsafeTree, match="twice"):
        extract_tree(stream, str(target), max_bytes=2**20)
