"""The platform when things go wrong: a killed server, a restarted database, a full
disk, and ClickHouse out of reach.

One ``mastra-admin serve`` serves this module. Its PostgreSQL is an embedded server
the test controls (so that it can be restarted under traffic) and its file storage
is a small tmpfs (so that it can be filled). Each test leaves the platform running
with its deployment serving, whatever it did to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mastra_admin.core.testing.runner import leftover_processes
from mastra_admin.stores.pg import EmbeddedPostgres

from ._platform import (
    CLI,
    Background,
    ServedPlatform,
    chdb_query,
    new_root,
    remove_root,
    wait_for,
    write_projects,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STUCK = {"queued", "building", "deploying"}


@dataclass
class Deployed:
    platform: ServedPlatform
    postgres: EmbeddedPostgres
    files: Path
    team: dict[str, Any]
    project: dict[str, Any]
    deployment: dict[str, Any]

    @property
    def host(self) -> str:
        return f"weather-main.{self.team['slug']}.localhost"

    def collector(self) -> tuple[str, str]:
        """The collector URL prefix and token the deployed server was given."""
        return collector_of(self.platform, self.deployment["id"])

    def ensure_running(self) -> None:
        """Start the platform again if a test left it stopped."""
        if not self.platform.running():
            self.platform.start()


def collector_of(platform: ServedPlatform, deployment_id: str) -> tuple[str, str]:
    [server] = platform.get(f"/api/deployments/{deployment_id}/servers")
    env = psutil.Process(server["process_id"]).environ()
    endpoint = env["MASTRA_CLOUD_TRACES_ENDPOINT"]
    assert endpoint.endswith("/spans/publish")
    return endpoint.removesuffix("/spans/publish"), env["MASTRA_CLOUD_ACCESS_TOKEN"]


def log_batch(tag: str, first: int, count: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "logs": [
            {
                "logId": str(uuid.uuid4()),
                "timestamp": now,
                "level": "info",
                "message": f"{tag} {n}",
                "correlationContext": {"serviceName": "e2e"},
            }
            for n in range(first, first + count)
        ]
    }


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    root = new_root()
    files = root / "files"
    files.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(files)], check=True)
    postgres = EmbeddedPostgres(
        root / "postgres",
        database="mastra_admin",
        server_options={"fsync": "off", "synchronous_commit": "off"},
    )
    platform: ServedPlatform | None = None
    try:
        database_url = postgres.start()
        projects = write_projects(
            root / "projects", {"weather-agent": "ok", "slow-builder": "hangs_at_build"}
        )
        platform = ServedPlatform(
            root,
            projects,
            env={"DATABASE_URL": database_url, "FILE_STORAGE_PATH": str(files)},
        )
        platform.start()
        team = platform.post("/api/teams", {"name": "Ops"}, expect=201)
        sources = platform.get("/api/sources/projects", params={"team_id": team["id"]})
        source_id = next(s["id"] for s in sources if s["name"] == "weather-agent")
        project = platform.post(
            f"/api/teams/{team['id']}/projects",
            {"name": "Weather", "source_id": source_id},
            expect=201,
        )
        deployment = platform.post(
            f"/api/projects/{project['id']}/deployments", {"type": "production"}, expect=201
        )
        platform.deploy(deployment["id"])
        yield Deployed(platform, postgres, files, team, project, deployment)
    finally:
        if platform is not None and platform.running():
            platform.stop(timeout=60)
        for left in leftover_processes(root):
            os.kill(int(left.split()[0]), 9)
        postgres.stop()
        subprocess.run(["umount", "-l", str(files)], check=False)
        remove_root(root)


def test_killed_in_the_middle_of_a_build_no_build_is_left_stuck(deployed: Deployed) -> None:
    platform = deployed.platform
    deployed.ensure_running()
    sources = platform.get("/api/sources/projects", params={"team_id": deployed.team["id"]})
    source_id = next(s["id"] for s in sources if s["name"] == "slow-builder")
    project = platform.post(
        f"/api/teams/{deployed.team['id']}/projects",
        {"name": "Slow", "source_id": source_id},
        expect=201,
    )
    deployment = platform.post(
        f"/api/projects/{project['id']}/deployments", {"type": "production"}, expect=201
    )
    build = platform.post(f"/api/deployments/{deployment['id']}/deploy", expect=202)
    wait_for(
        "the build to reach `mastra build`",
        lambda: "mastra build" in platform.build_log(build["id"]),
        timeout=120,
    )
    assert platform.get(f"/api/builds/{build['id']}")["status"] == "building"

    platform.kill()
    platform.start()
    build_dir = platform.data_dir / "builds" / build["id"]
    wait_for(
        "the interrupted build's processes to be gone",
        lambda: not leftover_processes(build_dir),
        timeout=15,
    )

    after = platform.get(f"/api/builds/{build['id']}")
    assert after["status"] == "failed", after
    assert "interrupted" in (after["error_message"] or "").lower(), after
    assert platform.get(f"/api/deployments/{deployment['id']}")["status"] == "failed"
    stuck = [
        b
        for d in platform.get(f"/api/projects/{project['id']}/deployments")
        for b in platform.get(f"/api/deployments/{d['id']}/builds")["items"]
        if b["status"] in STUCK
    ]
    assert stuck == []
    # The production server of the other project was re-attached, not restarted.
    assert platform.routed(deployed.host, "/").status_code == 200
    # And the platform builds again.
    platform.post(f"/api/deployments/{deployment['id']}/stop")
    platform.deploy(deployed.deployment["id"])
    assert platform.routed(deployed.host, "/").status_code == 200


def test_killed_in_the_middle_of_ingestion_no_event_is_lost_or_doubled(
    deployed: Deployed,
) -> None:
    platform = deployed.platform
    deployed.ensure_running()
    prefix, token = deployed.collector()
    tag = f"e2e-ingest-{uuid.uuid4().hex[:8]}"
    per_batch, accepted = 50, 0
    killed_with: dict[str, Any] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        # Post until the worker is visibly behind: some files in, more waiting.
        for n in range(2000):
            response = client.post(
                f"{prefix}/logs/publish", json=log_batch(tag, n * per_batch, per_batch)
            )
            assert response.status_code == 200, response.text
            accepted += per_batch
            if n >= 50 and n % 5 == 0:
                status = platform.ingestion()
                if status["total_files_processed"] > 0 and status["pending_files"] >= 10:
                    killed_with = status
                    break
    assert killed_with, "ingestion never ran behind the collector: nothing to interrupt"
    platform.kill()
    platform.start()

    wait_for(
        "ingestion to drain after the restart",
        lambda: (
            platform.ingestion()["pending_files"] == 0
            and platform.get(
                f"/api/projects/{deployed.project['id']}/logs", params={"text": tag, "limit": 1}
            )["total"]
            >= accepted
        ),
        timeout=120,
        interval=0.5,
    )
    platform.stop()
    [[rows, distinct]] = chdb_query(
        platform.clickhouse_path,
        f"SELECT count(), uniqExact(message) FROM mastra_admin.mastra_admin_logs WHERE message LIKE '{tag} %'",
    )
    assert (int(rows), int(distinct)) == (accepted, accepted), killed_with
    platform.start()


@dataclass
class Probe(Background):
    """A client asking the API for the team list without pause."""

    platform: ServedPlatform
    statuses: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(headers=self.platform.headers, timeout=15) as client:
            while not self.stopped:
                try:
                    response = client.get(f"{self.platform.url}/api/teams")
                    self.statuses.append((time.monotonic(), response.status_code))
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.02)

    def seen(self, status: int, since: float) -> bool:
        return any(s == status and t > since for t, s in self.statuses)


def test_postgres_restarted_under_traffic_gives_503_then_recovers(deployed: Deployed) -> None:
    platform = deployed.platform
    deployed.ensure_running()
    pid = platform.pid
    with Probe(platform) as probe:
        wait_for("traffic", lambda: probe.seen(200, 0), timeout=10)
        down_at = time.monotonic()
        deployed.postgres.stop()
        wait_for("503 while PostgreSQL is down", lambda: probe.seen(503, down_at), timeout=30)
        ready = httpx.get(f"{platform.url}/ready", timeout=15)
        assert ready.status_code == 503
        up_at = time.monotonic()
        deployed.postgres.start()
        wait_for("200 again without a restart", lambda: probe.seen(200, up_at), timeout=60)
        time.sleep(0.5)
    assert platform.pid == pid
    assert platform.running()
    assert probe.errors == [], probe.errors[:5]
    unexpected = {s for _, s in probe.statuses} - {200, 503}
    assert unexpected == set(), probe.statuses
    assert probe.statuses[-1][1] == 200
    error = httpx.get(f"{platform.url}/api/teams", headers=platform.headers, timeout=15)
    assert error.status_code == 200
    assert httpx.get(f"{platform.url}/ready", timeout=15).status_code == 200
    # Routed traffic never depended on the database.
    assert platform.routed(deployed.host, "/").status_code == 200


def test_a_full_file_storage_disk_is_503_and_leaves_no_partial_file(deployed: Deployed) -> None:
    platform = deployed.platform
    deployed.ensure_running()
    prefix, token = deployed.collector()
    headers = {"Authorization": f"Bearer {token}"}
    tag = f"e2e-disk-{uuid.uuid4().hex[:8]}"
    wait_for("ingestion to settle", lambda: platform.ingestion()["pending_files"] == 0)
    filler = deployed.files / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    try:
        statuses = []
        for n in range(5):
            response = httpx.post(
                f"{prefix}/logs/publish", json=log_batch(tag, n * 200, 200), headers=headers
            )
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "unavailable"
        assert statuses.count(503) >= 4, statuses
        for path in deployed.files.rglob("*"):
            assert ".tmp-" not in path.name, f"partial file left: {path}"
            if path.is_file() and path.suffix == ".jsonl":
                for line in path.read_text().splitlines():
                    json.loads(line)
    finally:
        filler.unlink()
    accepted = httpx.post(f"{prefix}/logs/publish", json=log_batch(tag, 0, 10), headers=headers)
    assert accepted.status_code == 200
    wait_for(
        "the batch accepted after space came back to be ingested",
        lambda: (
            platform.get(f"/api/projects/{deployed.project['id']}/logs", params={"text": tag})[
                "total"
            ]
            >= 10
        ),
        timeout=30,
    )


def test_clickhouse_unavailable_files_wait_and_drain_after() -> None:
    """The embedded ClickHouse admits one process per data dir. Here the API runs
    with ingestion in a separate ``mastra-admin ingest`` process (as it does with a
    ClickHouse server); another process holding the engine's data dir makes
    ClickHouse unavailable to it. The collector keeps accepting into files, the
    ingester fails without touching them, and once the data dir is free again
    every event goes in."""
    root = new_root()
    platform = ServedPlatform(
        root,
        write_projects(root / "projects"),
        env={"MASTRA_ADMIN_OBSERVABILITY__PROVIDER": "none"},
        args=["--no-ingestion"],
    )
    holder: subprocess.Popen[str] | None = None
    try:
        platform.start()
        team = platform.post("/api/teams", {"name": "Edge"}, expect=201)
        [source] = platform.get("/api/sources/projects", params={"team_id": team["id"]})
        project = platform.post(
            f"/api/teams/{team['id']}/projects",
            {"name": "Weather", "source_id": source["id"]},
            expect=201,
        )
        deployment = platform.post(
            f"/api/projects/{project['id']}/deployments", {"type": "production"}, expect=201
        )
        platform.deploy(deployment["id"])

        clickhouse = platform.clickhouse_path
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys\nfrom chdb import session\ns = session.Session(sys.argv[1])\n"
                "print('holding', flush=True)\nsys.stdin.read()\n",
                str(clickhouse),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"

        prefix, token = collector_of(platform, deployment["id"])
        tag = f"e2e-ch-{uuid.uuid4().hex[:8]}"
        for n in range(20):
            response = httpx.post(
                f"{prefix}/logs/publish",
                json=log_batch(tag, n * 25, 25),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        waiting = sorted(p for p in (root / "data" / "files" / "logs").rglob("*.jsonl"))
        assert len(waiting) >= 20

        env = {**platform.env(), "MASTRA_ADMIN_OBSERVABILITY__PROVIDER": "clickhouse"}
        failed = subprocess.run(
            [*CLI, "ingest", "--once"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert failed.returncode != 0
        assert "another process may be using it" in failed.stderr, failed.stderr[-2000:]
        still = sorted(p for p in (root / "data" / "files" / "logs").rglob("*.jsonl"))
        assert [p.name for p in still] == [p.name for p in waiting]

        holder.communicate(input="", timeout=30)
        drained = subprocess.run(
            [*CLI, "ingest", "--once"],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert drained.returncode == 0, drained.stdout + drained.stderr[-2000:]
        left = [
            p
            for p in (root / "data" / "files" / "logs").rglob("*.jsonl")
            if "processed" not in p.parts
        ]
        assert left == []
        [[rows, distinct]] = chdb_query(
            clickhouse,
            f"SELECT count(), uniqExact(message) FROM mastra_admin.mastra_admin_logs WHERE message LIKE '{tag} %'",
        )
        assert (int(rows), int(distinct)) == (500, 500)
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        platform.close()
        if root.exists():
            remove_root(root)
