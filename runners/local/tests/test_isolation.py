"""Attacks from a deployment's own code, each of which must fail in the sandbox.

A hostile project runs ``hostile/attack.mjs`` from its ``postinstall`` script, from its
build step and from its server. Each tries to read the platform's key and the
database's files, another deployment's build and the environment of its server, to
write into that build, to connect to the platform's loopback services and to that
server, and to kill it. Every attempt fails, the canaries are unchanged, and the
listeners it aimed at saw no connection; the same script run outside the sandbox
succeeds, so the attacks are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from mastra_admin.core.errors import BuildFailed
from mastra_admin.core.models import ProjectSettings, RunningServer
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import LogCollector, leftover_processes, make_build_context
from mastra_admin.runners.local import LocalProcessRunner

pytestmark = pytest.mark.slow

ATTACK = Path(__file__).parent / "hostile" / "attack.mjs"
STAGES = ("install", "build", "server")
KEY = "MASTER-KEY-do-not-leak"
CANARY = "victim canary"


class Listener:
    """A loopback TCP service standing in for one of the platform's (it answers HTTP)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(reader.read(4096), 2)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def listeners() -> AsyncIterator[dict[str, Listener]]:
    found = {name: Listener() for name in ("api", "postgres", "collector")}
    for listener in found.values():
        await listener.start()
    yield found
    for listener in found.values():
        await listener.close()


def hostile_project(root: Path, targets: dict[str, Any]) -> Path:
    project = write_mastra_project(root, name="hostile")
    shutil.copy(ATTACK, project / "attack.mjs")
    (project / "targets.json").write_text(json.dumps(targets), encoding="utf-8")
    package = json.loads((project / "package.json").read_text())
    package["scripts"]["postinstall"] = "node attack.mjs install"
    (project / "package.json").write_text(json.dumps(package), encoding="utf-8")
    lock = json.loads((project / "package-lock.json").read_text())
    lock["packages"][""]["hasInstallScript"] = True
    (project / "package-lock.json").write_text(json.dumps(lock), encoding="utf-8")
    return project


def results(build_dir: Path, stage: str) -> list[dict[str, Any]]:
    path = build_dir / "src" / "attack-results" / f"{stage}.json"
    assert path.is_file(), f"the {stage} attack did not run"
    found: list[dict[str, Any]] = json.loads(path.read_text())
    return found


async def test_a_deployments_code_reaches_nothing_outside_its_sandbox(
    make_runner: Callable[..., LocalProcessRunner],
    tmp_path: Path,
    listeners: dict[str, Listener],
) -> None:
    runner = make_runner()
    data = tmp_path / "data"
    (data / "postgres").mkdir(parents=True)
    key_file = data / "encryption.key"
    key_file.write_text(KEY)
    (data / "postgres" / "PG_VERSION").write_text("18\n")

    victim_ctx = make_build_context(write_mastra_project(tmp_path / "victim", name="victim"))
    victim_ctx.env["VICTIM_SECRET"] = "sk-victim-secret"
    victim_artifact = await runner.build(victim_ctx, LogCollector())
    victim = await runner.start(victim_ctx, victim_artifact, LogCollector())
    try:
        victim_src = Path(victim_artifact.path) / "src"
        canary = victim_src / "canary.txt"
        canary.write_text(CANARY)
        assert victim.process_id is not None
        targets = {
            "read": {
                "the key": str(key_file),
                "the database's files": str(data / "postgres" / "PG_VERSION"),
                "another deployment's build": str(victim_src / "package.json"),
                "another server's environment": f"/proc/{victim.process_id}/environ",
            },
            "write": {"another deployment's build": str(canary)},
            "pids": {"another server": victim.process_id},
            "connect": {
                "the API": listeners["api"].server.sockets[0].getsockname()[1],  # type: ignore[union-attr]
                "PostgreSQL": listeners["postgres"].server.sockets[0].getsockname()[1],  # type: ignore[union-attr]
                "another server": victim.port,
            },
            "allowed": {
                "the collector": listeners["collector"].server.sockets[0].getsockname()[1],  # type: ignore[union-attr]
            },
        }
        project = hostile_project(tmp_path / "hostile", targets)
        collector = targets["allowed"]["the collector"]
        ctx = make_build_context(
            project,
            env={"MASTRA_CLOUD_TRACES_ENDPOINT": f"http://127.0.0.1:{collector}/c/spans/publish"},
            settings=ProjectSettings(
                build_command=[
                    "/bin/sh",
                    "-c",
                    "node attack.mjs build && npm exec --no -- mastra build",
                ],
                start_command=[
                    "node",
                    "attack.mjs",
                    "server",
                    "--then",
                    ".mastra/output/index.mjs",
                ],
            ),
        )
        artifact = await runner.build(ctx, LogCollector())
        server = await runner.start(ctx, artifact, LogCollector())
        try:
            build_dir = Path(artifact.path)
            for stage in STAGES:
                attempts = results(build_dir, stage)
                controls = [a for a in attempts if a["control"]]
                attacks = [a for a in attempts if not a["control"]]
                assert controls, stage
                assert all(a["ok"] for a in controls), (stage, controls)
                assert len(attacks) == 10, (stage, attacks)
                succeeded = [a for a in attacks if a["ok"]]
                assert not succeeded, f"{stage}: {succeeded}"
            assert listeners["api"].connections == 0
            assert listeners["postgres"].connections == 0
            assert listeners["collector"].connections >= 1, "a server reaches its collector"
            assert key_file.read_text() == KEY
            assert canary.read_text() == CANARY
            assert await runner.is_alive(victim)
            assert (await runner.stats(victim)).healthy
            if os.geteuid() == 0:
                uids = {
                    psutil.Process(s.process_id).uids().real
                    for s in (victim, server)
                    if s.process_id is not None
                }
                assert len(uids) == 2, "each deployment has a uid of its own"
                assert 0 not in uids, "never root"
        finally:
            await runner.stop(server, grace_s=2)
    finally:
        await runner.stop(victim, grace_s=2)


