"""The local project source: scanning a tree of folders, and copying a project.

Scan: a tree of 2,000 folders holding 50 Mastra projects (each with a small
``node_modules``) and plain Node packages, scanned by a fresh ``LocalProjectSource``
(no listing cache). *Cold* drops the kernel's dentry and inode caches first when this
process may (root on Linux), otherwise it is the first scan after the tree was
written; *warm* is the median of repeated scans. ``find`` with the same pruning is
the reference. The cached listing is shown too.

Copy: a project of 5,000 files in 250 folders (about 25 MB) copied by
``get_project_path`` into a fresh build directory, against ``cp -a`` of the same tree
in the same run, alternating, median of five each. Figures are files per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import structlog

from benchmarks._report import Figure
from mastra_admin.sources.local import LocalProjectSource

BENCH = "source"
SCAN_FOLDERS = 2_000
SCAN_PROJECTS = 50
COPY_FILES = 5_000
COPY_FOLDERS = 250
FILE_SIZES = (300, 1_200, 4_000, 16_000, 700, 2_500, 9_000, 500, 3_000, 6_000)
ROUNDS = 5


def _package(name: str, *, mastra: bool) -> str:
    deps = {"@mastra/core": "^0.10.5", "zod": "^3.23.0"} if mastra else {"lodash": "^4"}
    return json.dumps({"name": name, "version": "1.0.0", "dependencies": deps}, indent=2)


def build_scan_tree(base: Path) -> int:
    """Write the scan tree; returns how many folders it holds (``base`` excluded)."""
    folders = 0

    def mkdir(path: Path) -> Path:
        nonlocal folders
        path.mkdir(parents=False)
        folders += 1
        return path

    teams: list[Path] = []
    for g in range(10):
        group = mkdir(base / f"group-{g}")
        teams += [mkdir(group / f"team-{t}") for t in range(10)]
    for index, team in enumerate(teams[:SCAN_PROJECTS]):
        agent = mkdir(team / "agent")
        (agent / "package.json").write_text(_package(f"agent-{index}", mastra=True))
        (agent / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n")
        for sub in ("src", "src/mastra", "src/mastra/agents", "src/mastra/tools"):
            mkdir(agent / sub)
        (agent / "src/mastra/index.ts").write_text("export const mastra = {};\n")
        for dep in ("node_modules", "node_modules/@mastra", "node_modules/@mastra/core"):
            mkdir(agent / dep)
        (agent / "node_modules/@mastra/core/package.json").write_text("{}")
    # Plain Node packages and deeper folders fill the tree up to SCAN_FOLDERS.
    filler = teams[SCAN_PROJECTS:]
    round_ = 0
    while folders < SCAN_FOLDERS:
        for team in filler:
            if folders >= SCAN_FOLDERS:
                break
            lib = mkdir(team / f"lib-{round_}")
            (lib / "package.json").write_text(_package(f"lib-{round_}", mastra=False))
            depth = lib
            for level in range(3):
                if folders >= SCAN_FOLDERS:
                    break
                depth = mkdir(depth / f"level-{level}")
        round_ += 1
    return folders


def build_copy_project(root: Path) -> int:
    """Write the copy project; returns its size in bytes."""
    root.mkdir()
    (root / "package.json").write_text(_package("big-agent", mastra=True))
    total = 0
    per_folder = COPY_FILES // COPY_FOLDERS
    written = 1
    total += (root / "package.json").stat().st_size
    for d in range(COPY_FOLDERS):
        folder = root / "src" / f"module-{d // 25}" / f"part-{d}"
        folder.mkdir(parents=True)
        for f in range(per_folder):
            if written >= COPY_FILES:
                break
            size = FILE_SIZES[(d * per_folder + f) % len(FILE_SIZES)]
            if (d * per_folder + f) % 50 == 0:
                size = 64_000
            data = (f"// file {d}/{f}\n" * (size // 14 + 1)).encode()[:size]
            (folder / f"file-{f}.ts").write_bytes(data)
            total += size
            written += 1
    (root / "scripts").mkdir()
    (root / "scripts" / "start.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "scripts" / "start.sh", 0o755)
    return total


def _drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("2\n")
    except OSError:
        return False
    return True


def _find_ms(base: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "find", str(base), "-maxdepth", "4",
            "(", "-name", "node_modules", "-o", "-name", ".*", "-o", "-name", "dist", ")",
            "-prune", "-o", "-name", "package.json", "-print",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return (time.perf_counter() - started) * 1000


async def _scan_ms(base: Path) -> tuple[float, int]:
    source = LocalProjectSource(base_paths=[base])
    try:
        started = time.perf_counter()
        projects = await source.list_projects()
        return (time.perf_counter() - started) * 1000, len(projects)
    finally:
        await source.close()


async def _scan_figures(work: Path) -> list[Figure]:
    base = work / "scan"
    base.mkdir()
    folders = build_scan_tree(base)

    dropped = _drop_caches()
    cold_ms, found = await _scan_ms(base)
    if found != SCAN_PROJECTS:
        raise RuntimeError(f"scan found {found} projects, expected {SCAN_PROJECTS}")
    if dropped:
        _drop_caches()
    cold_find = _find_ms(base)

    warm = [await _scan_ms(base) for _ in range(15)]
    warm_ms = statistics.median(ms for ms, _ in warm)
    warm_find = statistics.median(_find_ms(base) for _ in range(15))

    source = LocalProjectSource(base_paths=[base])
    try:
        await source.list_projects()
        cached: list[float] = []
        for _ in range(200):
            started = time.perf_counter()
            await source.list_projects()
            cached.append((time.perf_counter() - started) * 1000)
    finally:
        await source.close()

    label = "caches dropped" if dropped else "first scan, OS caches not dropped"
    tree = f"{folders:,} folders, {SCAN_PROJECTS} projects"
    return [
        Figure(
            BENCH,
            f"scan cold ({tree}; {label})",
            cold_ms,
            "ms",
            reference=cold_find,
            reference_label="find, same pruning",
        ),
        Figure(
            BENCH,
            f"scan warm ({tree})",
            warm_ms,
            "ms",
            reference=warm_find,
            reference_label="find, same pruning",
            goal="<= 200 ms",
            met=warm_ms <= 200,
        ),
        Figure(BENCH, "list_projects from the cache", statistics.median(cached), "ms"),
    ]


def _cp_seconds(root: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-a", str(root), str(target)], check=True)
    return time.perf_counter() - started


async def _copy_figures(work: Path) -> list[Figure]:
    root = work / "copy" / "big-agent"
    root.parent.mkdir()
    size = build_copy_project(root)
    builds = work / "builds"
    builds.mkdir()
    source = LocalProjectSource(base_paths=[root.parent])
    ours: list[float] = []
    theirs: list[float] = []
    try:
        (project,) = await source.list_projects()
        # One untimed round of each warms the page cache for both.
        await source.get_project_path(project, builds / "warm-ours")
        _cp_seconds(root, builds / "warm-cp")
        for round_ in range(ROUNDS):
            theirs.append(_cp_seconds(root, builds / f"cp-{round_}"))
            started = time.perf_counter()
            await source.get_project_path(project, builds / f"ours-{round_}")
            ours.append(time.perf_counter() - started)
            shutil.rmtree(builds / f"cp-{round_}")
            shutil.rmtree(builds / f"ours-{round_}")
    finally:
        await source.close()
    files = COPY_FILES + 1  # and scripts/start.sh
    ours_rate = files / statistics.median(ours)
    cp_rate = files / statistics.median(theirs)
    return [
        Figure(
            BENCH,
            f"copy a project ({files:,} files, {size / 1e6:.0f} MB)",
            ours_rate,
            "files/s",
            reference=cp_rate,
            reference_label="cp -a",
            goal=">= 0.5x cp -a",
            met=ours_rate >= 0.5 * cp_rate,
        ),
        Figure(
            BENCH,
            "copy a project: wall time",
            statistics.median(ours) * 1000,
            "ms",
            reference=statistics.median(theirs) * 1000,
            reference_label="cp -a",
        ),
    ]


async def _run() -> list[Figure]:
    work = Path(tempfile.mkdtemp(prefix="mastra-bench-source-"))
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        return [*await _scan_figures(work), *await _copy_figures(work)]
    finally:
        structlog.configure(**saved)
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


def run() -> list[Figure]:
    return asyncio.run(_run())
