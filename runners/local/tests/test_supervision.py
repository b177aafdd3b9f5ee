"""Running servers: two at once, recovery by another runner, captured output, ports."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from mastra_admin.core.errors import BuildFailed
from mastra_admin.core.runner import ServerExit
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import LogCollector, make_build_context
from mastra_admin.runners.local import LocalProcessRunner

from .conftest import BuiltProject, port_block

pytestmark = pytest.mark.slow


def generate(host: str, port: int, text: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://{host}:{port}/api/agents/weather/generate",
        data=json.dumps({"messages": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


async def test_two_builds_of_one_project_at_once(
    local_runner: LocalProcessRunner, tmp_path: Path
) -> None:
    project = write_mastra_project(tmp_path / "twice", name="twice")
    first = make_build_context(project)
    second = make_build_context(project, deployment=first.deployment)
    logs = LogCollector(), LogCollector()
    artifacts = await asyncio.gather(
        local_runner.build(first, logs[0]), local_runner.build(second, logs[1])
    )
    assert artifacts[0].path != artifacts[1].path
    servers = [
        await local_runner.start(first, artifacts[0], logs[0]),
        await local_runner.start(second, artifacts[1], logs[1]),
    ]
    try:
        assert servers[0].port != servers[1].port
        for server in servers:
            assert (await local_runner.stats(server)).healthy
    finally:
        await asyncio.gather(*(local_runner.stop(s, grace_s=2) for s in servers))
    assert not local_runner.ports.taken


async def test_another_runner_reattaches_after_a_restart(
    make_runner: Callable[..., LocalProcessRunner], built_project: BuiltProject
) -> None:
    """The admin restarts: the server keeps running and keeps its output captured; the
    new process adopts it (same pid and start time) and can stop it."""
    assert built_project.artifact is not None
    first = make_runner()
    ctx = built_project.context()
    server = await first.start(ctx, built_project.artifact, LogCollector())
    await first.close()
    runtime = Path(built_project.artifact.path) / "observability" / "runtime"

    reply = await asyncio.to_thread(generate, server.host, server.port, "after restart")
    assert reply["text"] == "weather heard: after restart"

    second = make_runner(port_range_start=server.port, port_range_end=server.port)
    assert await second.attach(server)
    assert server.port in second.ports.taken
    stats = await second.stats(server)
    assert stats.alive
    assert stats.healthy
    assert stats.memory_usage_mb is not None

    relay_pid = server.metadata["relay_pid"]
    captured = "".join(p.read_text() for p in sorted(runtime.glob(f"stdout-*-{relay_pid}.log")))
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    assert any(line["msg"] == "agent weather generated a reply" for line in lines)
    assert all(isinstance(line["level"], int) for line in lines), "pino lines kept as they are"
    assert "\x1b[33mWARN\x1b[39m" in captured, "pino-pretty text kept as it is"

    await second.stop(server, grace_s=2)
    assert not await second.is_alive(server)
    assert not psutil.pid_exists(int(str(relay_pid))) or (
        psutil.Process(int(str(relay_pid))).status() == psutil.STATUS_ZOMBIE
    )
    assert not second.ports.taken


async def test_stats_follow_the_server(
    local_runner: LocalProcessRunner, built_project: BuiltProject
) -> None:
    assert built_project.artifact is not None
    server = await local_runner.start(
        built_project.context(), built_project.artifact, LogCollector()
    )
    try:
        for _ in range(20):
            await asyncio.to_thread(generate, server.host, server.port, "busy")
        stats = await local_runner.stats(server)
        assert stats.alive
        assert stats.healthy
        assert stats.cpu_percent is not None
        assert stats.cpu_percent >= 0
        assert stats.memory_usage_mb is not None
        assert 5 < stats.memory_usage_mb < 2048
        assert server.process_id is not None
        psutil.Process(server.process_id).kill()
        await asyncio.sleep(0.3)
        after = await local_runner.stats(server)
        assert after.alive is False
        assert after.healthy is False
    finally:
        await local_runner.stop(server, grace_s=1)


async def test_observability_meta_names_the_build(built_project: BuiltProject) -> None:
    assert built_project.ctx is not None
    assert built_project.artifact is not None
    meta = json.loads(
        (Path(built_project.artifact.path) / "observability" / "meta.json").read_text()
    )
    assert meta == {
        "project_id": built_project.ctx.project.id,
        "deployment_id": built_project.ctx.deployment.id,
        "build_id": built_project.ctx.build.id,
    }


async def test_ports_held_by_others_are_skipped(
    make_runner: Callable[..., LocalProcessRunner], built_project: BuiltProject
) -> None:
    assert built_project.artifact is not None
    start, end = port_block(3)
    runner = make_runner(port_range_start=start, port_range_end=end)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", start))
        holder.listen()
        server = await runner.start(built_project.context(), built_project.artifact, LogCollector())
        try:
            assert server.port == start + 1
        finally:
            await runner.stop(server, grace_s=2)
    assert not runner.ports.taken


async def test_port_exhaustion_is_a_clear_failure(
    make_runner: Callable[..., LocalProcessRunner], built_project: BuiltProject
) -> None:
    assert built_project.artifact is not None
    start, end = port_block(2)
    runner = make_runner(port_range_start=start, port_range_end=end)
    holders = []
    try:
        for port in (start, end):
            holder = socket.socket()
            holder.bind(("127.0.0.1", port))
            holder.listen()
            holders.append(holder)
        with pytest.raises(BuildFailed) as failed:
            await runner.start(built_project.context(), built_project.artifact, LogCollector())
    finally:
        for holder in holders:
            holder.close()
    assert failed.value.step == "start"
    assert f"all 2 ports of {start}-{end}" in failed.value.message
    assert not runner.ports.taken


async def test_prune_leaves_a_build_in_progress_alone(
    make_runner: Callable[..., LocalProcessRunner], tmp_path: Path
) -> None:
    runner = make_runner()
    hang = ["node", "-e", "console.log('installing'); setInterval(() => {}, 1000)"]
    from mastra_admin.core.models import ProjectSettings

    ctx = make_build_context(
        write_mastra_project(tmp_path / "p"), settings=ProjectSettings(install_command=hang)
    )
    log = LogCollector()
    task = asyncio.ensure_future(runner.build(ctx, log))
    await log.wait_for("installing")
    other = make_runner()  # another process's runner on the same builds folder
    assert await other.prune_artifacts(keep=[]) == []
    assert await runner.prune_artifacts(keep=[]) == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await other.prune_artifacts(keep=[]) == [ctx.build.id]


async def test_secret_values_never_reach_the_captured_output(
    local_runner: LocalProcessRunner, built_project: BuiltProject
) -> None:
    """The server prints what it likes; what the relay writes has the deployment's
    secret values masked, as build logs do."""
    assert built_project.artifact is not None
    ctx = built_project.context(secrets=["weather", "x" * 70_000])
    server = await local_runner.start(ctx, built_project.artifact, LogCollector())
    try:
        await asyncio.to_thread(generate, server.host, server.port, "is it sunny?")
    finally:
        await local_runner.stop(server, grace_s=2)
    runtime = Path(built_project.artifact.path) / "observability" / "runtime"
    relay_pid = server.metadata["relay_pid"]
    captured = "".join(p.read_text() for p in sorted(runtime.glob(f"stdout-*-{relay_pid}.log")))
    messages = [json.loads(line)["msg"] for line in captured.splitlines() if line[:1] == "{"]
    assert "agent *** generated a reply" in messages
    assert "weather" not in captured


async def test_a_server_that_dies_is_reported_as_it_happens(
    local_runner: LocalProcessRunner, built_project: BuiltProject
) -> None:
    """Killed from outside (as the kernel's OOM killer would): the runner tells its
    exit listeners at once, with how it ended, and keeps nothing of it."""
    assert built_project.artifact is not None
    exits: list[ServerExit] = []
    told = asyncio.Event()

    async def listener(exit: ServerExit) -> None:
        exits.append(exit)
        told.set()

    local_runner.add_exit_listener(listener)
    ctx = built_project.context()
    server = await local_runner.start(ctx, built_project.artifact, LogCollector())
    assert server.process_id is not None
    psutil.Process(server.process_id).kill()
    async with asyncio.timeout(10):
        await told.wait()
    [exit] = exits
    assert exit.server_id == server.id
    assert exit.deployment_id == ctx.deployment.id
    assert exit.exit_code != 0
    assert not await local_runner.is_alive(server)
    assert server.port not in local_runner.ports.taken

    # A server stopped on purpose is not reported.
    again = await local_runner.start(ctx, built_project.artifact, LogCollector())
    await local_runner.stop(again, grace_s=2)
    await asyncio.sleep(0.5)
    assert len(exits) == 1
