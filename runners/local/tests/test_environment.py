"""A started server's environment is exactly the contract (read from /proc)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mastra_admin.core.models import ProjectSettings
from mastra_admin.core.testing.runner import LogCollector
from mastra_admin.runners.local import SERVER_ENV_ALLOW, LocalProcessRunner
from mastra_admin.runners.local._sandbox import LISTEN_SHIM

from .conftest import BuiltProject

pytestmark = pytest.mark.slow


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if item]
    return {k.decode(): v.decode() for k, v in pairs}


@pytest.fixture
def admin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin's own variables that must never reach a deployed server."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:hunter2@127.0.0.1/admin")
    monkeypatch.setenv("MASTRA_ADMIN_ENCRYPTION_KEY", "admin-key")
    monkeypatch.setenv("NODE_OPTIONS", "--inspect")  # the admin's, not the project's
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")


@pytest.mark.parametrize("node_options", [None, "--max-old-space-size=256"])
async def test_environment_is_exactly_the_contract(
    make_runner: Callable[..., LocalProcessRunner],
    built_project: BuiltProject,
    admin_environment: None,
    node_options: str | None,
) -> None:
    runner = make_runner()
    project_env = {
        "OPENAI_API_KEY": "sk-project",
        "MASTRA_CLOUD_ACCESS_TOKEN": "mac_token",
        "MASTRA_CLOUD_TRACES_ENDPOINT": "http://127.0.0.1:9/api/collector/d/spans/publish",
        "PATH": os.environ["PATH"],  # a project may set PATH; its value wins
    }
    ctx = built_project.context(
        env=project_env, settings=ProjectSettings(node_options=node_options)
    )
    assert built_project.artifact is not None
    server = await runner.start(ctx, built_project.artifact, LogCollector())
    try:
        assert server.process_id is not None
        environ = proc_environ(server.process_id)
        observability = Path(built_project.artifact.path) / "observability"
        expected = {k: os.environ[k] for k in SERVER_ENV_ALLOW if k in os.environ}
        expected.update(ctx.env)
        expected.update(
            {
                "PORT": str(server.port),
                "MASTRA_HOST": "127.0.0.1",
                "HOME": str(runner.sandbox.home(ctx.deployment.id)),
                "MASTRA_CLOUD_TRACES_TARGET_DIR": str(observability / "spans"),
                "MASTRA_RUNNER_LOGS_TARGET_DIR": str(observability / "logs"),
            }
        )
        shim = f"--require={LISTEN_SHIM}"
        expected["NODE_OPTIONS"] = f"{shim} {node_options}" if node_options else shim
        expected["MASTRA_LISTEN_FD"] = environ["MASTRA_LISTEN_FD"]
        assert int(environ["MASTRA_LISTEN_FD"]) > 2
        assert environ == expected
    finally:
        await runner.stop(server, grace_s=2)


async def test_build_steps_see_the_project_env_but_not_the_admins_secrets(
    make_runner: Callable[..., LocalProcessRunner],
    built_project: BuiltProject,
    admin_environment: None,
) -> None:
    runner = make_runner()
    ctx = built_project.context(env={"FEATURE": "on"})
    env = runner.build_env(ctx)
    assert env["FEATURE"] == "on"
    assert env["PATH"] == os.environ["PATH"]
    assert "DATABASE_URL" not in env
    assert "MASTRA_ADMIN_ENCRYPTION_KEY" not in env
    assert "NODE_OPTIONS" not in env
