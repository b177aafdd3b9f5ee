"""Property-based requests over the whole OpenAPI document of the real platform
(embedded PostgreSQL and ClickHouse, local source, runner and router), with
schemathesis's default checks: no 5xx; every status, header and body as documented;
schema-valid requests accepted and schema-violating ones refused; no answer without a
token; 405 with a true ``Allow``; a deleted resource gone.

What it leaves out, each with its reason, is listed below (``EXCLUDED_PATHS``,
``CHECKS_OFF``) and in ``packages/admin-server/tests/schemathesis_hooks.py``
(``UNSTATED_RULES``: the rules on a request that JSON Schema cannot state, which the
document gives in words).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._platform import served

pytestmark = pytest.mark.slow

HOOKS = Path(__file__).resolve().parents[1] / "packages/admin-server/tests/schemathesis_hooks.py"

EXCLUDED_PATHS: dict[str, str] = {
    "^/api/collector/": "The collector takes a deployment's own token, not a user's: every"
    " request here would be 401. Its input is tested in the server's test_collector.py.",
    "/logs/stream$": "An SSE stream runs until its build ends; tested with real clients.",
    "/(deploy|restart|rollback)$": "Each would start a real npm build; the build flow has"
    " its own tests, and the server's schemathesis run covers these routes.",
}
"""Path regexes left out of the run, with why."""

CHECKS_OFF: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/projects/{project_id}/env/reveal"): {
        "allow_header_conformance": "DELETE /api/projects/{project_id}/env/{key} serves the"
        " env var named 'reveal' at this URL, so Allow rightly names DELETE too, which the"
        " document gives under the templated path.",
    },
    ("POST", "/api/teams/{team_id}/role-assignments"): {
        "ensure_resource_availability": "Its 404 can be for the project the body names"
        " (resource_id), while the check takes any 404 after POST /api/teams for the team"
        " the path names.",
    },
    ("POST", "/api/teams/{team_id}/role-assignments/remove"): {
        "ensure_resource_availability": "As for role-assignments: a 404 for the role, user"
        " or project the body names is not the team missing.",
    },
}
"""(method, path) -> {check: why it cannot hold there}."""

PINNED_CHECKS_OFF = {
    "ensure_resource_availability": "The DELETEs of the run's own team, project, deployment"
    " and token act on throwaway ones (below), pinned in schemathesis.toml; the check takes"
    " a pinned parameter for one a preceding POST returned, and reads the second DELETE of"
    " a throwaway as a created resource gone missing.",
}
"""Checks off on the operations whose parameters are pinned, with why."""


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def _config(doomed: dict[tuple[str, str], dict[str, str]]) -> str:
    """``schemathesis.toml``: the checks off per operation, and the resources that the
    DELETE of a team, a project, a deployment and a token of mine act on."""
    blocks: list[str] = []
    for (method, path), checks in CHECKS_OFF.items():
        lines = [f"include-method = {_toml(method)}", f"include-path = {_toml(path)}"]
        lines += [f"checks.{check}.enabled = false" for check in checks]
        blocks.append("\n".join(["[[operations]]", *lines]))
    for (method, path), parameters in doomed.items():
        lines = [f"include-method = {_toml(method)}", f"include-path = {_toml(path)}"]
        lines.append(f"parameters = {_toml(parameters)}")
        lines += [f"checks.{check}.enabled = false" for check in PINNED_CHECKS_OFF]
        blocks.append("\n".join(["[[operations]]", *lines]))
    return "\n\n".join(blocks) + "\n"


def test_the_platform_is_what_its_document_says(tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable is not None, "schemathesis is a test dependency of mastra-admin-server"
    # The run sends thousands of requests without a token or with a wrong one on purpose
    # and expects 401 to each; the failed sign-in limiter would answer 429 after a few.
    with served(env={"MASTRA_ADMIN_SERVER_AUTH_FAILURE_LIMIT": str(10**9)}) as platform:
        team = platform.post("/api/teams", {"name": "Fuzz"})
        sources = platform.get(f"/api/sources/projects?team_id={team['id']}")
        project = platform.post(
            f"/api/teams/{team['id']}/projects", {"name": "Weather", "source_id": sources[0]["id"]}
        )
        platform.post(f"/api/projects/{project['id']}/deployments", {"type": "production"})
        # What the DELETEs of the run's own team, project, deployment and token would
        # remove instead: the rest of the run would have nothing left to test, or no token.
        doomed_team = platform.post("/api/teams", {"name": "Doomed"})
        doomed_project = platform.post(
            f"/api/teams/{team['id']}/projects",
            {"name": "Doomed", "source_id": sources[-1]["id"]},
        )
        doomed_deployment = platform.post(
            f"/api/projects/{project['id']}/deployments", {"type": "staging"}
        )
        doomed_token = platform.post("/api/me/tokens", {"name": "doomed"})["token"]
        doomed = {
            ("DELETE", "/api/teams/{team_id}"): {"team_id": doomed_team["id"]},
            ("DELETE", "/api/projects/{project_id}"): {"project_id": doomed_project["id"]},
            ("DELETE", "/api/deployments/{deployment_id}"): {
                "deployment_id": doomed_deployment["id"]
            },
            ("DELETE", "/api/me/tokens/{token_id}"): {"token_id": doomed_token["id"]},
        }
        (tmp_path / "schemathesis.toml").write_text(_config(doomed))
        excluded = [arg for regex in EXCLUDED_PATHS for arg in ("--exclude-path-regex", regex)]
        result = subprocess.run(
            [
                executable,
                "run",
                f"{platform.url}/api/openapi.json",
                "--max-examples",
                "6",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--header",
                f"Authorization: Bearer {platform.token}",
                *excluded,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        )
        text = result.stdout + result.stderr
        assert result.returncode == 0, text.split("SUMMARY")[0][-12000:]
        assert re.search(r"Tested: [1-9][0-9]", text), text[-3000:]
        assert platform.running, platform.log_tail()
