"""The ``mastra-admin`` command line, run as a real process with the default set of
adapters (so here, beside the other tests of the whole platform, not in the server's
own tests: the server alone has no source, runner or router to compose)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._platform import free_port

CLI = [sys.executable, "-m", "mastra_admin.server"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MASTRA_ADMIN_") or k.startswith("MASTRA_ADMIN_TEST_")
    }
    for alias in ("DATABASE_URL", "CLICKHOUSE_URL", "PROJECTS_DIR", "ADMIN_PORT", "PROXY_PORT"):
        env.pop(alias, None)
    env.update(
        {
            "MASTRA_ADMIN_DATA_DIR": str(tmp_path / "data"),
            "PROJECTS_DIR": str(tmp_path / "projects"),
            "MASTRA_ADMIN_PORT": str(free_port()),
            "MASTRA_ADMIN_COLLECTOR_PORT": str(free_port()),
            "MASTRA_ADMIN_ROUTER__PORT": str(free_port()),
            **extra,
        }
    )
    (tmp_path / "projects").mkdir(exist_ok=True)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_help_lists_the_built_in_and_plugin_commands(tmp_path: Path) -> None:
    result = _run(["--help"], _env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "worker", "migrate", "users", "tokens", "licence", "doctor"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.M), command


def test_licence_show_without_a_key_is_the_community_tier(tmp_path: Path) -> None:
    result = _run(["licence", "show"], _env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"tier: community", result.stdout)


def test_bad_settings_are_a_message_and_exit_1(tmp_path: Path) -> None:
    result = _run(["licence", "show"], _env(tmp_path, MASTRA_ADMIN_PORT="not-a-port"), tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "port" in (result.stderr + result.stdout).lower()


def test_users_and_tokens_against_a_database(tmp_path: Path, pg_database_url: str) -> None:
    env = _env(tmp_path, DATABASE_URL=pg_database_url)
    created = _run(
        ["users", "create", "--email", "ops@example.com", "--platform-admin"], env, tmp_path
    )
    assert created.returncode == 0, created.stderr
    assert "API token (shown once): mat_" in created.stdout
    listed = _run(["users", "list"], env, tmp_path)
    assert "ops@example.com" in listed.stdout
    token = _run(["tokens", "create", "--email", "ops@example.com", "--name", "ci"], env, tmp_path)
    assert token.returncode == 0, token.stderr
    token_id = re.search(r"^token (\S+)", token.stdout, re.M)
    assert token_id is not None
    revoked = _run(["tokens", "revoke", token_id.group(1)], env, tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    unknown = _run(
        ["tokens", "create", "--email", "nobody@example.com", "--name", "x"], env, tmp_path
    )
    assert unknown.returncode == 1
    assert "no user with email nobody@example.com" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_doctor_gives_a_verdict_per_check(tmp_path: Path, pg_database_url: str) -> None:
    good = _run(["doctor"], _env(tmp_path, DATABASE_URL=pg_database_url), tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    for check in ("config", "node", "npm", "api port", "collector port", "database", "clickhouse"):
        assert re.search(rf"^ok\s+{check}\b", good.stdout, re.M), (check, good.stdout)
    # This machine's Node.js 20 is older than Mastra 1.71 needs: a warning, not a failure.
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    old_node = int(node.lstrip("v").split(".")[0]) < 22
    assert bool(re.search(r"^warn\s+node version\s+Mastra 1.71 needs", good.stdout, re.M)) == (
        old_node
    ), good.stdout
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=2"
    bad = _run(["doctor"], _env(tmp_path, DATABASE_URL=dead), tmp_path)
    assert bad.returncode == 1
    assert re.search(r"^FAIL\s+database\b", bad.stdout, re.M), bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def _serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def served(
    tmp_path: Path, pg_database_url: str
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = _env(tmp_path, DATABASE_URL=pg_database_url)
    process = _serve(env, tmp_path)
    try:
        yield process, env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 120) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("serve exited:\n" + "".join(lines))
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError("timed out:\n" + "".join(lines))


def test_serve_prints_the_token_once_and_stops_cleanly_on_sigterm(
    served: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    process, env = served
    output = "".join(_read_until(process, r"Press Ctrl\+C"))
    token = re.search(r"^\s+(mat_\S+)$", output, re.M)
    assert token is not None, output
    url = f"http://127.0.0.1:{env['MASTRA_ADMIN_PORT']}"
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    me = httpx.get(f"{url}/api/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "admin@example.com"
    assert httpx.get(f"{url}/ready").status_code == 200
    collector = f"http://127.0.0.1:{env['MASTRA_ADMIN_COLLECTOR_PORT']}"
    assert f"Deployed servers post telemetry to {collector}" in output
    assert httpx.get(f"{collector}/health").status_code == 200
    assert httpx.post(f"{collector}/api/collector/d/spans/publish").status_code == 401
    assert httpx.get(f"{collector}/api/me", headers=headers).status_code == 404
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert process.stdout is not None
    rest = process.stdout.read()
    assert "Traceback" not in rest

    again = _serve(env, tmp_path)
    try:
        second = "".join(_read_until(again, r"Press Ctrl\+C"))
        assert "mat_" not in second, "the bootstrap token is shown at first start only"
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=60) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()


def test_users_and_tokens_work_while_serve_runs_on_the_same_data_dir(
    served: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    # They compose only storage: no router port, no observability engine to share.
    process, env = served
    _read_until(process, r"Press Ctrl\+C")
    created = _run(["users", "create", "--email", "ops@example.com"], env, tmp_path)
    assert created.returncode == 0, created.stdout + created.stderr
    token = _run(["tokens", "create", "--email", "ops@example.com", "--name", "ci"], env, tmp_path)
    assert token.returncode == 0, token.stdout + token.stderr
    raw = re.search(r"API token \(shown once\): (mat_\S+)", token.stdout)
    assert raw is not None, token.stdout
    url = f"http://127.0.0.1:{env['MASTRA_ADMIN_PORT']}"
    me = httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {raw.group(1)}"})
    assert me.status_code == 200
    assert me.json()["email"] == "ops@example.com"
    assert process.poll() is None, "serve keeps running"
