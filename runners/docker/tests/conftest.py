"""Fixtures of the Docker runner's tests: a real Docker Engine, a Node 22 base image
built here once per session (no registry is needed), runners on it, and a check after
every test that nothing the runner made was left behind but kept images."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core.testing.runner import FolderCopySource
from mastra_admin.runners.docker import DockerEngine, DockerRunner, DockerRunnerSettings
from mastra_admin.runners.docker.testing import build_node_base_image

ENGINE_URL = "unix:///var/run/docker.sock"


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def base_image() -> str:
    """The Node 22 base image every test builds on (``.ci/run`` starts the engine)."""
    if not _engine_answers():
        pytest.fail("no Docker Engine answers: start dockerd (see .ci/run)")
    return build_node_base_image()


@pytest.fixture
async def make_runner(
    tmp_path: Path, base_image: str
) -> AsyncIterator[Callable[..., DockerRunner]]:
    made: list[DockerRunner] = []

    def make(**overrides: Any) -> DockerRunner:
        settings = DockerRunnerSettings(
            base_image=base_image,
            image_repository="mastra-admin-test/build",
            health_timeout_s=20.0,
            stop_grace_s=2.0,
            memory_limit_mb=256,
            **overrides,
        )
        runner = DockerRunner(FolderCopySource(), settings, data_dir=tmp_path / "data")
        made.append(runner)
        return runner

    yield make
    for runner in made:
        await runner.close()


async def leftovers(label_value: str = "1") -> dict[str, list[str]]:
    """Containers, volumes and networks the runner made that still exist (images and
    the package caches are kept on purpose: ``prune_artifacts`` removes them)."""
    engine = DockerEngine(ENGINE_URL)
    try:
        labels = {"io.mastra-admin.managed": label_value}
        containers = [c["Names"][0] for c in await engine.containers(labels)]
        volumes = [
            v["Name"]
            for v in await engine.volumes(labels)
            if (v.get("Labels") or {}).get("io.mastra-admin.role") not in ("cache", "modules")
        ]
        networks = [n["Name"] for n in await engine.networks(labels)]
    finally:
        await engine.close()
    return {"containers": containers, "volumes": volumes, "networks": networks}


@pytest.fixture(autouse=True)
async def nothing_left_behind(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "base_image" not in request.fixturenames:
        return
    for _ in range(20):
        left = await leftovers()
        if not any(left.values()):
            break
        await asyncio.sleep(0.25)
    engine = DockerEngine(ENGINE_URL)
    try:
        for image in await engine.images({"io.mastra-admin.managed": "1"}):
            await engine.remove_image(image["Id"])
        for volume in await engine.volumes({"io.mastra-admin.managed": "1"}):
            await engine.remove_volume(volume["Name"])
    finally:
        await engine.close()
    assert not any(left.values()), f"left behind: {left}"
