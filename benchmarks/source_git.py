"""``nox -s bench -- source-git``: the git source, from a push to a build's files.

1. Incremental fetch: a repository of 5,000 files (nested folders, a few KB each, and
   a ``package.json``) served over smart HTTP by the real ``git http-backend``
   (``mastra_admin.sources.git.testing.GitHttpServer``), connected as a project of the
   ``git`` source (``GitProjectSource`` over the in-memory storage, as a build sees it).
   Each round adds a one-file commit, then times what the platform does for a build:
   ``pin(source, "main")`` (the fetch) + ``get_project_path(pinned, <fresh build
   folder>)`` (the export), with the cache holding the previous commit, against
   ``git clone --no-local`` of the same URL (a full clone, as a build without a cache
   would do it), alternating which goes first; median of five each. Goal: the
   incremental path at least 5x faster. The export is made from the spare (a pristine
   export of the previous commit kept in the cache, see ``mastra_admin.sources.git._spare``):
   the source prepares it in the background after handing out a build folder, and the
   benchmark lets that preparation finish before the next round (and before timing the
   clone), as it has in production, where builds are minutes apart. The first fetch +
   export by a worker whose cache is empty, the bytes the server sent and the export's
   phases (from its ``git.export.finished`` log events) are shown too. A VARIANT,
   printed and labelled apart and not judged against the goal, repeats the comparison
   (median of three) on the same files with 1,000 commits of history before them (three
   files edited each, repacked as a host would): a clone takes the history along, the
   shallow fetch does not.
2. Webhook received -> build queued: ``mastra-admin serve`` (embedded PostgreSQL, the
   ``git`` source, no build workers so queued builds stay queued) with a project whose
   production deployment follows ``main``; 200 signed GitHub push deliveries (distinct
   delivery ids and commit ids) to ``POST /api/webhooks/git``, each answered once its
   build is stored as queued, interleaved with as many ``GET /api/me`` as the
   reference. p50 and p95 in ms; goal p95 <= 100 ms.

Run alone: ``python -m benchmarks source-git``. ``SOURCE_GIT_BENCH_DIR`` names the
folder to work in (default: the system's temporary folder); a tmpfs there (``/dev/shm``)
takes the disk out of both sides, which on a slow or busy disk dominates the writing of
5,000 files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import structlog

from benchmarks._report import Figure
from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.models import Project, Team
from mastra_admin.core.source import ProjectSource
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.sources.git import GitProjectSource, GitSourceSettings
from mastra_admin.sources.git.testing import GitHttpServer, commit, make_repository

BENCH = "source-git"
FILES = 5_000
ROUNDS = 5
WEBHOOKS = 200
WARM_UP = 10
HISTORY_COMMITS = 1_000
HISTORY_FILES_PER_COMMIT = 3
HISTORY_ROUNDS = 3
WORDS = (
    "const", "let", "return", "await", "async", "import", "export", "from", "function",
    "agent", "tool", "memory", "workflow", "step", "input", "output", "schema", "string",
    "number", "boolean", "true", "false", "null", "if", "else", "for", "while", "map",
    "filter", "reduce", "promise", "resolve", "reject", "error", "throw", "new", "class",
)  # fmt: skip


# --- 1. incremental fetch ---------------------------------------------------------------


def repository_files(seed: int = 7) -> dict[str, str]:
    """``FILES`` files: a ``package.json`` and source files of 1 to 6 KB in nested
    folders (``src/<area>/<module>/<part>/file-<n>.ts``, 20 files a folder)."""
    rng = random.Random(seed)
    files: dict[str, str] = {
        "package.json": json.dumps(
            {
                "name": "big-agent",
                "version": "1.0.0",
                "type": "module",
                "scripts": {"build": "mastra build"},
                "dependencies": {"@mastra/core": "^0.10.5", "zod": "^3.23.0"},
            },
            indent=2,
        )
    }
    for n in range(FILES - 1):
        folder = n // 20
        path = f"src/area-{folder // 50}/module-{folder // 10 % 5}/part-{folder}/file-{n}.ts"
        size = rng.randrange(1_000, 6_000)
        lines: list[str] = [f"// {path}"]
        length = len(lines[0])
        while length < size:
            line = " ".join(rng.choices(WORDS, k=rng.randrange(4, 12))) + ";"
            lines.append(line)
            length += len(line) + 1
        files[path] = "\n".join(lines) + "\n"
    return files


def _clean_git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


def _clone_s(url: str, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["git", "clone", "--no-local", "--quiet", url, str(target)],
        env=_clean_git_env(),
        check=True,
        timeout=600,
    )
    return time.perf_counter() - started


class _Projects:
    """``GitProjectSource``s over one in-memory storage (a worker each: its own cache),
    and projects connected and stored as the platform does on create."""

    def __init__(self, work: Path, settings: GitSourceSettings) -> None:
        self.work = work
        self.settings = settings
        self.storage = InMemoryAdminStorage()
        self.encryption = AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k1")
        self.sources: list[GitProjectSource] = []
        self.team = ""
        self.cache_keys: dict[str, str] = {}

    def source(self, name: str) -> GitProjectSource:
        made = GitProjectSource(
            self.settings,
            storage=self.storage,
            encryption=self.encryption,
            cache_dir=self.work / name,
        )
        self.sources.append(made)
        return made

    async def connect(self, source: GitProjectSource, url: str) -> ProjectSource:
        if not self.team:
            await self.storage.init()
            self.team = (await self.storage.teams.create(Team(name="Bench", slug="bench"))).id
        connection = await source.connect(self.team, {"url": url}, default_branch="main")
        made = connection.source
        project = await self.storage.projects.create(
            Project(
                team_id=self.team,
                name=made.name,
                slug=f"{made.name}-{secrets.token_hex(3)}".lower(),
                source_type="git",
                source_config={
                    **connection.config,
                    "source_id": made.id,
                    "path": made.path,
                    "name": made.name,
                    "package_manager": made.package_manager,
                },
                default_branch="main",
            )
        )
        self.cache_keys[made.id] = str(connection.config["cache_key"])
        return await source.source_for(project)

    def repository(self, source: GitProjectSource, project: ProjectSource) -> Path:
        """The cached repository of ``project`` in ``source``'s cache."""
        return source.cache.path_for(self.cache_keys[project.id])

    async def close(self) -> None:
        for source in self.sources:
            await source.close()
        await self.storage.close()


