"""The platform on the Docker runner, as an operator sets it up: ``mastra-admin serve``
with ``[runner] provider = "docker"``. A deploy builds in containers and runs the
server in one; it is routed, its agent call is traced through the collector (reached
from inside the container), a redeploy under traffic drops no request, a rollback
starts the kept image without rebuilding, a restart of the platform re-attaches the
container, and stop leaves no container behind."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest

from mastra_admin.runners.docker import DockerEngine
from mastra_admin.runners.docker.testing import build_node_base_image

from ._platform import ServedPlatform, Traffic, new_root, wait_for, write_projects

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPOSITORY = "mastra-admin-e2e/build"


async def _managed(kind: str) -> list[dict[str, Any]]:
    engine = DockerEngine()
    try:
        labels = {"io.mastra-admin.managed": "1"}
        if kind == "containers":
            return await engine.containers(labels)
        return await engine.images(labels)
    finally:
        await engine.close()


async def _remove_everything(deployment_ids: list[str]) -> None:
    engine = DockerEngine()
    try:
        for deployment in deployment_ids:
            labels = {"io.mastra-admin.deployment": deployment}
            for container in await engine.containers(labels):
                await engine.remove(container["Id"])
            for image in await engine.images(labels):
                await engine.remove_image(image["Id"])
            await engine.remove_network(f"mastra-admin-d-{deployment}")
    finally:
        await engine.close()


@dataclass
class DockerPlatform:
    platform: ServedPlatform
    deployment_ids: list[str] = field(default_factory=list)


@pytest.fixture
def docker_platform() -> Iterator[DockerPlatform]:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker Engine answers: start dockerd (see .ci/run)")
    base = build_node_base_image()
    root = new_root()
    platform = ServedPlatform(
        root,
        write_projects(root / "projects", {"weather-agent": "ok"}),
        env={
            "MASTRA_ADMIN_RUNNER__PROVIDER": "docker",
            "MASTRA_ADMIN_RUNNER__BASE_IMAGE": base,
            "MASTRA_ADMIN_RUNNER__IMAGE_REPOSITORY": REPOSITORY,
            "MASTRA_ADMIN_RUNNER__STOP_GRACE_S": "2",
        },
    )
    for local_only in (
        "MASTRA_ADMIN_RUNNER__PORT_RANGE_START",
        "MASTRA_ADMIN_RUNNER__PORT_RANGE_END",
    ):
        platform.extra_env.pop(local_only)
    made = DockerPlatform(platform)
    try:
        platform.start()
        yield made
    finally:
        platform.close()
        asyncio.run(_remove_everything(made.deployment_ids))


def test_deploy_trace_redeploy_rollback_restart_stop_in_containers(
    docker_platform: DockerPlatform,
) -> None:
    platform = docker_platform.platform
    team = platform.post("/api/teams", {"name": "Search"}, expect=201)
    [source] = platform.get("/api/sources/projects", params={"team_id": team["id"]})
    project = platform.post(
        f"/api/teams/{team['id']}/projects",
        {"name": "Weather", "source_id": source["id"], "settings": {"memory_limit_mb": 256}},
        expect=201,
    )
    assert project["settings"]["memory_limit_mb"] == 256
    pid_path = f"/api/projects/{project['id']}"
    platform.request("PUT", f"{pid_path}/env", json={"key": "WEATHER_API_KEY", "value": "wk-1"})
    production = platform.post(f"{pid_path}/deployments", {"type": "production"}, expect=201)
    docker_platform.deployment_ids.append(production["id"])

    first = platform.deploy(production["id"])
    log = platform.build_log(first["id"])
    assert first["status"] == "succeeded", log
    assert "npm ci" in log
    production = platform.get(f"/api/deployments/{production['id']}")
    host = urlparse(str(production["public_url"])).hostname
    assert host is not None
    [server] = platform.get(f"/api/deployments/{production['id']}/servers")
    assert server["container_id"], server
    assert server["host"] == "127.0.0.1"
    assert platform.routed(host, "/").status_code == 200

    # The agent call's trace arrives through the collector, posted from the container.
    reply = platform.routed(
        host, "/api/agents/weather/generate", method="POST", json={"messages": "rain?"}
    )
    assert reply.status_code == 200, reply.text
    trace_id = reply.json()["traceId"]

    def traced() -> dict[str, Any] | None:
        found = platform.get(f"{pid_path}/traces", params={"trace_id": trace_id})
        return found if found["items"] else None

    found = wait_for("the agent call's trace", traced, timeout=15, interval=0.2)
    assert found["items"][0]["deployment_id"] == production["id"]

    # Redeploy under traffic: no request fails.
    with Traffic(platform, host) as traffic:
        time.sleep(0.5)
        second = platform.deploy(production["id"])
        time.sleep(0.5)
    assert second["status"] == "succeeded"
    assert traffic.errors == [], traffic.errors[:5]
    assert len(traffic.statuses) >= 20
    [now_serving] = platform.get(f"/api/deployments/{production['id']}/servers")
    assert now_serving["container_id"] != server["container_id"]

    def first_container_gone() -> bool:
        ids = {c["Id"] for c in asyncio.run(_managed("containers"))}
        return server["container_id"] not in ids

    wait_for("the first container to be removed", first_container_gone, timeout=30)

    # Rollback: the first build's image runs again, nothing is rebuilt.
    rollback = platform.post(
        f"/api/deployments/{production['id']}/rollback", {"build_id": first["id"]}, expect=202
    )
    rolled = platform.wait_build(rollback["id"])
    rolled_log = platform.build_log(rolled["id"])
    assert rolled["status"] == "succeeded", rolled_log
    assert "npm ci" not in rolled_log
    assert platform.routed(host, "/").status_code == 200

    # The platform restarts: the container keeps serving and is adopted again.
    [before] = platform.get(f"/api/deployments/{production['id']}/servers")
    assert platform.stop() == 0
    platform.start()
    [after] = platform.get(f"/api/deployments/{production['id']}/servers")
    assert after["id"] == before["id"]
    assert after["container_id"] == before["container_id"]
    assert platform.routed(host, "/").status_code == 200

    # Stop: the container is gone.
    stopped = platform.post(f"/api/deployments/{production['id']}/stop")
    assert stopped["status"] == "stopped"
    left = [
        c
        for c in asyncio.run(_managed("containers"))
        if c["Labels"].get("io.mastra-admin.deployment") == production["id"]
    ]
    assert left == [], left
