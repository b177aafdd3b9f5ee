"""Exports made from a spare (``GitCache.export(..., spare=True)``): the same tree, byte
for byte, as a full export of the commit; hostile commits refused as a full export
refuses them, leaving no build folder and no spare; force-pushes, exports side by side,
targets on another file system, and spares that are doubtful all end in a correct
export; and a spare never outlives the cache, its key or its preparation."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.models import Team
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.sources.git import (
    CommitNotFound,
    GitCache,
    GitProjectSource,
    GitSourceSettings,
    RepositoryTooLarge,
    RepositoryUrl,
    UnsafeTree,
)
from mastra_admin.sources.git._export import ExportPlan, TreeItem
from mastra_admin.sources.git._spare import Manifest, changes_between, wanted_blobs
from mastra_admin.sources.git.testing import (
    Executable,
    FileContent,
    GitHttpServer,
    Symlink,
    commit,
    force_push,
    make_repository,
)

from .conftest import Spawned, fake_resolve, register
from .test_export import blob, main_at, raw_tree

Check = Callable[[str], RepositoryUrl]
NewKey = Callable[[], str]
Snapshot = dict[str, tuple[str, int, bytes]]


@pytest.fixture
async def spare_cache(settings: GitSourceSettings, tmp_path: Path) -> AsyncIterator[GitCache]:
    """A cache whose spares are waited for and removed after the test."""
    cache = GitCache(tmp_path / "cache", settings, resolve=fake_resolve)
    yield cache
    await cache.close()


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` with its kind, mode and content (symlinks: their text);
    the root itself as ``.``."""
    found: Snapshot = {".": ("folder", stat.S_IMODE(os.lstat(root).st_mode), b"")}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found[relative] = ("symlink", 0, os.fsencode(os.readlink(path)))
            elif stat.S_ISDIR(mode):
                found[relative] = ("folder", stat.S_IMODE(mode), b"")
            else:
                found[relative] = ("file", stat.S_IMODE(mode), path.read_bytes())
    return found


