"""What containers make possible beyond the conformance suite: the server's
environment and confinement, the image per build, the collector from inside, the
attacks of docs/security.md run from the build and the server, crashes and the memory
limit reported as they happen, recovery by label, and the package manager's cache."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core import env_contract
from mastra_admin.core.env_contract import RUNNER_VARS
from mastra_admin.core.errors import BuildFailed
from mastra_admin.core.models import ProjectSettings, RunningServer
from mastra_admin.core.runner import ServerExit
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import FolderCopySource, LogCollector, make_build_context
from mastra_admin.runners.docker import DockerRunner, DockerRunnerSettings

pytestmark = pytest.mark.slow

HOSTILE = Path(__file__).parent / "hostile"
CANARY = "MASTRA_ADMIN_DOCKER_CANARY"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def hostile_project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(HOSTILE / "attack.mjs", folder / "attack.mjs")
    (folder / "package.json").write_text(
        json.dumps({"name": "hostile", "version": "1.0.0", "type": "module"}), encoding="utf-8"
    )
    return folder


HOSTILE_SETTINGS = ProjectSettings(
    build_command=["node", "attack.mjs", "build"],
    start_command=["node", "attack.mjs", "serve"],
    health_timeout_s=20,
)


@pytest.fixture
def collector() -> Iterator[tuple[int, list[str]]]:
    """A stand-in for the collector on the loopback (as the platform's listener is):
    the port and the paths it was posted to."""
    posted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], posted
    server.shutdown()
    server.server_close()


@pytest.fixture
def platform_port() -> Iterator[int]:
    """A service of the platform on the loopback that no container may reach."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


async def _container(runner: DockerRunner, server: RunningServer) -> dict[str, Any]:
    assert server.container_id
    info = await runner.engine.inspect(server.container_id)
    assert info is not None
    return info


async def test_server_container_is_confined_and_given_exactly_the_contract(
    make_runner: Callable[..., DockerRunner],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CANARY, "admin-only")
    runner = make_runner()
    project = write_mastra_project(tmp_path / "ok", name="confined")
    ctx = make_build_context(
        project,
        env={"OPENAI_API_KEY": "sk-project", "FEATURE": "on"},
        settings=ProjectSettings(memory_limit_mb=192, cpu_limit=0.5),
    )
    log = LogCollector()
    artifact = await runner.build(ctx, log)
    server = await runner.start(ctx, artifact, log)
    try:
        info = await _container(runner, server)
        config, host = info["Config"], info["HostConfig"]
        env = dict(item.split("=", 1) for item in config["Env"])
        image = await runner.engine.image(str(config["Image"]))
        assert image is not None
        image_env = {item.split("=", 1)[0] for item in image["Config"].get("Env") or []}
        for key, value in ctx.env.items():
            assert env[key] == value, key
        assert env[env_contract.HOST] == "0.0.0.0"
        assert env[env_contract.PORT] == str(runner.settings.container_port)
        extra = set(env) - set(ctx.env) - RUNNER_VARS - image_env
        assert extra <= {"HOME", "NODE_OPTIONS"}, extra
        assert CANARY not in env

        assert config["User"] == "1000:1000"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Memory"] == 192 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
        assert host["PidsLimit"] == runner.settings.pids_limit
        assert host["NetworkMode"] == runner.network_of(ctx.deployment.id)
        assert config["Healthcheck"]["Test"][0] == "CMD"
        bindings = info["NetworkSettings"]["Ports"][f"{runner.settings.container_port}/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, "published on the loopback only"
        assert not any(m.get("Source", "").endswith("docker.sock") for m in info["Mounts"])

        labels = image["Config"]["Labels"]
        assert labels["io.mastra-admin.project"] == ctx.project.id
        assert labels["io.mastra-admin.deployment"] == ctx.deployment.id
        assert labels["io.mastra-admin.build"] == ctx.build.id
        stats = await runner.stats(server)
        assert stats.alive
        assert stats.healthy
        assert stats.memory_usage_mb is not None
        assert 1 < stats.memory_usage_mb < 192
    finally:
        await runner.stop(server, grace_s=2)
        await runner.close()


async def test_the_image_holds_the_build_output_and_nothing_else(
    make_runner: Callable[..., DockerRunner], tmp_path: Path
) -> None:
    runner = make_runner()
    ctx = make_build_context(write_mastra_project(tmp_path / "lean", name="lean"))
    artifact = await runner.build(ctx, LogCollector())
    engine = runner.engine
    probe = await engine.create_container(
        f"mastra-admin-test-probe-{ctx.build.id}",
        {"Image": artifact.path, "Labels": {"io.mastra-admin.managed": "1"}},
    )
    try:

        async def exists(path: str) -> bool:
            try:
                async for _ in engine.get_archive(probe, path):
                    break
            except Exception:
                return False
            return True

        assert await exists("/app/project/.mastra/output/index.mjs")
        for gone in ("node_modules", "src", "package.json", "vendor"):
            assert not await exists(f"/app/project/{gone}"), gone
    finally:
        await engine.remove(probe)
        await runner.close()


async def test_attacks_from_the_build_and_the_server_all_fail(
    make_runner: Callable[..., DockerRunner],
    tmp_path: Path,
    collector: tuple[int, list[str]],
    platform_port: int,
) -> None:
    runner = make_runner()
    # A bystander: another team's server, whose container and port the attacker tries.
    bystander_ctx = make_build_context(write_mastra_project(tmp_path / "ok", name="bystander"))
    log = LogCollector()
    bystander = await runner.start(bystander_ctx, await runner.build(bystander_ctx, log), log)
    try:
        info = await _container(runner, bystander)
        networks = info["NetworkSettings"]["Networks"]
        bystander_ip = next(iter(networks.values()))["IPAddress"]
        gateway = next(iter(networks.values()))["Gateway"]
        port = runner.settings.container_port
        targets = [
            f"{bystander_ip}:{port}",  # the other container, directly
            f"{gateway}:{bystander.port}",  # its published port, through the host
            f"{gateway}:{platform_port}",  # a platform service on the loopback
            f"127.0.0.1:{platform_port}",
        ]
        secrets_dir = runner.state_dir.parent
        collector_port, posted = collector
        endpoint = f"http://127.0.0.1:{collector_port}/api/collector/d/spans/publish"
        ctx = make_build_context(
            hostile_project(tmp_path / "hostile"),
            env={
                "PROBE_PATHS": ",".join([str(secrets_dir), str(runner.state_dir), str(tmp_path)]),
                "PROBE_TARGETS": ",".join(targets),
                **dict.fromkeys(env_contract.COLLECTOR_ENDPOINT_VARS, endpoint),
            },
            settings=HOSTILE_SETTINGS,
        )
        log = LogCollector()
        artifact = await runner.build(ctx, log)
        line = next(x for x in log.lines if x.startswith("ATTACK_REPORT "))
        from_build = json.loads(line.removeprefix("ATTACK_REPORT "))
        server = await runner.start(ctx, artifact, log)
        try:
            from_server = json.loads(
                await asyncio.to_thread(_get, f"http://{server.host}:{server.port}/report")
            )
        finally:
            await runner.stop(server, grace_s=1)
    finally:
        await runner.stop(bystander, grace_s=1)
        await runner.close()

    for where, report in (("build", from_build), ("server", from_server)):
        assert report["uid"] == 1000, where
        assert report["capEff"] == "0000000000000000", where
        assert report["noNewPrivs"] == "1", where
        assert report["dockerSocket"] == [], where
        assert report["visiblePaths"] == [], where
        reached = {t: r for t, r in report["reached"].items() if r == "connected"}
        assert reached == {}, (where, report["reached"])
        assert report["writeEtc"] != "written", where
    assert from_server["writeRoot"] != "written", "the server's root filesystem is read-only"
    assert from_server["collectorStatus"] == 200, "the collector is reachable from inside"
    assert posted, "the post arrived at the collector on the platform's loopback"


async def test_a_crash_and_the_memory_limit_are_reported_as_they_happen(
    make_runner: Callable[..., DockerRunner], tmp_path: Path
) -> None:
    runner = make_runner()
    exits: list[ServerExit] = []
    arrived = asyncio.Event()

    async def listener(exit: ServerExit) -> None:
        exits.append(exit)
        arrived.set()

    runner.add_exit_listener(listener)
    settings = HOSTILE_SETTINGS.model_copy(update={"memory_limit_mb": 64})
    ctx = make_build_context(hostile_project(tmp_path / "crashy"), settings=settings)
    log = LogCollector()
    artifact = await runner.build(ctx, log)
    try:
        crashing = await runner.start(ctx, artifact, log)
        await asyncio.to_thread(_get, f"http://{crashing.host}:{crashing.port}/crash")
        async with asyncio.timeout(20):
            await arrived.wait()
        crash = exits[-1]
        assert crash.server_id == crashing.id
        assert crash.exit_code == 3
        assert not crash.out_of_memory
        assert any("the attack server gives up" in line for line in crash.log_tail)
        assert not await runner.is_alive(crashing)
        await runner.stop(crashing, grace_s=1)

        arrived.clear()
        hungry = await runner.start(ctx, artifact, log)
        await asyncio.to_thread(_get, f"http://{hungry.host}:{hungry.port}/oom")
        async with asyncio.timeout(30):
            await arrived.wait()
        oom = exits[-1]
        assert oom.server_id == hungry.id
        assert oom.out_of_memory, oom
        assert "memory limit" in oom.reason
        await runner.stop(hungry, grace_s=1)
    finally:
        await runner.close()


async def test_a_new_runner_reattaches_a_running_server_by_its_labels(
    make_runner: Callable[..., DockerRunner], tmp_path: Path
) -> None:
    first = make_runner()
    ctx = make_build_context(write_mastra_project(tmp_path / "kept", name="kept"))
    log = LogCollector()
    server = await first.start(ctx, await first.build(ctx, log), log)
    await first.close()  # the platform restarts: the container keeps running
    second = make_runner()
    try:
        assert await second.attach(server)
        assert (await second.stats(server)).healthy
        impostor = server.model_copy(update={"id": "someone-else"})
        assert not await second.attach(impostor), "the label names the server"
        await asyncio.to_thread(_get, f"http://{server.host}:{server.port}/")
        await second.stop(server, grace_s=1)
        assert not await second.is_alive(server)
    finally:
        await second.stop(server, grace_s=1)
        await second.close()


async def test_runtime_output_reaches_the_build_folder_masked(
    make_runner: Callable[..., DockerRunner], tmp_path: Path
) -> None:
    runner = make_runner()
    secret = "sk-runtime-0123456789"
    ctx = make_build_context(
        hostile_project(tmp_path / "talker"),
        env={"OPENAI_API_KEY": secret},
        secrets=[secret],
        settings=HOSTILE_SETTINGS.model_copy(
            update={
                "start_command": [
                    "sh",
                    "-c",
                    "echo key=$OPENAI_API_KEY; exec node attack.mjs serve",
                ]
            }
        ),
    )
    log = LogCollector()
    server = await runner.start(ctx, await runner.build(ctx, log), log)
    try:
        runtime = runner.state_dir / ctx.build.id / "observability" / "runtime"
        async with asyncio.timeout(10):
            while not any("key=***" in p.read_text() for p in runtime.glob("stdout-*.log")):
                await asyncio.sleep(0.1)
        text = "".join(p.read_text() for p in runtime.glob("*.log"))
        assert secret not in text
        assert "attack server listening" in text
    finally:
        await runner.stop(server, grace_s=1)
        await runner.close()


LOCK = {
    "name": "with-deps",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "with-deps", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}},
        "node_modules/is-number": {
            "version": "7.0.0",
            "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
            "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
            "engines": {"node": ">=0.12.0"},
        },
    },
}