async def _pin_export_s(
    source: GitProjectSource, project: ProjectSource, target: Path, expected: str
) -> tuple[float, float]:
    """Seconds of ``pin`` (the fetch) and of ``get_project_path`` (the export), as a build
    runs them; then the spare for the next round is left to finish, untimed."""
    started = time.perf_counter()
    pinned, revision = await source.pin(project, "main")
    middle = time.perf_counter()
    await source.get_project_path(pinned, target)
    ended = time.perf_counter()
    if revision.sha != expected:
        raise RuntimeError(f"pinned {revision.sha}, expected {expected}")
    await source.cache.wait_for_spares()
    return middle - started, ended - middle


def _archive_tar_s(repository: Path, sha: str, target: Path) -> float:
    """``git archive <sha> | tar -x``: the same files written by git and tar."""
    target.mkdir()
    started = time.perf_counter()
    archive = subprocess.Popen(
        ["git", "--git-dir", str(repository), "archive", "--format=tar", sha],
        env=_clean_git_env(),
        stdout=subprocess.PIPE,
    )
    assert archive.stdout is not None
    subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise RuntimeError("git archive failed")
    return time.perf_counter() - started


def _count_files(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))


async def _incremental_figures(work: Path) -> list[Figure]:
    files = repository_files()
    size_mb = sum(len(v) for v in files.values()) / 1e6
    settings = GitSourceSettings(
        allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True
    )
    builds = work / "builds"
    builds.mkdir()
    projects = _Projects(work, settings)
    try:
        with GitHttpServer(work / "served") as server:
            repo = await asyncio.to_thread(make_repository, server.root, "app", files)
            clone = functools.partial(_clone_s, server.url("app"))
            head = await asyncio.to_thread(_git_head, repo)

            # The first fetch + export of a worker with an empty cache, beside the first
            # clone; both warm the page cache.
            worker = projects.source("cache-cold")
            source = projects.source("cache")
            project = await projects.connect(source, server.url("app"))
            sent = server.pack_bytes()
            cold = sum(await _pin_export_s(worker, project, builds / "first", head))
            cold_bytes = server.pack_bytes() - sent
            exported = _count_files(builds / "first")
            if exported != FILES:
                raise RuntimeError(f"the export holds {exported} files, expected {FILES}")
            sent = server.pack_bytes()
            clone_cold = await asyncio.to_thread(clone, builds / "clone")
            clone_bytes = server.pack_bytes() - sent
            await worker.close()
            # The project's own cache: its first build (a full export, then its spare).
            await _pin_export_s(source, project, builds / "warm", head)
            for name in ("first", "clone", "warm"):
                shutil.rmtree(builds / name)
            repository = projects.repository(source, project)

            _EXPORT_LOGS.clear()
            _SPARE_LOGS.clear()
            fetches: list[float] = []
            exports: list[float] = []
            clones: list[float] = []
            tars: list[float] = []
            sizes: list[int] = []
            for n in range(ROUNDS):
                path = f"src/area-0/module-0/part-0/file-{n}.ts"
                sha = await asyncio.to_thread(
                    commit, repo, {path: f"export const round = {n};\n"}, f"round {n}"
                )
                target = builds / f"ours-{n}"
                if n % 2:  # alternate which goes first
                    os.sync()
                    clones.append(await asyncio.to_thread(clone, builds / f"clone-{n}"))
                os.sync()
                sent = server.pack_bytes()
                fetch_s, export_s = await _pin_export_s(source, project, target, sha)
                sizes.append(server.pack_bytes() - sent)
                fetches.append(fetch_s)
                exports.append(export_s)
                if not n % 2:
                    os.sync()
                    clones.append(await asyncio.to_thread(clone, builds / f"clone-{n}"))
                if (target / path).read_text() != f"export const round = {n};\n":
                    raise RuntimeError("the export does not hold the new commit")
                if _count_files(target) != FILES:
                    raise RuntimeError("the export does not hold every file")
                os.sync()
                tars.append(
                    await asyncio.to_thread(_archive_tar_s, repository, sha, builds / f"tar-{n}")
                )
                for done in (target, builds / f"clone-{n}", builds / f"tar-{n}"):
                    shutil.rmtree(done)

            timed = _EXPORT_LOGS[-ROUNDS:]
            from_spare = sum(1 for event in timed if event.get("spare"))
            phases = ", ".join(
                f"{label} {median(float(e[key]) for e in timed) * 1000:.1f}"
                for key, label in _PHASES
            )
            written = median(int(e.get("written", e.get("files", 0))) for e in timed)
            spare_s = median(float(e["seconds"]) for e in _SPARE_LOGS[:ROUNDS])
            history = await _history_variant(server, projects, builds)
    finally:
        await projects.close()

    ours = [f + e for f, e in zip(fetches, exports, strict=True)]
    ours_ms, clone_ms = median(ours) * 1000, median(clones) * 1000
    speedup = clone_ms / ours_ms
    history_ms, history_clone_ms, history_mb = history
    print(
        f"  incremental pin (fetch) + get_project_path (export) {ours_ms:.0f} ms, git clone "
        f"{clone_ms:.0f} ms: clone / incremental = {speedup:.2f}x (goal >= 5x)\n"
        f"    rounds (ms): fetch {_ms(fetches)}, export {_ms(exports)}, "
        f"clone {_ms(clones)}, git archive | tar -x {_ms(tars)}\n"
        f"    exports made from the spare: {from_spare} of {ROUNDS} (files written: "
        f"{written:.0f}); the spare of each round was prepared in the background after "
        "the previous build folder was handed out and left to finish before the round "
        f"(in production builds are minutes apart): {spare_s * 1000:.0f} ms each (median; "
        "a full export with one checkout-index process, off the timed path)\n"
        f"    export phases (median ms, from git.export.finished): {phases}\n"
        f"  VARIANT, not the goal's figure — the same repository with {HISTORY_COMMITS:,} "
        f"commits of history ({HISTORY_FILES_PER_COMMIT} files changed each, "
        f"{history_mb:.1f} MB packed): incremental fetch + export {history_ms:.0f} ms, "
        f"git clone {history_clone_ms:.0f} ms: clone / incremental = "
        f"{history_clone_ms / history_ms:.2f}x (median of {HISTORY_ROUNDS})",
        flush=True,
    )
    repo_label = f"{FILES:,} files, {size_mb:.0f} MB"
    return [
        Figure(
            BENCH,
            f"pin + get_project_path after a one-file commit, export from the spare "
            f"({repo_label}; median of {ROUNDS})",
            ours_ms,
            "ms",
            reference=clone_ms,
            reference_label="git clone --no-local, same HTTP server",
            goal="clone / incremental >= 5x",
            met=speedup >= 5.0,
        ),
        Figure(
            BENCH,
            "fetch alone (median)",
            median(fetches) * 1000,
            "ms",
        ),
        Figure(
            BENCH,
            "export alone (median)",
            median(exports) * 1000,
            "ms",
            reference=median(tars) * 1000,
            reference_label="git archive | tar -x, same commit",
        ),
        Figure(
            BENCH,
            "bytes sent for the incremental fetch (median)",
            float(median(sizes)),
            "B",
            reference=float(clone_bytes),
            reference_label="full clone",
        ),
        Figure(
            BENCH,
            "first pin + get_project_path, empty cache",
            cold * 1000,
            "ms",
            reference=clone_cold * 1000,
            reference_label="first git clone",
        ),
        Figure(
            BENCH,
            "bytes sent for the first fetch",
            float(cold_bytes),
            "B",
            reference=float(clone_bytes),
            reference_label="full clone",
        ),
        Figure(
            BENCH,
            f"VARIANT (not the goal's figure): pin + get_project_path after a one-file commit, the "
            f"same files with {HISTORY_COMMITS:,} commits of history (median of "
            f"{HISTORY_ROUNDS})",
            history_ms,
            "ms",
            reference=history_clone_ms,
            reference_label="git clone --no-local of that repository",
        ),
    ]


