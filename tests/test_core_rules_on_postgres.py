"""The core's business rules, proven again on real PostgreSQL.

``packages/admin/tests`` runs every business operation on in-memory storage; with
``MASTRA_ADMIN_TEST_STORAGE=pg`` its fixtures give each ``MastraAdmin`` a new
database on the pg plugin's test server instead (the embedded PostgreSQL, or the
server ``MASTRA_ADMIN_TEST_DATABASE_URL`` names). This runs those suites that way,
in a pytest of their own, and fails with its report when any rule breaks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = [
    "test_admin_users.py",
    "test_admin_teams.py",
    "test_admin_roles.py",
    "test_admin_projects.py",
    "test_admin_deployments.py",
    "test_admin_domains.py",
    "test_rbac.py",
]


@pytest.mark.slow
def test_business_rules_hold_on_postgres() -> None:
    tests = ROOT / "packages" / "admin" / "tests"
    env = {**os.environ, "MASTRA_ADMIN_TEST_STORAGE": "pg"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            *(str(tests / suite) for suite in SUITES),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert " passed" in summary[0]
    assert "failed" not in summary[0]