async def test_a_second_build_of_an_unchanged_lock_file_downloads_nothing(
    make_runner: Callable[..., DockerRunner], tmp_path: Path
) -> None:
    """The first build fetches from the registry. The deployment's next build of the
    same lock file does not install at all; another deployment of the project installs
    from the project's cache with npm told to stay offline (any request would fail)."""
    runner = make_runner()
    folder = tmp_path / "with-deps"
    folder.mkdir()
    (folder / "package.json").write_text(
        json.dumps(
            {"name": "with-deps", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}
        )
    )
    (folder / "package-lock.json").write_text(json.dumps(LOCK))
    script = (
        "require('is-number'); const fs = require('fs');"
        "fs.mkdirSync('.mastra/output', {recursive: true});"
        "fs.writeFileSync('.mastra/output/index.mjs', '')"
    )
    settings = ProjectSettings(build_command=["node", "-e", script])
    first = make_build_context(folder, settings=settings)
    first_log = LogCollector()
    await runner.build(first, first_log)
    assert any(line.startswith("$ npm ci") for line in first_log.lines)

    again = make_build_context(folder, settings=settings, deployment=first.deployment)
    again = again.model_copy(update={"project": first.project})
    log = LogCollector()
    await runner.build(again, log)
    assert any("install skipped" in line for line in log.lines), log.text
    assert not any(line.startswith("$ npm ci") for line in log.lines)

    elsewhere = make_build_context(folder, env={"npm_config_offline": "true"}, settings=settings)
    elsewhere = elsewhere.model_copy(
        update={
            "project": first.project,
            "deployment": elsewhere.deployment.model_copy(update={"project_id": first.project.id}),
        }
    )
    log = LogCollector()
    await runner.build(elsewhere, log)
    assert any(line.startswith("$ npm ci") for line in log.lines)
    assert any("install finished" in line for line in log.lines), log.text

    # A changed lock file installs again.
    (folder / "package.json").write_text(
        json.dumps(
            {"name": "with-deps", "version": "1.0.1", "dependencies": {"is-number": "7.0.0"}}
        )
    )
    changed = make_build_context(folder, settings=settings, deployment=first.deployment)
    changed = changed.model_copy(update={"project": first.project})
    log = LogCollector()
    await runner.build(changed, log)
    assert any(line.startswith("$ npm ci") for line in log.lines)
    await runner.prune_artifacts(keep=[])


