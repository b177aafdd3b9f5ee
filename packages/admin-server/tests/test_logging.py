"""Logs an operator can ship: JSON one event per line (time, level, logger, request
id), readable console lines otherwise, no debug lines unless asked for."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.log_config import LogSettings, configure_logging
from mastra_admin.server.app import create_app
from mastra_admin.server.settings import ServerSettings

CLI = [sys.executable, "-m", "mastra_admin.server"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put structlog's back after."""
    previous = structlog.get_config()
    yield
    structlog.configure(**previous)
    logging.getLogger().handlers = []


async def test_a_requests_events_carry_its_request_id(
    admin: MastraAdmin, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging(LogSettings(format="json"), out)
    app = create_app(admin, settings=ServerSettings(ui=False, ingestion=False))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://admin.test"
    ) as http:
        response = await http.get("/api/me", headers={"Authorization": "Bearer mat_wrong"})
    assert response.status_code == 401
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    failed = [e for e in events if e["event"] == "auth.failed"]
    assert failed, events
    assert failed[0]["request_id"] == response.headers["x-request-id"]
    assert failed[0]["logger"] == "mastra_admin.server.auth"
    assert failed[0]["level"] == "info"
    assert failed[0]["timestamp"].endswith("Z")


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MASTRA_ADMIN_")}
    clean.update(env or {})
    return subprocess.run(
        [*CLI, "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=clean,
        check=False,
    )


@pytest.mark.slow
def test_commands_log_json_line_by_line_and_console_without_debug(tmp_path: Path) -> None:
    """A real command (its embedded PostgreSQL starts and stops and logs about it)."""
    made = _run(tmp_path, "--log-format", "json", "users", "create", "--email", "a@example.com")
    assert made.returncode == 0, made.stderr
    assert "API token (shown once)" in made.stdout  # what the command prints stays on stdout
    lines = made.stderr.splitlines()
    assert lines, "the command logged nothing"
    for line in lines:
        event = json.loads(line)
        assert {"timestamp", "level", "logger", "event"} <= event.keys(), event
        assert event["level"] != "debug"

    debug = _run(
        tmp_path,
        "users",
        "list",
        env={"MASTRA_ADMIN_LOG__FORMAT": "json", "MASTRA_ADMIN_LOG__LEVEL": "debug"},
    )
    assert debug.returncode == 0, debug.stderr
    levels = {json.loads(line)["level"] for line in debug.stderr.splitlines()}
    assert "debug" in levels

    console = _run(tmp_path, "users", "list")
    assert console.returncode == 0, console.stderr
    assert "a@example.com" in console.stdout
    assert console.stderr.strip(), "the console logged nothing"
    assert "[debug" not in console.stderr
    assert not console.stderr.lstrip().startswith("{")
