"""Property-based requests over the whole OpenAPI document of the real platform
(embedded PostgreSQL and ClickHouse, local source, runner and router): no response
is a 5xx.

Operations that start builds are left out: each would run a real npm build, and the
build flow has its own tests; the server's own schemathesis run covers them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._platform import served

pytestmark = pytest.mark.slow


def test_the_platform_answers_no_generated_request_with_a_server_error(tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable is not None, "schemathesis is a test dependency of mastra-admin-server"
    with served() as platform:
        team = platform.post("/api/teams", {"name": "Fuzz"})
        project = platform.post(
            f"/api/teams/{team['id']}/projects",
            {
                "name": "Weather",
                "source_id": platform.get(f"/api/sources/projects?team_id={team['id']}")[0]["id"],
            },
        )
        platform.post(f"/api/projects/{project['id']}/deployments", {"type": "production"})
        result = subprocess.run(
            [
                executable,
                "run",
                f"{platform.url}/api/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "6",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--header",
                f"Authorization: Bearer {platform.token}",
                "--exclude-path-regex",
                "^/api/collector/",
                "--exclude-path-regex",
                "/logs/stream$",
                "--exclude-path-regex",
                "/(deploy|restart|rollback)$",
                "--exclude-method",
                "DELETE",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
        text = result.stdout + result.stderr
        assert result.returncode == 0, text.split("SUMMARY")[0][-12000:]
        assert re.search(r"Tested: [1-9][0-9]", text), text[-3000:]
        assert platform.running, platform.log_tail()
