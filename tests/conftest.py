"""The whole platform as a user runs it, shared by the tests that need every adapter.

``platform`` is ``mastra-admin serve`` as a real process (``ServedPlatform`` from
``_platform.py``): embedded PostgreSQL, embedded ClickHouse (chDB), the local
source, runner and router on free ports, fixture Mastra projects under
``PROJECTS_DIR`` (one that serves, one that never turns healthy, one the source
reports as invalid) and an enterprise licence, so that a session of tests is not
held by the community tier's limits. It is ready when ``/ready`` answers 200. At the
end every deployment is stopped through the API, the process gets SIGTERM and must
exit with 0, and no server process may be left behind.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mastra_admin.core.licence import generate_keypair, issue_licence
from mastra_admin.core.testing.runner import leftover_processes

from ._platform import ServedPlatform, new_root, wait_for, write_projects

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
FIXTURE_PROJECTS = {"weather-agent": "ok", "sleepy-agent": "never_healthy"}


def write_invalid_project(projects_dir: Path) -> None:
    """A package that depends on Mastra but has no Mastra entry file."""
    broken = projects_dir / "broken-agent"
    broken.mkdir(parents=True)
    package = {"name": "broken-agent", "version": "0.1.0", "dependencies": {"@mastra/core": "^1"}}
    (broken / "package.json").write_text(json.dumps(package), encoding="utf-8")


def licence_env() -> dict[str, str]:
    private, public = generate_keypair()
    key = issue_licence(private, {"tier": "enterprise", "organisation": "MastraAdmin tests"})
    return {"MASTRA_ADMIN_LICENCE_KEY": key, "MASTRA_ADMIN_LICENCE_PUBLIC_KEY": public}


def _ready(platform: ServedPlatform) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{platform.url}/ready", timeout=5).status_code == 200
    return False


def _start_platform() -> ServedPlatform:
    """Start on fresh ports; a port taken between choosing and binding it means a retry."""
    for _attempt in range(3):
        root = new_root("mastra-admin-ui-")
        projects = write_projects(root / "projects", FIXTURE_PROJECTS)
        write_invalid_project(projects)
        platform = ServedPlatform(root, projects, env=licence_env())
        try:
            platform.start()
        except AssertionError:
            taken = "address already in use" in platform.log_tail()
            platform.close()
            if taken:
                continue
            raise
        wait_for("/ready", lambda p=platform: _ready(p), timeout=60)
        return platform
    raise AssertionError("no free ports for the platform after three tries")


def _stop_deployments(platform: ServedPlatform) -> None:
    """Stop every deployment through the API, as an operator would before shutting down."""
    for team in platform.get("/api/teams"):
        projects = platform.get(f"/api/teams/{team['id']}/projects", params={"limit": 500})
        for project in projects["items"]:
            for deployment in platform.get(f"/api/projects/{project['id']}/deployments"):
                if deployment["status"] != "stopped":
                    platform.request("POST", f"/api/deployments/{deployment['id']}/stop")


@pytest.fixture(scope="session")
def platform() -> Iterator[ServedPlatform]:
    """``mastra-admin serve`` with every default adapter, for the whole session."""
    served = _start_platform()
    root = served.root
    try:
        yield served
        _stop_deployments(served)
        code = served.stop()
        assert code == 0, f"mastra-admin serve exited with {code}:\n{served.log_tail()}"
        left = wait_for_nothing_left(root)
        assert not left, f"processes outlived the platform: {left}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "platform.log").write_text("".join(served.output), encoding="utf-8")
        served.close()


def wait_for_nothing_left(root: Path, timeout: float = 10.0) -> list[str]:
    """Processes still running under ``root`` once reaping had a moment."""
    with contextlib.suppress(AssertionError):
        wait_for("no process left", lambda: not leftover_processes(root), timeout=timeout)
    return leftover_processes(root)