def _add_history(repo: Path, files: dict[str, str], seed: int = 11) -> None:
    """``HISTORY_COMMITS`` commits on ``main`` of ``repo`` before its current tip, each
    editing ``HISTORY_FILES_PER_COMMIT`` files (a line changed, a line added), written by
    one ``git fast-import``; then a full repack, as a host keeps its repositories."""
    rng = random.Random(seed)
    current = dict(files)
    paths = sorted(p for p in files if p != "package.json")
    stream = bytearray()
    start = int(time.time()) - HISTORY_COMMITS * 3600
    for n in range(HISTORY_COMMITS):
        who = f"Dev <dev@example.com> {start + n * 3600} +0000".encode()
        message = f"change {n}".encode()
        stream += b"commit refs/heads/main\nauthor " + who + b"\ncommitter " + who + b"\n"
        stream += b"data %d\n" % len(message) + message + b"\n"
        if n == 0:
            stream += b"from refs/heads/main^0\n"
        for path in rng.sample(paths, HISTORY_FILES_PER_COMMIT):
            lines = current[path].split("\n")
            at = rng.randrange(1, len(lines))
            lines[at] = " ".join(rng.choices(WORDS, k=rng.randrange(4, 12))) + ";"
            lines.insert(at, f"// change {n}")
            current[path] = "\n".join(lines)
            data = current[path].encode()
            stream += b"M 100644 inline " + path.encode() + b"\n"
            stream += b"data %d\n" % len(data) + data + b"\n"
    for args in (["fast-import", "--quiet"], ["repack", "-a", "-d", "-f", "-q"]):
        subprocess.run(
            ["git", "--git-dir", str(repo), *args],
            input=bytes(stream) if args[0] == "fast-import" else None,
            env=_clean_git_env(),
            check=True,
            timeout=600,
        )


