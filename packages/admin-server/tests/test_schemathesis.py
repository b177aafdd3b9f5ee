"""Property-based requests over the whole OpenAPI document: no response is a 5xx.

Schemathesis runs as a real client (its CLI, in a subprocess) against the app served
on a real socket, signed in as the team's owner so that requests reach the handlers.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import CreateDeployment, CreateProject
from mastra_admin.core.models import DeploymentType

from .conftest import World


async def test_no_operation_answers_with_a_server_error(
    admin: MastraAdmin, world: World, live_url: str, tmp_path: Path
) -> None:
    owner = world.owner.user.id
    project = await admin.create_project(
        owner, world.team_id, CreateProject(name="Weather", source_id="weather-agent")
    )
    await admin.create_deployment(
        owner, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable is not None, "schemathesis is a test dependency of mastra-admin-server"
    process = await asyncio.create_subprocess_exec(
        executable,
        "run",
        f"{live_url}/api/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "8",
        "--generation-deterministic",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {world.owner.token}",
        # The collector has its own token; its bad-input answers are tested on their own.
        "--exclude-path-regex",
        "^/api/collector/",
        # A stream runs until its build ends; it is tested with real clients.
        "--exclude-path-regex",
        "/logs/stream$",
        # These tests' admin has no observability backend, so those answer 503 by design;
        # tests/test_api_schemathesis.py covers them on the real platform with ClickHouse.
        "--exclude-path-regex",
        "/(traces|spans|logs|metrics|scores|feedback|timeseries)(/|$)",
        # Deleting the team or the caller's own membership ends the run's access early.
        "--exclude-method",
        "DELETE",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    text = output.decode(errors="replace")
    failures = text.split("SUMMARY")[0][-12000:]
    assert process.returncode == 0, failures
    assert re.search(r"Tested: [1-9][0-9]", text), text[-3000:]
    assert re.search(r"\d+ generated, \d+ passed", text), text[-3000:]
