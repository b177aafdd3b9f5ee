"""``nox -s bench -- runner-docker``: what the Docker runner costs.

1. Deploy to healthy: copy, install, build, image, container, first healthy answer,
   for the fixture project, through ``DockerRunner`` and as a person would do it by
   hand (``docker build`` of a one-stage Dockerfile, ``docker run``, the same health
   probe), alternating, in one run. Goal: the runner adds at most 1 s.
2. The package manager's cache: a project depending on the real ``@mastra/core``
   from the npm registry, built with a cold cache (a project of its own, so an empty
   cache volume) and then again with its lock file unchanged. Goal: the warm rebuild
   is at least 3x faster than the cold build.

Both need a Docker Engine; the base image is built locally
(``mastra_admin.runners.docker.testing``), as in the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._report import Figure
from mastra_admin.core.build_steps import probe
from mastra_admin.core.models import ProjectSettings
from mastra_admin.core.testing.projects import CORE_VERSION, write_mastra_project
from mastra_admin.core.testing.runner import FolderCopySource, LogCollector, make_build_context
from mastra_admin.runners.docker import DockerRunner, DockerRunnerSettings
from mastra_admin.runners.docker.testing import build_node_base_image

ROUNDS = 3
REPOSITORY = "mastra-admin-bench/build"
_DOCKERFILE = """FROM {base}
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund --include=dev && npm exec --no -- mastra build
USER 1000:1000
CMD ["node", ".mastra/output/index.mjs"]
"""


def _docker(*args: str) -> str:
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return result.stdout.strip()


async def _healthy(port: int) -> None:
    while await probe("127.0.0.1", port, "/health", timeout_s=2.0) != 200:
        await asyncio.sleep(0.05)


async def _by_hand(project: Path, base: str, work: Path, n: int) -> float:
    """``docker build`` + ``docker run`` until healthy, as a person would."""
    context = work / f"hand-{n}"
    started = time.perf_counter()
    shutil.copytree(project, context, ignore=shutil.ignore_patterns("node_modules", ".mastra"))
    (context / "Dockerfile").write_text(_DOCKERFILE.format(base=base))
    tag = f"{REPOSITORY}:hand-{n}"
    await asyncio.to_thread(_docker, "build", "-q", "--no-cache", "-t", tag, str(context))
    container = await asyncio.to_thread(
        _docker,
        "run",
        "-d",
        "-p",
        "127.0.0.1::4111",
        "-e",
        "PORT=4111",
        "-e",
        "MASTRA_HOST=0.0.0.0",
        tag,
    )
    port = int((await asyncio.to_thread(_docker, "port", container, "4111/tcp")).rsplit(":", 1)[1])
    await _healthy(port)
    took = time.perf_counter() - started
    await asyncio.to_thread(_docker, "rm", "-f", container)
    await asyncio.to_thread(_docker, "rmi", "-f", tag)
    return took


_STATS: list[float] = []
_ENGINE_STATS: list[float] = []


async def _through_runner(runner: DockerRunner, project: Path) -> float:
    ctx = make_build_context(project)
    log = LogCollector()
    started = time.perf_counter()
    artifact = await runner.build(ctx, log)
    server = await runner.start(ctx, artifact, log)
    took = time.perf_counter() - started
    await asyncio.sleep(1.5)  # the engine's first samples
    for _ in range(5):  # what a health round pays per server
        began = time.perf_counter()
        await runner.stats(server)
        _STATS.append(time.perf_counter() - began)
        began = time.perf_counter()
        await runner.engine.stats(str(server.container_id))
        _ENGINE_STATS.append(time.perf_counter() - began)
    await runner.stop(server, grace_s=2)
    await runner.prune_artifacts(keep=[])
    return took


def _real_dependencies_project(folder: Path) -> Path:
    """A project depending on the real ``@mastra/core``, its lock file resolved from the
    registry (once, on this machine: the same lock file for both builds)."""
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(
        json.dumps(
            {
                "name": "bench-real-deps",
                "version": "1.0.0",
                "private": True,
                "type": "module",
                "dependencies": {"@mastra/core": CORE_VERSION},
            }
        )
    )
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder


async def _cache(runner: DockerRunner, work: Path) -> tuple[float, float]:
    project = _real_dependencies_project(work / "real-deps")
    script = (
        "import('@mastra/core').then(() => { const fs = require('fs');"
        "fs.mkdirSync('.mastra/output', {recursive: true});"
        "fs.writeFileSync('.mastra/output/index.mjs', ''); })"
    )
    settings = ProjectSettings(build_command=["node", "-e", script])
    cold = make_build_context(project, settings=settings)
    started = time.perf_counter()
    await runner.build(cold, LogCollector())
    cold_s = time.perf_counter() - started
    warm = make_build_context(project, settings=settings, deployment=cold.deployment)
    warm = warm.model_copy(update={"project": cold.project})
    started = time.perf_counter()
    await runner.build(warm, LogCollector())
    warm_s = time.perf_counter() - started
    await runner.prune_artifacts(keep=[])
    await runner.engine.remove_volume(runner.cache_volume_of(cold.project.id))
    return cold_s, warm_s


async def _run() -> list[Figure]:
    base = await asyncio.to_thread(build_node_base_image)
    work = Path(tempfile.mkdtemp(prefix="mastra-admin-bench-docker-"))
    runner = DockerRunner(
        FolderCopySource(),
        DockerRunnerSettings(base_image=base, image_repository=REPOSITORY),
        data_dir=work / "data",
    )
    try:
        project = write_mastra_project(work / "weather", name="weather")
        by_runner: list[float] = []
        by_hand: list[float] = []
        await _through_runner(runner, project)  # warms the engine and the page cache
        for n in range(ROUNDS):
            by_runner.append(await _through_runner(runner, project))
            by_hand.append(await _by_hand(project, base, work, n))
        cold_s, warm_s = await _cache(runner, work)
    finally:
        await runner.close()
        shutil.rmtree(work, ignore_errors=True)
    runner_s, hand_s = statistics.median(by_runner), statistics.median(by_hand)
    overhead = runner_s - hand_s
    return [
        Figure(
            bench="runner-docker",
            figure=f"deploy to healthy (median of {ROUNDS})",
            value=runner_s,
            unit="s",
            reference=hand_s,
            reference_label="docker build + docker run by hand",
        ),
        Figure(
            bench="runner-docker",
            figure="runner overhead per deploy",
            value=overhead,
            unit="s",
            goal="<= 1 s",
            met=overhead <= 1.0,
        ),
        Figure(
            bench="runner-docker",
            figure="stats of one server (median)",
            value=statistics.median(_STATS) * 1000,
            unit="ms",
            reference=statistics.median(_ENGINE_STATS) * 1000,
            reference_label="one stats request to the engine",
        ),
        Figure(
            bench="runner-docker",
            figure="rebuild, lock file unchanged (@mastra/core from the registry)",
            value=warm_s,
            unit="s",
            reference=cold_s,
            reference_label="the same build, cold cache",
            goal="cold / warm >= 3x",
            met=cold_s / warm_s >= 3.0,
        ),
    ]


def run() -> list[Figure]:
    return asyncio.run(_run())