def finished(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [event for event in logs if event["event"] == "git.export.finished"]


class Repository:
    """A served repository, fetched into ``cache`` under one key, exported both ways."""

    def __init__(
        self,
        server: GitHttpServer,
        cache: GitCache,
        url: RepositoryUrl,
        key: str,
        builds: Path,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.path = server.root / "app.git"
        self.cache = cache
        self.url = url
        self.key = key
        self.builds = builds
        self.exclude = exclude
        self.round = 0

    async def fetch(self) -> str:
        return (await self.cache.fetch(self.key, self.url, "main")).sha

    async def export(self, sha: str, name: str, *, spare: bool) -> Path:
        return await self.cache.export(
            self.key, sha, self.builds / name, exclude=self.exclude, spare=spare
        )

    async def both(self, sha: str) -> tuple[Snapshot, Snapshot, MutableMapping[str, Any]]:
        """The export from the spare and a full export of ``sha``, and the former's
        ``git.export.finished`` event; then the next spare is waited for."""
        self.round += 1
        with capture_logs() as logs:
            from_spare = await self.export(sha, f"spare-{self.round}", spare=True)
        full = await self.export(sha, f"full-{self.round}", spare=False)
        await self.cache.wait_for_spares()
        [event] = finished(logs)
        return snapshot(from_spare), snapshot(full), event

    async def step(self, files: Mapping[str, FileContent | None]) -> MutableMapping[str, Any]:
        """Commit ``files``, fetch, export both ways; the two must be identical."""
        await asyncio.to_thread(commit, self.path, files)
        ours, theirs, event = await self.both(await self.fetch())
        assert ours == theirs
        return event

    def spare_folders(self) -> list[str]:
        home = self.cache.root / ".spares"
        if not home.exists():
            return []
        return [
            f"{entry.name}/{inner.name}"
            for entry in home.iterdir()
            if entry.is_dir()
            for inner in entry.iterdir()
            if inner.name != "lock"
        ]


@pytest.fixture
async def repository(
    server: GitHttpServer,
    spare_cache: GitCache,
    checked: Check,
    new_key: NewKey,
    tmp_path: Path,
) -> Repository:
    """A repository whose first commit was exported (fully) and whose spare is ready."""
    make_repository(
        server.root,
        "app",
        {
            "package.json": '{"name": "agent"}\n',
            "src/index.ts": "export const a = 1;\n",
            "src/lib/util.ts": "export const u = 1;\n",
            "src/lib/deep/more.ts": "export const m = 1;\n",
            "docs": "a file for now\n",
            "lib/a.js": "a\n",
            "lib/b/c.js": "c\n",
            "run.sh": "#!/bin/sh\n",
            "bin/tool": Executable("#!/bin/sh\necho tool\n"),
            "link": Symlink("src/index.ts"),
        },
    )
    made = Repository(server, spare_cache, checked(server.url("app")), new_key(), tmp_path / "b")
    await made.export(await made.fetch(), "first", spare=True)
    await spare_cache.wait_for_spares()
    return made


# -- the same tree as a full export ----------------------------------------------------


async def test_changed_added_removed_and_renamed_files(repository: Repository) -> None:
    event = await repository.step(
        {
            "src/index.ts": "export const a = 2;\n",
            "src/new/added.ts": "export const added = 1;\n",
            "src/lib/deep/more.ts": None,
            "package.json": None,
            "renamed.json": '{"name": "agent"}\n',
        }
    )

    assert event["spare"] is True
    assert event["read"] == 4, "the three new files' blobs and the symlink's"
    assert event["written"] == 3
    assert event["removed"] == 2


async def test_a_file_becomes_a_folder_and_a_folder_a_file(repository: Repository) -> None:
    event = await repository.step({"docs": None, "docs/readme.md": "# docs\n"})
    assert event["spare"] is True

    event = await repository.step({"lib/a.js": None, "lib/b/c.js": None, "lib": "now a file\n"})
    assert event["spare"] is True

    event = await repository.step({"src/index.ts": None, "src/lib/util.ts": None})
    assert event["spare"] is True
    event = await repository.step({"src/lib/deep/more.ts": None, "src": "a file now\n"})
    assert event["spare"] is True


async def test_the_executable_bit_changes_alone(repository: Repository) -> None:
    event = await repository.step({"run.sh": Executable("#!/bin/sh\n")})
    assert (event["spare"], event["written"]) == (True, 0)

    event = await repository.step({"bin/tool": "#!/bin/sh\necho tool\n"})
    assert event["spare"] is True


async def test_symlinks_change_as_in_a_full_export(repository: Repository) -> None:
    steps: list[dict[str, FileContent | None]] = [
        {"link": Symlink("src/lib/util.ts"), "to-folder": Symlink("src/lib")},
        {"outside": Symlink("../../etc/passwd"), "absolute": Symlink("/etc/passwd")},
        {"through": Symlink("to-folder/util.ts"), "escape": Symlink("to-folder/../../..")},
        {"link": "a file now\n", "run.sh": Symlink("bin/tool")},
        {"src/lib": None, "src/lib/util.ts": None, "src/lib/deep/more.ts": None},
        {"src/lib": Symlink("..")},  # a folder that became a link: old links re-checked
        {"to-folder": None, "through": None, "src/lib": None, "link": Symlink("lib")},
    ]
    for files in steps:
        event = await repository.step(files)
        assert event["spare"] is True


async def test_changes_across_many_folders(repository: Repository) -> None:
    """More folders than ``apply_changes`` keeps open at once."""
    many: dict[str, FileContent | None] = {f"m/{n}/f.ts": f"{n}\n" for n in range(300)}
    event = await repository.step(many)
    assert (event["spare"], event["written"]) == (True, 300)

    event = await repository.step({path: f"changed {path}\n" for path in many})
    assert (event["spare"], event["written"]) == (True, 300)


async def test_a_commit_that_changes_nothing_writes_nothing(repository: Repository) -> None:
    event = await repository.step({"src/index.ts": "export const a = 1;\n"})

    assert (event["spare"], event["written"], event["removed"]) == (True, 0, 0)
    assert event["read"] == 1, "the symlink's text alone"


async def test_excluded_names_stay_out(
    server: GitHttpServer, spare_cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(server.root, "app", {"a.ts": "1", "node_modules/x.js": "x"})
    repo = Repository(
        server,
        spare_cache,
        checked(server.url("app")),
        new_key(),
        tmp_path / "b",
        exclude=("node_modules", "dist"),
    )
    await repo.export(await repo.fetch(), "first", spare=True)
    await spare_cache.wait_for_spares()

    event = await repo.step(
        {"node_modules/x.js": "changed", "apps/web/dist/big.js": "y" * 100_000, "a.ts": "2"}
    )
    event = await repo.step({"dist": "a file named as an excluded folder", "node_modules": None})

    assert event["spare"] is True
    assert not (repo.builds / f"spare-{repo.round}" / "dist").exists()


async def test_a_force_push_is_exported_from_the_spare(repository: Repository) -> None:
    force_push(repository.path, {"package.json": '{"name": "new"}\n', "src/index.ts": "b\n"})

    ours, theirs, event = await repository.both(await repository.fetch())

    assert ours == theirs
    assert set(ours) == {".", "package.json", "src", "src/index.ts"}
    assert event["spare"] is True


async def test_the_target_keeps_the_mode_mkdir_gives_it(repository: Repository) -> None:
    await asyncio.to_thread(commit, repository.path, {"x": "1"})
    sha = await repository.fetch()
    old = os.umask(0o027)
    try:
        root = await repository.export(sha, "umask", spare=True)
    finally:
        os.umask(old)
    await repository.cache.wait_for_spares()
    full = await repository.export(sha, "umask-full", spare=False)

    assert stat.S_IMODE(os.stat(root).st_mode) == 0o750
    assert {k: v for k, v in snapshot(root).items() if k != "."} == {
        k: v for k, v in snapshot(full).items() if k != "."
    }


# -- hostile commits after a benign one -----------------------------------------------


def _hostile(repo: Path, kind: str) -> None:
    """Point ``main`` at a crafted commit that a full export refuses."""
    pwned = blob(repo, b"pwned")
    fine = ("100644", b"package.json", blob(repo, b"{}\n"))
    if kind == "dot-git":
        hook = raw_tree(repo, [("100755", b"post-checkout", pwned)])
        entries = [fine, ("040000", b".git", raw_tree(repo, [("040000", b"hooks", hook)]))]
    elif kind == "dot-git-deep":
        inner = raw_tree(repo, [("100644", b"config", pwned)])
        entries = [fine, ("040000", b"src", raw_tree(repo, [("040000", b".GIT", inner)]))]
    elif kind == "traversal":
        entries = [fine, ("100644", b"a/../../escape", pwned)]
    elif kind == "dot-dot":
        entries = [fine, ("040000", b"..", raw_tree(repo, [("100644", b"evil", pwned)]))]
    elif kind == "absolute":
        entries = [fine, ("100644", b"/tmp/evil", pwned)]
    elif kind == "twice":
        entries = [fine, ("100644", b"x", pwned), ("100644", b"x", blob(repo, b"other"))]
    else:  # file-and-folder
        folder = raw_tree(repo, [("100644", b"f", pwned)])
        entries = [fine, ("100644", b"d/f", pwned), ("040000", b"d", folder)]
    main_at(repo, raw_tree(repo, entries))


@pytest.mark.parametrize(
    "kind",
    ["dot-git", "dot-git-deep", "traversal", "dot-dot", "absolute", "twice", "file-and-folder"],
)
async def test_a_hostile_commit_is_refused_as_a_full_export_refuses_it(
    kind: str, repository: Repository, spawned: list[Spawned], tmp_path: Path
) -> None:
    await asyncio.to_thread(_hostile, repository.path, kind)
    sha = await repository.fetch()
    spawned.clear()

    with capture_logs() as logs, pytest.raises(UnsafeTree) as from_spare:
        await repository.export(sha, "hostile", spare=True)
    with pytest.raises(UnsafeTree) as full:
        await repository.export(sha, "hostile-full", spare=False)
    await repository.cache.wait_for_spares()

    assert (from_spare.value.message, from_spare.value.details) == (
        full.value.message,
        full.value.details,
    )
    assert any(e["event"] == "git.spare.unused" for e in logs), "the spare was tried"
    assert not (repository.builds / "hostile").exists()
    assert not (tmp_path / "escape").exists()
    assert not Path("/tmp/evil").exists()
    assert repository.spare_folders() == [], "no spare is left, used or not"
    assert not any("checkout-index" in s.argv for s in spawned), "nothing written by git"


async def test_a_tree_too_large_is_refused_and_leaves_no_spare(
    server: GitHttpServer, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, max_export_mb=1
    )
    cache = GitCache(tmp_path / "cache", settings, resolve=fake_resolve)
    try:
        make_repository(server.root, "app", {"a": "1"})
        repo = Repository(server, cache, checked(server.url("app")), new_key(), tmp_path / "b")
        await repo.export(await repo.fetch(), "first", spare=True)
        await cache.wait_for_spares()
        await asyncio.to_thread(commit, repo.path, {"big.bin": bytes(1_200_000)})

        with pytest.raises(RepositoryTooLarge):
            await repo.export(await repo.fetch(), "large", spare=True)
        await cache.wait_for_spares()

        assert not (repo.builds / "large").exists()
        assert repo.spare_folders() == []
    finally:
        await cache.close()


async def test_after_a_refused_commit_the_next_good_one_is_exported(
    repository: Repository,
) -> None:
    await asyncio.to_thread(_hostile, repository.path, "dot-git")
    with pytest.raises(UnsafeTree):
        await repository.export(await repository.fetch(), "hostile", spare=True)
    force_push(repository.path, {"package.json": "{}\n", "src/index.ts": "good\n"})
    good = await repository.fetch()

    with capture_logs() as logs:
        await repository.export(good, "good", spare=True)
    await repository.cache.wait_for_spares()
    event = await repository.step({"src/index.ts": "better\n"})

    assert finished(logs)[0]["spare"] is False, "no spare: a full export"
    assert event["spare"] is True, "and a spare again afterwards"


# -- side by side, other file systems, doubtful spares ----------------------------------


async def test_two_exports_of_one_key_at_once(repository: Repository) -> None:
    await asyncio.to_thread(commit, repository.path, {"src/index.ts": "both\n"})
    sha = await repository.fetch()

    with capture_logs() as logs:
        one, two = await asyncio.gather(
            repository.export(sha, "one", spare=True), repository.export(sha, "two", spare=True)
        )
    full = await repository.export(sha, "full", spare=False)
    await repository.cache.wait_for_spares()

    assert snapshot(one) == snapshot(two) == snapshot(full)
    assert sorted(e["spare"] for e in finished(logs)) == [False, True], "one took the spare"
    assert len(repository.spare_folders()) == 1


async def test_a_target_on_another_file_system_falls_back(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(commit, repository.path, {"src/index.ts": "moved\n"})
    sha = await repository.fetch()
    real_rename = os.rename

    def rename(source: Any, target: Any) -> None:
        if os.fspath(source).endswith("/tree"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)

    with capture_logs() as logs:
        root = await repository.export(sha, "elsewhere", spare=True)
    monkeypatch.undo()
    await repository.cache.wait_for_spares()
    full = await repository.export(sha, "full", spare=False)

    assert snapshot(root) == snapshot(full)
    assert [e["spare"] for e in finished(logs)] == [False]
    assert next(e for e in logs if e["event"] == "git.spare.unused")["error"] == "OSError"


async def test_a_target_on_a_real_other_file_system_is_a_full_export(
    repository: Repository,
) -> None:
    # /dev/shm is a tmpfs on Linux; when the builds are on it, the disk is the other.
    here = os.stat(repository.builds).st_dev
    others = [p for p in (Path("/dev/shm"), Path("/var/tmp")) if p.is_dir()]
    other = next((p for p in others if os.stat(p).st_dev != here), None)
    assert other is not None, "the test needs /dev/shm or /var/tmp on another file system"
    sha = await asyncio.to_thread(commit, repository.path, {"src/index.ts": "shm\n"})
    assert sha == await repository.fetch()
    with tempfile.TemporaryDirectory(dir=other) as elsewhere:
        with capture_logs() as logs:
            root = await repository.cache.export(
                repository.key, sha, Path(elsewhere) / "build", spare=True
            )
        full = await repository.export(sha, "full", spare=False)
        assert snapshot(root) == snapshot(full)
    await repository.cache.wait_for_spares()

    assert [e["spare"] for e in finished(logs)] == [False]


async def test_an_existing_target_folder_is_a_full_export(repository: Repository) -> None:
    target = repository.builds / "given"
    target.mkdir(parents=True, mode=0o700)

    with capture_logs() as logs:
        await repository.cache.export(repository.key, await repository.fetch(), target, spare=True)

    assert [e["spare"] for e in finished(logs)] == [False]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700


def _spare_tree(repository: Repository) -> Path:
    [folder] = repository.spare_folders()
    return repository.cache.root / ".spares" / folder / "tree"


@pytest.mark.parametrize("damage", ["extra-file", "missing-file", "manifest", "symlink"])
async def test_a_doubtful_spare_is_never_handed_out(
    damage: str, repository: Repository, tmp_path: Path
) -> None:
    tree = _spare_tree(repository)
    if damage == "extra-file":
        (tree / "src" / "planted.ts").write_text("not in the commit\n")
    elif damage == "missing-file":
        (tree / "src" / "lib" / "deep" / "more.ts").unlink()  # a file the commit keeps
    elif damage == "manifest":
        (tree.parent / "manifest").write_bytes(b"garbage")
    else:  # a folder of the spare replaced by a link that leads out
        outside = tmp_path / "outside"
        outside.mkdir()
        shutil.rmtree(tree / "src" / "lib")
        (tree / "src" / "lib").symlink_to(outside)
    await asyncio.to_thread(
        commit, repository.path, {"src/lib/util.ts": "changed\n", "src/index.ts": "2\n"}
    )
    sha = await repository.fetch()

    with capture_logs() as logs:
        root = await repository.export(sha, "checked", spare=True)
    full = await repository.export(sha, "full", spare=False)
    await repository.cache.wait_for_spares()

    assert snapshot(root) == snapshot(full)
    assert [e["spare"] for e in finished(logs)] == [False]
    assert any(e["event"] == "git.spare.unused" for e in logs)
    if damage == "symlink":
        assert os.listdir(tmp_path / "outside") == [], "nothing written through the link"


async def test_a_commit_not_fetched_keeps_the_spare(repository: Repository) -> None:
    with pytest.raises(CommitNotFound):
        await repository.export("ab" * 20, "never", spare=True)

    event = await repository.step({"src/index.ts": "still there\n"})
    assert event["spare"] is True


async def test_a_cancelled_export_from_the_spare_leaves_nothing(
    repository: Repository,
    spawned: list[Spawned],
    group_members: Callable[[int], list[int]],
) -> None:
    await asyncio.to_thread(commit, repository.path, {"src/index.ts": "cancelled\n"})
    sha = await repository.fetch()
    spawned.clear()

    task = asyncio.ensure_future(repository.export(sha, "cancelled", spare=True))
    while not any("cat-file" in s.argv for s in spawned):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await repository.cache.wait_for_spares()

    assert all(group_members(s.pid) == [] for s in spawned)
    assert not (repository.builds / "cancelled").exists()
    assert repository.spare_folders() == []


# -- where spares live, and how long ---------------------------------------------------


async def test_spares_live_in_the_cache_and_go_with_it(
    repository: Repository, spare_cache: GitCache
) -> None:
    [folder] = repository.spare_folders()
    home = spare_cache.root / ".spares" / folder.split("/")[0]
    assert stat.S_IMODE(os.stat(spare_cache.root).st_mode) == 0o700

    await spare_cache.remove(repository.key)
    await spare_cache.wait_for_spares()
    assert repository.spare_folders() == []

    await repository.export(await repository.fetch(), "again", spare=True)
    await spare_cache.wait_for_spares()
    assert len(repository.spare_folders()) == 1
    await spare_cache.close()
    assert not home.exists()
    assert repository.spare_folders() == []
    await spare_cache.close()


async def test_the_spares_of_a_cache_that_is_gone_are_removed(
    repository: Repository, settings: GitSourceSettings, tmp_path: Path
) -> None:
    spares = repository.cache.root / ".spares"
    dead = spares / "i-0000000000000000"
    (dead / "k-1" / "tree").mkdir(parents=True)
    (dead / "lock").touch()
    alive = GitCache(repository.cache.root, settings, resolve=fake_resolve)
    try:
        await alive._spare_home()  # another cache of this folder, still running
        other = GitCache(repository.cache.root, settings, resolve=fake_resolve)
        try:
            await other._spare_home()
            names = sorted(entry.name for entry in spares.iterdir())
        finally:
            await other.close()
    finally:
        await alive.close()

    assert not dead.exists()
    assert len(names) == 3, "this one's, the other live cache's and the first cache's"


async def test_a_stopped_preparation_leaves_nothing(
    server: GitHttpServer, spare_cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    make_repository(server.root, "app", {f"d{n // 50}/f{n}.txt": f"{n}\n" for n in range(1500)})
    repo = Repository(server, spare_cache, checked(server.url("app")), new_key(), tmp_path / "b")
    await repo.export(await repo.fetch(), "first", spare=True)

    await spare_cache.close()  # while the spare is being prepared

    assert repo.spare_folders() == []
    assert not (spare_cache.root / ".spares").exists() or not any(
        (spare_cache.root / ".spares").iterdir()
    )


def test_a_lock_is_held_for_the_life_of_the_cache(tmp_path: Path) -> None:
    """How a live cache's spares are told from a dead one's: an ``flock``."""
    from mastra_admin.sources.git._git import _drop_spare_home, _make_spare_home

    home, lock = _make_spare_home(tmp_path)
    try:
        fd = os.open(os.path.join(home, "lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        _drop_spare_home(home, lock)
    assert not os.path.exists(home)


# -- the provider -------------------------------------------------------------------------


async def test_an_app_folder_is_returned_as_from_a_full_export(repository: Repository) -> None:
    await asyncio.to_thread(commit, repository.path, {"src/index.ts": "app\n"})
    sha = await repository.fetch()

    with capture_logs() as logs:
        root = await repository.cache.export(
            repository.key, sha, repository.builds / "app", "src/lib", spare=True
        )
    await repository.cache.wait_for_spares()
    with pytest.raises(InvalidInput) as from_spare:
        await repository.cache.export(
            repository.key, sha, repository.builds / "no-app", "nowhere", spare=True
        )
    with pytest.raises(InvalidInput) as full:
        await repository.cache.export(repository.key, sha, repository.builds / "no-app", "nowhere")

    assert root == repository.builds / "app" / "src" / "lib"
    assert (root / "util.ts").is_file()
    assert [e["spare"] for e in finished(logs)] == [True]
    assert from_spare.value.message == full.value.message
    assert not (repository.builds / "no-app").exists()


async def test_builds_of_a_project_copy_from_the_spare(
    git_source: GitProjectSource,
    server: GitHttpServer,
    storage: InMemoryAdminStorage,
    team: Team,
    spawned: list[Spawned],
    tmp_path: Path,
) -> None:
    repo = make_repository(
        server.root,
        "app",
        {
            "package.json": '{"dependencies": {"@mastra/core": "1"}}\n',
            "src/mastra/index.ts": "export const mastra = {};\n",
            "node_modules/left/out.js": "x",
        },
    )
    connection = await git_source.connect(
        team.id, {"url": server.url("app")}, default_branch="main"
    )
    project = await register(storage, team.id, connection)
    source = await git_source.source_for(project)
    first, _ = await git_source.pin(source, "main")
    await git_source.get_project_path(first, tmp_path / "build-1")
    await git_source.cache.wait_for_spares()
    await asyncio.to_thread(commit, repo, {"src/mastra/index.ts": "export const v = 2;\n"})

    second, _ = await git_source.pin(source, "main")
    spawned.clear()
    with capture_logs() as logs:
        root = await git_source.get_project_path(second, tmp_path / "build-2")

    assert [e["spare"] for e in finished(logs)] == [True]
    assert (root / "src/mastra/index.ts").read_text() == "export const v = 2;\n"
    assert not (root / "node_modules").exists()
    commands = [next(a for a in s.argv if a in ("ls-tree", "cat-file", "log")) for s in spawned]
    assert commands == ["ls-tree", "cat-file"], "two git processes for a build's copy"


async def test_spares_can_be_turned_off(
    server: GitHttpServer,
    storage: InMemoryAdminStorage,
    encryption: AesGcmEncryption,
    team: Team,
    tmp_path: Path,
) -> None:
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True, spare_exports=False
    )
    source = GitProjectSource(
        settings, storage=storage, encryption=encryption, cache_dir=tmp_path / "cache"
    )
    try:
        make_repository(server.root, "app", {"package.json": "{}\n"})
        connection = await source.connect(
            team.id, {"url": server.url("app")}, default_branch="main"
        )
        pinned, _ = await source.pin(
            await source.source_for(await register(storage, team.id, connection)), "main"
        )
        await source.get_project_path(pinned, tmp_path / "one")
        await source.cache.wait_for_spares()

        assert not (tmp_path / "cache" / ".spares").exists()
    finally:
        await source.close()


# -- the pure parts -------------------------------------------------------------------------


def _plan(files: dict[bytes, bytes], folders: list[bytes]) -> ExportPlan:
    plan = ExportPlan(folders=folders)
    for path, oid in files.items():
        plan.files[path] = TreeItem(b"100644", b"blob", oid, 1, path)
    return plan


def test_changes_remove_only_the_topmost_folders_that_are_gone() -> None:
    before = Manifest.of(
        _plan(
            {b"a/b/c": b"1" * 40, b"a/d": b"2" * 40, b"a-b": b"3" * 40, b"keep/x": b"4" * 40},
            [b"a", b"a/b", b"keep"],
        )
    )
    after = _plan({b"a-b": b"3" * 40, b"keep/x": b"5" * 40, b"a": b"6" * 40}, [b"keep"])

    changes = changes_between(before, after)

    assert changes.folders == [b"a"]
    assert changes.files == []
    assert [item.path for item in changes.writes] == [b"keep/x", b"a"]
    assert changes.new_folders == []


def test_only_new_blobs_and_symlinks_are_read() -> None:
    held = _plan({b"a": b"1" * 40, b"b": b"2" * 40}, [])
    held.links.append(TreeItem(b"120000", b"blob", b"3" * 40, 1, b"l"))
    records = [
        (b"100644", b"blob", b"1" * 40, b"a"),  # unchanged
        (b"100755", b"blob", b"2" * 40, b"b"),  # its mode alone changed
        (b"100644", b"blob", b"1" * 40, b"copy-of-a"),  # a known blob at a new path
        (b"100644", b"blob", b"4" * 40, b"new"),
        (b"100644", b"blob", b"5" * 40, b"node_modules/x"),  # excluded
        (b"120000", b"blob", b"3" * 40, b"l"),  # symlinks are always read
        (b"040000", b"tree", b"6" * 40, b"node_modules"),
    ]

    wanted = wanted_blobs(records, Manifest.of(held), frozenset({b"node_modules"}))

    assert wanted == {b"1" * 40, b"4" * 40, b"3" * 40}


def test_a_manifest_reads_back_what_was_written_and_nothing_else() -> None:
    manifest = Manifest.of(_plan({b"a": b"1" * 40}, [b"f"]))

    assert Manifest.load(manifest.dump()) == manifest
    for garbage in (b"", b"garbage", b"\x00" * 10):
        with pytest.raises(ValueError):
            Manifest.load(garbage)