async def _history_variant(
    server: GitHttpServer, projects: _Projects, builds: Path
) -> tuple[float, float, float]:
    """The incremental path and ``git clone`` again, on a repository with history: the
    clone takes the history along, the shallow fetch does not. Milliseconds of each
    (medians) and the served pack's size in MB."""
    files = repository_files()
    repo = await asyncio.to_thread(make_repository, server.root, "history", files)
    await asyncio.to_thread(_add_history, repo, files)
    packed = sum(p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack")) / 1e6
    source = projects.source("history-cache")
    project = await projects.connect(source, server.url("history"))
    clone = functools.partial(_clone_s, server.url("history"))
    head = await asyncio.to_thread(_git_head, repo)
    await _pin_export_s(source, project, builds / "history-first", head)
    await asyncio.to_thread(clone, builds / "history-clone")
    shutil.rmtree(builds / "history-first")
    shutil.rmtree(builds / "history-clone")
    ours: list[float] = []
    clones: list[float] = []
    for n in range(HISTORY_ROUNDS):
        path = f"src/area-1/module-0/part-50/file-{1000 + n}.ts"
        sha = await asyncio.to_thread(
            commit, repo, {path: f"export const round = {n};\n"}, f"round {n}"
        )
        target, cloned = builds / f"history-{n}", builds / f"history-clone-{n}"
        if n % 2:
            os.sync()
            clones.append(await asyncio.to_thread(clone, cloned))
        os.sync()
        ours.append(sum(await _pin_export_s(source, project, target, sha)))
        if not n % 2:
            os.sync()
            clones.append(await asyncio.to_thread(clone, cloned))
        if (target / path).read_text() != f"export const round = {n};\n":
            raise RuntimeError("the export does not hold the new commit")
        for done in (target, cloned):
            shutil.rmtree(done)
    return median(ours) * 1000, median(clones) * 1000, packed


def _ms(seconds: list[float]) -> list[int]:
    return [round(s * 1000) for s in seconds]


def _git_head(repo: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "refs/heads/main"],
        env=_clean_git_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# --- 2. webhook -> build queued -----------------------------------------------------------

CONFIG = textwrap.dedent(
    """
    [builds]
    workers = 0

    [source]
    provider = "git"
    allow_insecure_http_hosts = ["127.0.0.1"]
    allow_private_addresses = true
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class _Platform:
    """``mastra-admin serve`` in ``root/data`` with ``CONFIG``, as an operator runs it
    (see ``tests/_platform.py``): free ports, the bootstrap token read from its output."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.output: list[str] = []
        self.token = ""
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        (self.root / "mastra-admin.toml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MASTRA_ADMIN_")}
        for alias in ("DATABASE_URL", "CLICKHOUSE_URL", "PROJECTS_DIR", "FILE_STORAGE_PATH"):
            env.pop(alias, None)
        for alias in ("ADMIN_PORT", "PROXY_PORT"):
            env.pop(alias, None)
        first = random.randrange(21000, 29000, 100)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "MASTRA_ADMIN_CONFIG": str(self.root / "mastra-admin.toml"),
                "MASTRA_ADMIN_DATA_DIR": str(self.root / "data"),
                "MASTRA_ADMIN_PORT": str(self.port),
                "MASTRA_ADMIN_COLLECTOR_PORT": str(_free_port()),
                "MASTRA_ADMIN_ROUTER__PORT": str(_free_port()),
                "MASTRA_ADMIN_RUNNER__PORT_RANGE_START": str(first),
                "MASTRA_ADMIN_RUNNER__PORT_RANGE_END": str(first + 99),
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mastra_admin.server", "serve"],
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mastra-admin serve did not start:\n{self.tail()}")
        found = re.search(r"^\s+(mat_\S+)\s*$", "".join(self.output), re.M)
        if not found:
            raise RuntimeError(f"no bootstrap token printed:\n{self.tail()}")
        self.token = found.group(1)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if "Press Ctrl+C to stop." in line:
                self._ready.set()

    def tail(self, lines: int = 60) -> str:
        return "".join(self.output[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def _platform(root: Path) -> Iterator[_Platform]:
    platform = _Platform(root)
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()
        _stop_embedded_postgres(root)


def _stop_embedded_postgres(root: Path) -> None:
    """An embedded PostgreSQL left running (the platform killed) is stopped."""
    for pid_file in root.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGINT)


def _call(client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    response = client.request(method, path, json=body)
    if not response.is_success:
        raise RuntimeError(f"{method} {path} -> {response.status_code} {response.text[:2000]}")
    return response.json() if response.content else None


def push_delivery(
    clone_url: str, secret: str, before: str, after: str, n: int
) -> tuple[dict[str, str], bytes]:
    """A GitHub ``push`` delivery of ``after`` on ``main``: headers and the raw body."""
    payload = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "compare": f"{clone_url.removesuffix('.git')}/compare/{before[:12]}...{after[:12]}",
        "head_commit": {
            "id": after,
            "tree_id": hashlib.sha1(after.encode()).hexdigest(),
            "message": f"change {n}",
            "timestamp": "2026-12-07T14:00:00Z",
            "author": {"name": "Bench", "email": "bench@example.com", "username": "bench"},
            "committer": {"name": "Bench", "email": "bench@example.com", "username": "bench"},
            "added": [],
            "removed": [],
            "modified": ["src/mastra/index.ts"],
        },
        "commits": [],
        "repository": {
            "id": 1,
            "name": "app",
            "full_name": "bench/app",
            "clone_url": clone_url,
            "default_branch": "main",
        },
        "pusher": {"name": "bench", "email": "bench@example.com"},
        "sender": {"login": "bench", "id": 1},
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return headers, body


def _webhook_figures(work: Path) -> list[Figure]:
    secret = secrets.token_hex(20)
    root = work / "platform"
    root.mkdir()
    root.chmod(0o755)  # as root the embedded PostgreSQL runs as a user who must enter it
    work.chmod(0o755)
    with GitHttpServer(work / "webhook-served") as server:
        make_repository(
            server.root,
            "app",
            {
                "package.json": json.dumps(
                    {"name": "agent", "dependencies": {"@mastra/core": "^0.10.5"}}
                ),
                "src/mastra/index.ts": "export const mastra = {};\n",
            },
        )
        clone_url = server.url("app")
        with _platform(root) as platform:
            auth = {"Authorization": f"Bearer {platform.token}"}
            with httpx.Client(base_url=platform.url, headers=auth, timeout=30) as api:
                team = _call(api, "POST", "/api/teams", {"name": "Bench"})
                project = _call(
                    api,
                    "POST",
                    f"/api/teams/{team['id']}/projects",
                    {
                        "name": "agent",
                        "source_type": "git",
                        "source": {"url": clone_url, "webhook_secret": secret},
                        "default_branch": "main",
                    },
                )
                _call(
                    api,
                    "POST",
                    f"/api/projects/{project['id']}/deployments",
                    {"type": "production"},
                )
            hooks: list[float] = []
            reads: list[float] = []
            outcomes: dict[str, int] = {}
            builds: list[str] = []
            finally_: dict[str, int] = {}
            with (
                httpx.Client(base_url=platform.url, timeout=30) as hook_client,
                httpx.Client(base_url=platform.url, headers=auth, timeout=30) as api,
            ):
                before = "0" * 40
                for n in range(WARM_UP + WEBHOOKS):
                    after = hashlib.sha1(f"bench-{n}-{secret}".encode()).hexdigest()
                    headers, body = push_delivery(clone_url, secret, before, after, n)
                    before = after
                    started = time.perf_counter()
                    response = hook_client.post("/api/webhooks/git", content=body, headers=headers)
                    took = (time.perf_counter() - started) * 1000
                    if response.status_code != 202:
                        raise RuntimeError(
                            f"webhook {n} -> {response.status_code} {response.text[:2000]}"
                        )
                    answer = response.json()
                    outcome = str(answer.get("outcome"))
                    started = time.perf_counter()
                    me = api.get("/api/me")
                    read = (time.perf_counter() - started) * 1000
                    if me.status_code != 200:
                        raise RuntimeError(f"GET /api/me -> {me.status_code} {me.text[:500]}")
                    # Answered: the build is stored as queued, for this commit.
                    for build_id in answer.get("builds") or []:
                        build = _call(api, "GET", f"/api/builds/{build_id}")
                        if build["status"] != "queued":
                            raise RuntimeError(f"build {build_id} is {build['status']}")
                        if after not in json.dumps(build):
                            raise RuntimeError(f"build {build_id} does not name {after}: {build}")
                    if n < WARM_UP:
                        continue
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    builds += list(answer.get("builds") or [])
                    hooks.append(took)
                    reads.append(read)
                # A newer push may supersede a build still queued: what became of them.
                for build_id in builds:
                    status = _call(api, "GET", f"/api/builds/{build_id}")["status"]
                    finally_[status] = finally_.get(status, 0) + 1

    p50, p95 = _percentile(hooks, 50), _percentile(hooks, 95)
    ref50, ref95 = _percentile(reads, 50), _percentile(reads, 95)
    print(
        f"  webhook -> queued p50 {p50:.1f} ms p95 {p95:.1f} ms; GET /api/me p50 {ref50:.1f} "
        f"ms p95 {ref95:.1f} ms; p95 ratio {p95 / ref95:.1f}x; outcomes {outcomes}; "
        f"{len(builds)} builds, at the end {finally_}",
        flush=True,
    )
    queued = outcomes.get("queued", 0)
    return [
        Figure(
            BENCH,
            f"webhook received -> build queued p95 ({WEBHOOKS} pushes)",
            p95,
            "ms",
            reference=ref95,
            reference_label="GET /api/me p95",
            goal="<= 100 ms",
            met=p95 <= 100.0 and queued == WEBHOOKS,
        ),
        Figure(
            BENCH,
            "webhook received -> build queued p50",
            p50,
            "ms",
            reference=ref50,
            reference_label="GET /api/me p50",
        ),
        Figure(BENCH, "webhooks answered queued", float(queued), "count"),
    ]


# --- both ---------------------------------------------------------------------------------


_EXPORT_LOGS: list[dict[str, Any]] = []
_SPARE_LOGS: list[dict[str, Any]] = []
_PHASES = (
    ("list_s", "git ls-tree (and the spare's manifest)"),
    ("plan_s", "git cat-file of the changed files, checks and plan"),
    ("checkout_s", "writing the changes (full export: git checkout-index)"),
    ("check_s", "symlinks, the walk that checks the result, the rename"),
)


def _keep_export_logs(_logger: Any, method: str, event: Any) -> Any:
    """Keeps the ``git.export.finished`` events (their phase timings) and the
    ``git.spare.ready`` ones; lets warnings and errors through, drops the rest."""
    if event.get("event") == "git.export.finished":
        _EXPORT_LOGS.append(dict(event))
    elif event.get("event") == "git.spare.ready":
        _SPARE_LOGS.append(dict(event))
    if method in ("debug", "info"):
        raise structlog.DropEvent
    return event


async def _incremental(work: Path) -> list[Figure]:
    saved = structlog.get_config()
    structlog.configure(
        processors=[_keep_export_logs, *saved["processors"]],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        return await _incremental_figures(work)
    finally:
        structlog.configure(**saved)


def run() -> list[Figure]:
    parent = os.environ.get("SOURCE_GIT_BENCH_DIR") or None
    work = Path(tempfile.mkdtemp(prefix="mastra-admin-bench-git-", dir=parent))
    try:
        return [*asyncio.run(_incremental(work)), *_webhook_figures(work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    from benchmarks._report import markdown

    print(markdown(run()))
