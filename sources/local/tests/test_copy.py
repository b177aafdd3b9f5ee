"""Copies into build directories: fidelity, exclusions, symlinks, odd names, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.errors import BuildFailed, Conflict, InvalidInput
from mastra_admin.core.source import ProjectSource
from mastra_admin.sources.local import LocalProjectSource
from mastra_admin.sources.local._copy import ProjectCopier, _CopyCancelledError
from mastra_admin.sources.local._patterns import NamePatterns

WriteProject = Callable[..., Path]
MakeSource = Callable[..., LocalProjectSource]


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """relative path -> (kind:content-or-link, mode, mtime_ns) for every entry."""
    found: dict[str, tuple[str, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, root)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = (f"link:{os.readlink(path)}", 0, 0)
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns)
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                found[relative] = (digest, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return found


def realpath(path: Path) -> Path:
    return Path(os.path.realpath(path))


def raw_name(folder: Path) -> bytes:
    """A file name that is not valid UTF-8, as bytes."""
    return os.fsencode(str(folder)) + b"/latin1-\xe9\xff.txt"


def write_raw(path: bytes, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def read_raw(path: bytes) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


async def only_project(source: LocalProjectSource) -> ProjectSource:
    projects = await source.list_projects()
    assert len(projects) == 1
    return projects[0]


async def test_every_file_keeps_its_content_mode_and_time(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    project = write_project(
        base / "agent",
        files={
            "src/mastra/agents/a.ts": "export const a = 1;\n",
            "big.bin": os.urandom(3 * 1024 * 1024 + 17),
            "empty": b"",
            "scripts/run.sh": "#!/bin/sh\n",
            "private.key": "not really\n",
            "readonly.txt": "ro\n",
            "locked/inner.txt": "inside a read-only folder\n",
        },
    )
    os.chmod(project / "scripts" / "run.sh", 0o755)
    os.chmod(project / "private.key", 0o600)
    os.chmod(project / "readonly.txt", 0o444)
    os.chmod(project / "scripts", 0o750)
    os.chmod(project / "locked", 0o555)
    os.utime(project / "big.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    try:
        root = await source.get_project_path(await only_project(source), builds / "b1")
        copied, original = tree(root), tree(project)
    finally:
        os.chmod(project / "locked", 0o755)
        if (builds / "b1" / "locked").exists():
            os.chmod(builds / "b1" / "locked", 0o755)

    assert copied == original
    assert copied["scripts/run.sh"][1] == 0o755
    assert copied["locked"][1] == 0o555
    assert copied["big.bin"][2] == 1_600_000_000_123_456_789


async def test_build_folders_are_left_out_at_every_depth(
    write_project: WriteProject,
    make_source: MakeSource,
    base: Path,
    builds: Path,
    relative_files: Callable[[Path], set[str]],
) -> None:
    write_project(
        base / "agent",
        files={
            "node_modules/zod/index.js": "",
            "packages/lib/node_modules/x/index.js": "",
            ".git/HEAD": "ref: refs/heads/main\n",
            "dist/index.js": "",
            ".next/build": "",
            ".mastra/output/index.mjs": "",
            "src/deep/.mastra/x": "",
            "debug.log": "",
            "src/trace.log": "",
            "coverage/index.html": "",
            "secrets/a.pem": "",
            "secrets/readme.md": "kept\n",
            ".env": "KEY=kept\n",
        },
    )
    source = make_source(base_paths=[base], copy_exclude=["*.log", "coverage", "secrets/*.pem"])

    root = await source.get_project_path(await only_project(source), builds / "b1")

    assert relative_files(root) == {
        "package.json",
        "src",
        "src/mastra",
        "src/mastra/index.ts",
        "src/deep",
        "packages",
        "packages/lib",
        "secrets",
        "secrets/readme.md",
        ".env",
    }


async def test_symlinks_inside_are_kept_and_outside_ones_skipped(
    write_project: WriteProject,
    source: LocalProjectSource,
    base: Path,
    builds: Path,
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    project = write_project(base / "agent", files={"docs/guide.md": "guide\n", "lib/x.ts": ""})
    links = {
        "readme-link": "docs/guide.md",  # relative, inside
        "docs/up.md": "../lib/x.ts",  # relative through the parent, inside
        "lib-link": "lib",  # a folder, inside: kept as a link
        "absolute-inside": str(project / "docs" / "guide.md"),
        "roundabout": "../agent/docs/guide.md",  # resolves inside, spelled via outside
        "dangling": "docs/not-yet.md",
        "deps-link": "node_modules/.bin/mastra",  # into an excluded folder
        "absolute-outside": str(outside / "secret.txt"),
        "relative-outside": "../../outside/secret.txt",
        "folder-outside": str(outside),
        "up-and-away": "..",
    }
    for name, target in links.items():
        (project / name).symlink_to(target)

    with capture_logs() as logs:
        root = await source.get_project_path(await only_project(source), builds / "b1")

    assert os.readlink(root / "readme-link") == "docs/guide.md"
    assert os.readlink(root / "docs/up.md") == "../lib/x.ts"
    assert os.readlink(root / "lib-link") == "lib"
    assert (root / "lib-link").is_symlink()
    assert os.readlink(root / "absolute-inside") == "docs/guide.md"
    assert os.readlink(root / "roundabout") == "docs/guide.md"
    assert os.readlink(root / "dangling") == "docs/not-yet.md"
    assert os.readlink(root / "deps-link") == "node_modules/.bin/mastra"
    assert (root / "absolute-inside").read_text() == "guide\n"
    for name in ("absolute-outside", "relative-outside", "folder-outside", "up-and-away"):
        assert not (root / name).is_symlink(), name
        assert not (root / name).exists(), name
    skipped = {e["path"] for e in logs if e["event"] == "source.copy.skipped"}
    assert skipped == {"absolute-outside", "relative-outside", "folder-outside", "up-and-away"}
    assert all(e["log_level"] == "warning" for e in logs if e["event"] == "source.copy.skipped")
    # Every kept link resolves inside the copy.
    for name in ("readme-link", "docs/up.md", "absolute-inside", "roundabout", "lib-link"):
        assert realpath(root / name).is_relative_to(root)


async def test_odd_file_names_are_copied(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    project = write_project(base / "agent")
    odd = [
        "with spaces.txt",
        "ünïcödé ファイル.md",
        "new\nline.txt",
        "tab\there",
        "-leading-dash",
        "quote'\"and$dollar",
        "x" * 250,
        "emoji-🚀.ts",
    ]
    for name in odd:
        (project / name).write_text(name)
    write_raw(raw_name(project), b"undecodable name\n")

    root = await source.get_project_path(await only_project(source), builds / "b1")

    for name in odd:
        assert (root / name).read_text() == name
    assert read_raw(raw_name(root)) == b"undecodable name\n"


async def test_two_copies_of_a_larger_project_at_once(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    files = {f"src/part-{i // 50}/file-{i}.ts": f"export const v{i} = {i};\n" for i in range(600)}
    project = write_project(base / "agent", files=files)
    listed = await only_project(source)

    one, two = await asyncio.gather(
        source.get_project_path(listed, builds / "one"),
        source.get_project_path(listed, builds / "two"),
    )

    expected = tree(project)
    assert tree(one) == expected
    assert tree(two) == expected


async def test_copy_stats_report_the_work(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    project = write_project(base / "agent", files={"a.txt": "12345", "node_modules/x": ""})
    (project / "link").symlink_to("a.txt")

    stats = await source.copy_project(await only_project(source), builds / "b1")

    assert stats.files == 3  # package.json, src/mastra/index.ts, a.txt
    assert stats.symlinks == 1
    assert stats.excluded == 1
    assert stats.folders == 2
    assert stats.bytes == sum(
        (project / p).stat().st_size for p in ("package.json", "src/mastra/index.ts", "a.txt")
    )


# -- the target -----------------------------------------------------------------------


async def test_a_non_empty_target_is_refused_and_left_alone(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    write_project(base / "agent")
    target = builds / "b1"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")

    with pytest.raises(Conflict):
        await source.get_project_path(await only_project(source), target)

    assert sorted(os.listdir(target)) == ["keep.txt"]


async def test_a_target_that_is_a_symlink_is_refused(
    write_project: WriteProject,
    source: LocalProjectSource,
    base: Path,
    builds: Path,
    tmp_path: Path,
) -> None:
    write_project(base / "agent")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (builds / "b1").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(InvalidInput):
        await source.get_project_path(await only_project(source), builds / "b1")

    assert os.listdir(elsewhere) == []


async def test_a_target_inside_the_project_is_refused(
    write_project: WriteProject, source: LocalProjectSource, base: Path
) -> None:
    project = write_project(base / "agent")
    listed = await only_project(source)

    with pytest.raises(InvalidInput):
        await source.get_project_path(listed, project / "build")
    with pytest.raises(InvalidInput):
        await source.get_project_path(listed, base)

    assert not (project / "build").exists()


async def test_the_returned_path_is_the_target(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    write_project(base / "agent")

    root = await source.get_project_path(await only_project(source), builds / "b1")

    assert root == realpath(builds / "b1")


# -- cancellation and failure -------------------------------------------------------


def test_a_stopped_copy_removes_what_it_wrote(tmp_path: Path) -> None:
    project = tmp_path / "agent"
    (project / "src").mkdir(parents=True)
    for i in range(200):
        (project / "src" / f"f{i}.ts").write_text("x")
    stop = threading.Event()
    stop.set()
    copier = ProjectCopier(workers=2)
    try:
        with pytest.raises(_CopyCancelledError):
            copier.copy_blocking(project, tmp_path / "build", exclude=NamePatterns([]), stop=stop)
        existing = tmp_path / "existing"
        existing.mkdir()
        with pytest.raises(_CopyCancelledError):
            copier.copy_blocking(project, existing, exclude=NamePatterns([]), stop=stop)
    finally:
        copier.close()

    assert not (tmp_path / "build").exists()
    assert os.listdir(existing) == []


async def test_cancelling_a_copy_leaves_nothing_behind(
    write_project: WriteProject, make_source: MakeSource, base: Path, builds: Path
) -> None:
    files = {f"src/d{i // 100}/f{i}.ts": "export {};\n" for i in range(6000)}
    write_project(base / "agent", files=files)
    source = make_source(base_paths=[base], copy_workers=1)
    listed = await only_project(source)
    target = builds / "b1"

    task = asyncio.ensure_future(source.get_project_path(listed, target))
    for _ in range(2000):
        if target.exists() or task.done():
            break
        await asyncio.sleep(0.001)
    assert not task.done(), "the copy finished before it could be cancelled"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not target.exists()


async def test_a_build_directory_that_cannot_be_made_is_a_copy_failure(
    write_project: WriteProject, source: LocalProjectSource, base: Path, builds: Path
) -> None:
    write_project(base / "agent")
    (builds / "a-file").write_text("not a folder\n")

    with pytest.raises(BuildFailed) as failure:
        await source.get_project_path(await only_project(source), builds / "a-file" / "b1")

    assert failure.value.step == "copy"
    assert "a-file" in failure.value.message
