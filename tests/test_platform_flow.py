"""The whole platform through its HTTP API, as a user drives it.

``mastra-admin serve`` runs on its embedded default (PostgreSQL in the data dir,
chDB), with the local source, runner and router, over a fixture Mastra project.
A team is created, the project found and created, env vars set, production and
preview deployments created and deployed; the server answers through its subdomain
and its traces, logs and metrics come back from the observability API. Then a
redeploy under continuous traffic, a rollback without rebuilding, a stop, and a
preview that expires.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from ._platform import ServedPlatform, Traffic, served, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Setup:
    platform: ServedPlatform
    team: dict[str, Any]
    project: dict[str, Any]


@pytest.fixture(scope="module")
def flow_platform() -> Iterator[ServedPlatform]:
    with served({"weather-agent": "ok", "support-bot": "ok"}) as running:
        yield running


@pytest.fixture(scope="module")
def setup(flow_platform: ServedPlatform) -> Setup:
    """A team, and a project created from what the source picker offers."""
    team = flow_platform.post("/api/teams", {"name": "Search"}, expect=201)
    offered = flow_platform.get("/api/sources/projects", params={"team_id": team["id"]})
    names = {source["name"]: source for source in offered}
    assert {"weather-agent", "support-bot"} <= set(names), offered
    source = names["weather-agent"]
    assert source["metadata"]["package_manager"] == "npm"
    assert source["metadata"]["valid"] is True
    project = flow_platform.post(
        f"/api/teams/{team['id']}/projects",
        {"name": "Weather", "source_id": source["id"]},
        expect=201,
    )
    return Setup(flow_platform, team, project)


def host_of(deployment: dict[str, Any]) -> str:
    hostname = urlparse(str(deployment["public_url"])).hostname
    assert hostname is not None
    return hostname


def server_pid(platform: ServedPlatform, deployment_id: str) -> int:
    [server] = platform.get(f"/api/deployments/{deployment_id}/servers")
    pid: int = server["process_id"]
    return pid


def environ_of(pid: int) -> dict[str, str]:
    return dict(psutil.Process(pid).environ())


def test_deploy_route_observe_redeploy_rollback_stop(setup: Setup) -> None:
    platform, project = setup.platform, setup.project
    pid_path = f"/api/projects/{project['id']}"

    # Env vars: encrypted at rest, hidden when listed, given to the server.
    platform.request(
        "PUT", f"{pid_path}/env", json={"key": "WEATHER_API_KEY", "value": "wk-123-secret"}
    )
    platform.request(
        "PUT",
        f"{pid_path}/env",
        json={"key": "FORECAST_DAYS", "value": "5", "is_secret": False},
    )
    listed = {v["key"]: v for v in platform.get(f"{pid_path}/env")}
    assert listed["WEATHER_API_KEY"]["value"] is None

    production = platform.post(f"{pid_path}/deployments", {"type": "production"}, expect=201)
    assert production["branch"] == "main"

    first = platform.deploy(production["id"])
    production = platform.get(f"/api/deployments/{production['id']}")
    assert production["status"] == "running"
    assert production["current_build_id"] == first["id"]
    host = host_of(production)
    assert host == "weather-main.search.localhost"

    # The server answers through its subdomain on the router's port.
    home = platform.routed(host, "/")
    assert home.status_code == 200, home.text
    assert home.json()["service"] == "weather-agent"
    assert platform.routed("nobody-main.search.localhost", "/").status_code == 404

    pid = server_pid(platform, production["id"])
    env = environ_of(pid)
    assert env["WEATHER_API_KEY"] == "wk-123-secret"
    assert env["FORECAST_DAYS"] == "5"
    assert env["MASTRA_PROJECT_ID"] == project["id"]
    # Servers post to the collector's own listener, not to the API's port.
    assert env["MASTRA_CLOUD_TRACES_ENDPOINT"] == (
        f"{platform.collector_url}/api/collector/{production['id']}/spans/publish"
    )

    # An agent call; its trace, logs and metric come back within 5 s.
    reply = platform.routed(
        host,
        "/api/agents/weather/generate",
        method="POST",
        json={"messages": "will it rain in Lisbon?"},
    )
    assert reply.status_code == 200, reply.text
    trace_id = reply.json()["traceId"]
    asked = time.monotonic()

    def observed() -> dict[str, Any] | None:
        traces = platform.get(f"{pid_path}/traces", params={"trace_id": trace_id})
        logs = platform.get(f"{pid_path}/logs", params={"trace_id": trace_id})
        metrics = platform.get(f"{pid_path}/metrics", params={"name": "mastra_agent_duration_ms"})
        mine = [m for m in metrics["items"] if m["trace_id"] == trace_id]
        if traces["items"] and logs["items"] and mine:
            return {"trace": traces["items"][0], "log": logs["items"][0], "metric": mine[0]}
        return None

    seen = wait_for("the agent call's trace, log and metric", observed, timeout=5, interval=0.1)
    assert time.monotonic() - asked <= 5.5
    assert seen["trace"]["span_count"] == 2
    assert seen["trace"]["deployment_id"] == production["id"]
    assert seen["log"]["message"] == "agent weather generated a reply"
    tree = platform.get(f"{pid_path}/traces/{trace_id}")
    assert len(tree["spans"]) == 2
    [root] = tree["roots"]
    assert len(tree["children"][root]) == 1

    # The server's own collector token, used as an attacker inside it would: records
    # naming another deployment (plainly and inside an envelope) are filed under this
    # one, and the same batch sent twice (the exporter retries) reads once.
    hostile = _spans_naming("f" * 32, "another-deployment")
    for _ in range(2):
        posted = httpx.post(
            env["MASTRA_CLOUD_TRACES_ENDPOINT"],
            json=hostile,
            headers={"Authorization": f"Bearer {env['MASTRA_CLOUD_ACCESS_TOKEN']}"},
        )
        assert posted.status_code == 200, posted.text

    def hostile_trace() -> dict[str, Any] | None:
        found = platform.get(f"{pid_path}/traces", params={"trace_id": "f" * 32})
        return found if found["items"] else None

    found = wait_for("the re-sent trace", hostile_trace, timeout=10, interval=0.1)
    assert found["total"] == 1, found
    [trace] = found["items"]
    assert (trace["deployment_id"], trace["span_count"]) == (production["id"], 2)
    tree = platform.get(f"{pid_path}/traces/{'f' * 32}")
    assert sorted(s["deployment_id"] for s in tree["spans"]) == [production["id"]] * 2
    spans = platform.get(f"{pid_path}/spans", params={"trace_id": "f" * 32})
    assert spans["total"] == 2, spans

    # Redeploy while a client calls the server without pause: no request fails.
    with Traffic(platform, host) as traffic:
        time.sleep(0.5)
        second = platform.deploy(production["id"])
        time.sleep(0.5)
    assert traffic.errors == [], traffic.errors[:5]
    assert len(traffic.statuses) >= 20
    new_pid = server_pid(platform, production["id"])
    assert new_pid != pid
    wait_for("the first server to exit", lambda: not _alive(pid), timeout=30)

    # Roll back to the first build: its kept output runs again, nothing is rebuilt.
    rollback = platform.post(
        f"/api/deployments/{production['id']}/rollback", {"build_id": first["id"]}, expect=202
    )
    assert rollback["trigger"] == "rollback"
    rolled = platform.wait_build(rollback["id"])
    log = platform.build_log(rolled["id"])
    assert rolled["status"] == "succeeded", log
    assert rolled["artifact_build_id"] == first["id"]
    assert "npm ci" not in log, log
    assert "mastra build" not in log, log
    assert platform.routed(host, "/").status_code == 200
    assert platform.get(f"/api/deployments/{production['id']}")["current_build_id"] == rolled["id"]
    assert second["id"] != rolled["id"]

    # Stop: the server is gone, its host answers 503 and nothing is listed as running.
    serving = server_pid(platform, production["id"])
    stopped = platform.post(f"/api/deployments/{production['id']}/stop")
    assert stopped["status"] == "stopped"
    assert platform.routed(host, "/").status_code == 503
    assert platform.get(f"/api/deployments/{production['id']}/servers") == []
    wait_for("the stopped server to exit", lambda: not _alive(serving), timeout=30)


def _spans_naming(trace_id: str, deployment_id: str) -> dict[str, Any]:
    """A root span and its child in the CloudExporter's shape, each claiming to come from
    ``deployment_id``; the child inside a ``{"type", "data"}`` envelope."""
    start = datetime.now(UTC)

    def span(span_id: str, parent: str | None) -> dict[str, Any]:
        return {
            "id": span_id,
            "spanId": span_id,
            "traceId": trace_id,
            "parentSpanId": parent,
            "isRootSpan": parent is None,
            "name": f"hostile {span_id[:4]}",
            "type": "workflow_step",
            "spanType": "workflow_step",
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(milliseconds=5)).isoformat(),
            "deploymentId": deployment_id,
            "deployment_id": deployment_id,
        }

    root, child = span("a" * 16, None), span("b" * 16, "a" * 16)
    return {"spans": [root, {"type": "span", "data": child}]}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_preview_is_served_apart_and_cleaned_up_when_it_expires(setup: Setup) -> None:
    platform, project = setup.platform, setup.project
    preview = platform.post(
        f"/api/projects/{project['id']}/deployments",
        {"type": "preview", "branch": "feature/rain-alerts", "ttl_hours": 1},
        expect=201,
    )
    assert preview["expires_at"] is not None
    platform.deploy(preview["id"])
    preview = platform.get(f"/api/deployments/{preview['id']}")
    host = host_of(preview)
    assert host.startswith("weather-feature-rain-alerts.")
    assert platform.routed(host, "/").status_code == 200
    pid = server_pid(platform, preview["id"])

    env = environ_of(pid)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    platform.request(
        "PATCH", f"/api/deployments/{preview['id']}", json={"expires_at": soon.isoformat()}
    )

    def gone() -> bool:
        response = httpx.get(
            f"{platform.url}/api/deployments/{preview['id']}", headers=platform.headers
        )
        return response.status_code == 404

    wait_for("the expired preview to be deleted", gone, timeout=30)
    wait_for("its server to exit", lambda: not _alive(pid), timeout=30)
    assert platform.routed(host, "/").status_code == 404
    routes = platform.get(f"/api/projects/{project['id']}/routes")
    assert all(route["deployment_id"] != preview["id"] for route in routes)
    # Deleting the deployment revoked its collector token.
    late = httpx.post(
        env["MASTRA_CLOUD_TRACES_ENDPOINT"],
        json={"spans": []},
        headers={"Authorization": f"Bearer {env['MASTRA_CLOUD_ACCESS_TOKEN']}"},
    )
    assert late.status_code == 401, late.text