async def test_the_same_attacks_succeed_outside_a_sandbox(
    tmp_path: Path, listeners: dict[str, Listener]
) -> None:
    """The attack script is real: run as a plain process it reads the key, sees and
    reads a process's environment and reaches the loopback services."""
    key_file = tmp_path / "encryption.key"
    key_file.write_text(KEY)
    bystander = subprocess.Popen(["sleep", "30"], env={"BYSTANDER": "1"})
    try:
        targets = {
            "read": {
                "the key": str(key_file),
                "a process's environment": f"/proc/{bystander.pid}/environ",
            },
            "pids": {"a process": bystander.pid},
            "connect": {
                name: listener.server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                for name, listener in listeners.items()
            },
        }
        project = hostile_project(tmp_path / "hostile", targets)
        completed = await asyncio.create_subprocess_exec(
            "node",
            "attack.mjs",
            "control",
            cwd=project,
            env={**os.environ, "ATTACK_NO_SIGNAL": "1"},
        )
        assert await completed.wait() == 0
        attempts = json.loads((project / "attack-results" / "control.json").read_text())
        attacks = {a["name"]: a for a in attempts if not a["control"]}
        assert set(attacks) == {
            "read the key",
            "read a process's environment",
            "see process a process",
            "connect api",
            "connect postgres",
            "connect collector",
        }
        assert [(n, a["detail"]) for n, a in attacks.items() if not a["ok"]] == []
        assert attacks["read the key"]["detail"] == KEY
        assert all(listener.connections == 1 for listener in listeners.values())
    finally:
        bystander.kill()
        bystander.wait()


async def test_a_server_listens_on_the_hosts_loopback_only(
    make_runner: Callable[..., LocalProcessRunner], built_project: Any
) -> None:
    """The router cannot be bypassed: the port a server is reached at is bound on
    127.0.0.1 only, whatever the server itself binds inside its sandbox."""
    runner = make_runner()
    server: RunningServer = await runner.start(
        built_project.context(), built_project.artifact, LogCollector()
    )
    try:
        bound = [
            c.laddr
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
        ]
        assert bound, "something listens on the server's port"
        assert {address.ip for address in bound} == {"127.0.0.1"}
    finally:
        await runner.stop(server, grace_s=2)


async def test_no_sandbox_means_no_build_never_an_unisolated_one(
    make_runner: Callable[..., LocalProcessRunner], tmp_path: Path
) -> None:
    runner = make_runner(bwrap_path=str(tmp_path / "no-bwrap"))
    ctx = make_build_context(write_mastra_project(tmp_path / "p"))
    with pytest.raises(BuildFailed) as caught:
        await runner.build(ctx, LogCollector())
    assert caught.value.step == "isolation"
    assert "no-bwrap" in caught.value.message
    assert 'runner.isolation = "none"' in caught.value.message
    assert not (runner.builds_dir / ctx.build.id / "src" / "node_modules").exists()


_BUILD_FOREVER = """
import asyncio, shutil, sys
from pathlib import Path
from mastra_admin.core.source import ProjectSourceProvider
from mastra_admin.core.testing.runner import LogCollector, leftover_processes, make_build_context
from mastra_admin.runners.local import LocalProcessRunner, LocalRunnerSettings

class Copy(ProjectSourceProvider):
    type = "local"
    async def list_projects(self, team_id=None): return []
    async def get_project(self, source_id): raise LookupError(source_id)
    async def validate_access(self, source): return True
    async def get_project_path(self, source, target_dir):
        shutil.copytree(source.path, target_dir, dirs_exist_ok=True)
        return target_dir

root = Path(sys.argv[1])
runner = LocalProcessRunner(
    Copy(), LocalRunnerSettings(builds_dir=root / "builds"), data_dir=root / "data"
)
asyncio.run(runner.build(make_build_context(root / "project"), LogCollector()))
"""


def _networks() -> set[int]:
    return {
        p.pid
        for p in psutil.process_iter(["name"])
        if (p.info["name"] or "").startswith(("pasta", "passt"))
    }


async def test_a_platform_killed_mid_build_leaves_no_sandbox_behind(tmp_path: Path) -> None:
    """The build step's sandbox and its pasta die with the process that ran them."""
    write_mastra_project(tmp_path / "project", variant="hangs_at_build")
    (tmp_path / "build.py").write_text(_BUILD_FOREVER)
    before = _networks()
    platform = await asyncio.create_subprocess_exec(
        sys.executable,
        str(tmp_path / "build.py"),
        str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(60):
            while not (_networks() - before) or not leftover_processes(tmp_path / "builds"):
                await asyncio.sleep(0.1)
    finally:
        platform.kill()
        await platform.wait()
    async with asyncio.timeout(10):
        while (_networks() - before) or leftover_processes(tmp_path / "builds"):
            await asyncio.sleep(0.1)
