"""A hostile deployment on the running platform (``mastra-admin serve``, embedded
PostgreSQL, the local runner's sandbox) reaches none of it.

Its server tries to read every file at the top of the data dir (keys, the collector
secret) and the embedded PostgreSQL's files, another deployment's build and server
environment, to connect to the API, to the embedded PostgreSQL and to the other
deployment's server, and to kill it; each attempt fails, while it reaches the
collector's own listener, which answers nothing but the collector.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from mastra_admin.core.testing.projects import write_mastra_project

from ._platform import ServedPlatform, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ATTACK = Path(__file__).parents[1] / "runners" / "local" / "tests" / "hostile" / "attack.mjs"


def postgres_port(data_dir: Path) -> int | None:
    """The embedded PostgreSQL's TCP port (line 4 of ``postmaster.pid``), if it has one."""
    for pid_file in data_dir.rglob("postmaster.pid"):
        lines = pid_file.read_text().splitlines()
        if len(lines) > 3 and lines[3].strip().isdigit():
            return int(lines[3])
    return None


def test_a_hostile_server_reaches_nothing_of_the_platform(platform: ServedPlatform) -> None:
    team = platform.post("/api/teams", {"name": "Isolation"}, expect=201)

    def offered(name: str) -> list[dict[str, Any]]:
        listed = platform.get("/api/sources/projects", params={"team_id": team["id"]})
        return [s for s in listed if s["name"] == name]

    def project_from(name: str) -> dict[str, Any]:
        wait_for(f"the source offers {name}", lambda: bool(offered(name)), timeout=30)
        [source] = offered(name)
        created: dict[str, Any] = platform.post(
            f"/api/teams/{team['id']}/projects",
            {"name": name, "source_id": source["id"]},
            expect=201,
        )
        return created

    victim = project_from("weather-agent")
    victim_deployment = platform.post(
        f"/api/projects/{victim['id']}/deployments",
        {"type": "staging", "branch": "victim"},
        expect=201,
    )
    victim_build = platform.deploy(victim_deployment["id"])
    assert victim_build["status"] == "succeeded", platform.build_log(victim_build["id"])
    [victim_server] = platform.get(f"/api/deployments/{victim_deployment['id']}/servers")
    victim_src = platform.data_dir / "builds" / victim_build["id"] / "src"
    assert victim_src.is_dir()

    top_files = {
        f"data dir {path.name}": str(path) for path in platform.data_dir.iterdir() if path.is_file()
    }
    assert top_files, "the data dir holds the platform's keys"
    pg_files = sorted(platform.data_dir.rglob("PG_VERSION"))
    assert pg_files, "the embedded PostgreSQL keeps its files in the data dir"
    connect = {"the API": platform.port, "another server": victim_server["port"]}
    pg_port = postgres_port(platform.data_dir)
    if pg_port is not None:
        connect["PostgreSQL"] = pg_port
    targets = {
        "read": {
            **top_files,
            "PostgreSQL's files": str(pg_files[0]),
            "another deployment's build": str(victim_src / "package.json"),
            "another server's environment": f"/proc/{victim_server['process_id']}/environ",
        },
        "write": {"another deployment's build": str(victim_src / "package.json")},
        "pids": {"another server": victim_server["process_id"]},
        "connect": connect,
        "allowed": {"the collector": platform.collector_port},
        "http_path": "/api/me",
    }
    hostile_dir = platform.projects_dir / "hostile-agent"
    write_mastra_project(hostile_dir, name="hostile-agent")
    shutil.copy(ATTACK, hostile_dir / "attack.mjs")
    (hostile_dir / "targets.json").write_text(json.dumps(targets), encoding="utf-8")
    hostile = project_from("hostile-agent")
    platform.request(
        "PATCH",
        f"/api/projects/{hostile['id']}",
        json={
            "settings": {
                "start_command": [
                    "node",
                    "attack.mjs",
                    "server",
                    "--then",
                    ".mastra/output/index.mjs",
                ]
            }
        },
    )
    deployment = platform.post(
        f"/api/projects/{hostile['id']}/deployments", {"type": "production"}, expect=201
    )
    build = platform.deploy(deployment["id"])
    assert build["status"] == "succeeded", platform.build_log(build["id"])

    results = platform.data_dir / "builds" / build["id"] / "src" / "attack-results" / "server.json"
    wait_for("the attack's results", results.is_file, timeout=30)
    attempts = json.loads(results.read_text())
    controls = [a for a in attempts if a["control"]]
    attacks = [a for a in attempts if not a["control"]]
    assert controls
    assert all(a["ok"] for a in controls), controls
    assert len(attacks) == len(targets["read"]) + 1 + 2 + len(connect)
    assert [a for a in attacks if a["ok"]] == []

    # The collector's listener answers the collector and nothing else.
    with httpx.Client(base_url=f"http://127.0.0.1:{platform.collector_port}") as client:
        assert client.get("/api/me").status_code == 404
        assert client.get("/api/teams").status_code == 404
    [still] = platform.get(f"/api/deployments/{victim_deployment['id']}/servers")
    assert still["process_id"] == victim_server["process_id"]
    assert json.loads((victim_src / "package.json").read_text())["name"] == "weather-agent"
    for deployment_id in (deployment["id"], victim_deployment["id"]):
        platform.request("POST", f"/api/deployments/{deployment_id}/stop")