async def test_an_abandoned_build_leaves_no_container_or_volume(
    make_runner: Callable[..., DockerRunner], base_image: str
) -> None:
    """The worker running a build was killed (its runner never cleaned up): recovery,
    in another runner, removes the build's running step and volume, and no server."""
    runner = make_runner()
    engine = runner.engine
    build_id = "abandoned-build"
    labels = {
        "io.mastra-admin.managed": "1",
        "io.mastra-admin.build": build_id,
        "io.mastra-admin.role": "build",
    }
    volume = f"mastra-admin-build-{build_id}"
    await engine.create_volume(volume, labels)
    step = await engine.create_container(
        f"mastra-admin-build-{build_id}-install",
        {"Image": base_image, "Cmd": ["sleep", "600"], "Labels": labels},
    )
    await engine.start(step)
    bystander_labels = {**labels, "io.mastra-admin.role": "server"}
    bystander = await engine.create_container(
        "mastra-admin-test-bystander",
        {"Image": base_image, "Cmd": ["sleep", "600"], "Labels": bystander_labels},
    )
    try:
        await runner.abandon_build(build_id)
        assert await engine.inspect(step) is None
        assert volume not in [v["Name"] for v in await engine.volumes(labels)]
        assert await engine.inspect(bystander) is not None, "servers are left alone"
    finally:
        await engine.remove(bystander)


async def test_an_engine_that_does_not_answer_fails_the_build_with_a_reason(
    tmp_path: Path,
) -> None:
    settings = DockerRunnerSettings(engine_url=f"unix://{tmp_path}/no-such.sock")
    runner = DockerRunner(FolderCopySource(), settings, data_dir=tmp_path / "data")
    ctx = make_build_context(write_mastra_project(tmp_path / "p", name="p"))
    try:
        with pytest.raises(BuildFailed) as failed:
            await runner.build(ctx, LogCollector())
        assert "Docker engine" in failed.value.message
        assert "did not answer" in failed.value.message
    finally:
        await runner.close()
