"""``nox -s bench -- runner``: what the local runner costs.

1. Deploy to healthy: copy, ``npm ci``, ``mastra build``, start, first healthy
   answer, for the fixture project, through ``LocalProcessRunner`` and as the same
   commands run directly (copy, subprocesses, the same health probe), alternating,
   in one run. Goal: the runner adds at most 0.5 s.
2. Isolation: deploy to healthy with every step and the server in a sandbox
   (bubblewrap and pasta) against the same runner with ``isolation = "none"``,
   alternating, and a server's request latency through each (keep-alive requests,
   as the router makes them, and a new connection per request). Goals: the sandbox
   adds at most 0.3 s per deploy and 10 % to a request's latency.
3. Supervision: 20 servers running; the admin process's CPU at rest, then with each
   server's stats (psutil and a health probe) refreshed every second, 15 times more
   often than the default, plus the 20 log relays' CPU; from these, the cost at the
   default refresh of 15 s. Goal: at most 1% of a core.
4. Crash recovery: a deployment served by the local runner through the core's
   orchestrator (default recovery settings); its server is killed and the time until
   a new healthy server is recorded (the exit reported, the backoff, the start),
   beside the same server's own start time (``runner.start`` of the same output).
   Goal: p95 at most 2 s more than the median start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks._report import Figure
from mastra_admin.core.build_steps import build_command, install_command, probe
from mastra_admin.core.runner import BuildContext
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.core.testing.runner import FolderCopySource, make_build_context
from mastra_admin.runners.local import LocalProcessRunner, LocalRunnerSettings
from mastra_admin.runners.local._ports import port_is_free

ROUNDS = 3
SERVERS = 20
WINDOW_S = 20.0
IDLE_S = 10.0
REFRESH_S = 1.0
DEFAULT_REFRESH_S = 15.0  # BuildSettings.health_interval_s
_IGNORE = shutil.ignore_patterns("node_modules", ".mastra", ".git")


async def _quiet(_: str) -> None:
    return None


async def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    while await process.stdout.read(65536):
        pass
    if await process.wait() != 0:
        raise RuntimeError(f"{argv} failed")


async def _direct(project: Path, work: Path, port: int) -> float:
    """The same commands, run by hand: the reference."""
    began = time.perf_counter()
    target = work / "src"
    await asyncio.to_thread(shutil.copytree, project, target, ignore=_IGNORE)
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    await _run([*install_command(target, "npm"), "--include=dev"], target, env)
    await _run(build_command("npm"), target, env)
    server = await asyncio.create_subprocess_exec(
        "node",
        ".mastra/output/index.mjs",
        cwd=target,
        env={**env, "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while await probe("127.0.0.1", port, "/health", timeout_s=2) != 200:
            await asyncio.sleep(0.1)
        return time.perf_counter() - began
    finally:
        server.kill()
        await server.wait()


async def _through_runner(runner: LocalProcessRunner, ctx: BuildContext) -> float:
    began = time.perf_counter()
    artifact = await runner.build(ctx, _quiet)
    server = await runner.start(ctx, artifact, _quiet)
    elapsed = time.perf_counter() - began
    await runner.stop(server, grace_s=2)
    return elapsed


async def _deploy_figures(root: Path) -> list[Figure]:
    project = write_mastra_project(root / "bench-agent", name="bench-agent")
    runner = LocalProcessRunner(
        FolderCopySource(),
        LocalRunnerSettings(
            builds_dir=root / "builds", port_range_start=24100, port_range_end=24199
        ),
    )
    port = next(p for p in range(24300, 24400) if port_is_free("127.0.0.1", p))
    direct: list[float] = []
    managed: list[float] = []
    await _through_runner(runner, make_build_context(project))  # warm npm's cache and the disk
    for round_ in range(ROUNDS):
        # Alternate which goes first, so that neither always runs on a warmer disk.
        if round_ % 2:
            managed.append(await _through_runner(runner, make_build_context(project)))
        direct.append(await _direct(project, root / f"direct-{round_}", port))
        if not round_ % 2:
            managed.append(await _through_runner(runner, make_build_context(project)))
    d, m = statistics.median(direct), statistics.median(managed)
    overhead = m - d
    return [
        Figure(
            bench="runner",
            figure=f"deploy to healthy (median of {ROUNDS})",
            value=m,
            unit="s",
            reference=d,
            reference_label="same commands run directly",
        ),
        Figure(
            bench="runner",
            figure="runner overhead per deploy",
            value=overhead,
            unit="s",
            goal="<= 0.5 s",
            met=overhead <= 0.5,
        ),
    ]


LATENCY_ROUNDS = 6
LATENCY_REQUESTS = 500
_GENERATE = b'{"messages": "What is the weather in Lisbon?"}'


def _latencies(port: int, requests: int, *, keep_alive: bool) -> list[float]:
    """Seconds per ``POST /api/agents/weather/generate`` (the agent route of the
    fixture server), over one connection or a new connection each time."""
    import http.client

    headers = {"Content-Type": "application/json"}
    times: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(requests):
        began = time.perf_counter()
        if not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/api/agents/weather/generate", body=_GENERATE, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}")
        if not keep_alive:
            conn.close()
        times.append(time.perf_counter() - began)
    conn.close()
    return times


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _isolation_figures(root: Path) -> list[Figure]:
    project = write_mastra_project(root / "isolated-agent", name="isolated-agent")
    runners = {
        isolation: LocalProcessRunner(
            FolderCopySource(),
            LocalRunnerSettings(
                builds_dir=root / f"builds-{isolation}",
                port_range_start=start,
                port_range_end=start + 99,
                isolation=isolation,
            ),
            data_dir=root / f"data-{isolation}",
        )
        for isolation, start in (("sandbox", 24600), ("none", 24700))
    }
    deployment = make_build_context(project).deployment
    for runner in runners.values():  # warm npm's cache, the disk and the sandbox check
        await _through_runner(runner, make_build_context(project, deployment=deployment))
    deploys: dict[str, list[float]] = {"sandbox": [], "none": []}
    for round_ in range(ROUNDS):
        order = ("sandbox", "none") if round_ % 2 else ("none", "sandbox")
        for isolation in order:
            ctx = make_build_context(project, deployment=deployment)
            deploys[isolation].append(await _through_runner(runners[isolation], ctx))
    servers = {}
    for isolation, runner in runners.items():
        ctx = make_build_context(project, deployment=deployment)
        artifact = await runner.build(ctx, _quiet)
        servers[isolation] = await runner.start(ctx, artifact, _quiet)
    samples: dict[tuple[str, bool], list[float]] = {}
    try:
        for keep_alive in (True, False):
            for server in servers.values():  # warm both
                await asyncio.to_thread(_latencies, server.port, 100, keep_alive=keep_alive)
            for round_ in range(LATENCY_ROUNDS):
                order = ("sandbox", "none") if round_ % 2 else ("none", "sandbox")
                for isolation in order:
                    times = await asyncio.to_thread(
                        _latencies,
                        servers[isolation].port,
                        LATENCY_REQUESTS,
                        keep_alive=keep_alive,
                    )
                    samples.setdefault((isolation, keep_alive), []).extend(times)
    finally:
        for isolation, server in servers.items():
            await runners[isolation].stop(server, grace_s=2)
    on, off = statistics.median(deploys["sandbox"]), statistics.median(deploys["none"])
    added = on - off
    figures = [
        Figure(
            bench="runner",
            figure=f"deploy to healthy, sandboxed (median of {ROUNDS})",
            value=on,
            unit="s",
            reference=off,
            reference_label='isolation = "none"',
        ),
        Figure(
            bench="runner",
            figure="time the sandbox adds per deploy",
            value=added,
            unit="s",
            goal="<= 0.3 s",
            met=added <= 0.3,
        ),
    ]
    for keep_alive, label in ((True, "keep-alive"), (False, "new connection each")):
        sandboxed = samples[("sandbox", keep_alive)]
        plain = samples[("none", keep_alive)]
        median_on, median_off = statistics.median(sandboxed), statistics.median(plain)
        figures.append(
            Figure(
                bench="runner",
                figure=f"request latency, sandboxed, {label} (median of {len(sandboxed)})",
                value=median_on * 1e6,
                unit="us",
                reference=median_off * 1e6,
                reference_label='isolation = "none"',
                goal="<= 1.10x" if keep_alive else "",
                met=median_on <= 1.10 * median_off if keep_alive else None,
            )
        )
        figures.append(
            Figure(
                bench="runner",
                figure=f"request p99, sandboxed, {label}",
                value=_percentile(sandboxed, 0.99) * 1e6,
                unit="us",
                reference=_percentile(plain, 0.99) * 1e6,
                reference_label='isolation = "none"',
            )
        )
    return figures


async def _supervision_figures(root: Path) -> list[Figure]:
    project = write_mastra_project(root / "supervised-agent", name="supervised-agent")
    runner = LocalProcessRunner(
        FolderCopySource(),
        LocalRunnerSettings(
            builds_dir=root / "builds-20", port_range_start=24500, port_range_end=24599
        ),
    )
    ctx = make_build_context(project)
    artifact = await runner.build(ctx, _quiet)
    servers = [await runner.start(ctx, artifact, _quiet) for _ in range(SERVERS)]
    try:
        relays = [psutil.Process(int(s.metadata["relay_pid"])) for s in servers]
        nodes = [psutil.Process(int(s.process_id or 0)) for s in servers]
        me = psutil.Process()
        await asyncio.sleep(1.0)

        def cpu() -> float:
            times = me.cpu_times()
            return times.user + times.system

        # The admin process at rest with 20 servers (event loop, child watchers).
        idle_start, idle_wall = cpu(), time.perf_counter()
        await asyncio.sleep(IDLE_S)
        idle_rate = (cpu() - idle_start) / (time.perf_counter() - idle_wall)

        relay_before = sum(sum(p.cpu_times()[:2]) for p in relays)
        node_before = sum(sum(p.cpu_times()[:2]) for p in nodes)
        busy_start, wall = cpu(), time.perf_counter()
        rounds = 0
        while time.perf_counter() - wall < WINDOW_S:
            tick = time.perf_counter()
            stats = await asyncio.gather(*(runner.stats(s) for s in servers))
            assert all(s.healthy for s in stats)
            rounds += 1
            await asyncio.sleep(max(0.0, REFRESH_S - (time.perf_counter() - tick)))
        elapsed = time.perf_counter() - wall
        admin_cpu = cpu() - busy_start
        relay_cpu = sum(sum(p.cpu_times()[:2]) for p in relays) - relay_before
        node_cpu = sum(sum(p.cpu_times()[:2]) for p in nodes) - node_before
        rss_mb = sum(p.memory_info().rss for p in relays) / 2**20
        per_round = max(0.0, admin_cpu - idle_rate * elapsed) / rounds
    finally:
        await asyncio.gather(*(runner.stop(s, grace_s=2) for s in servers))
    stress_pct = 100 * (admin_cpu + relay_cpu) / elapsed
    default_pct = 100 * (idle_rate + per_round / DEFAULT_REFRESH_S + relay_cpu / elapsed)
    return [
        Figure(
            bench="runner",
            figure=f"supervising {SERVERS} servers, stats every {DEFAULT_REFRESH_S:g} s (default)",
            value=default_pct,
            unit="% of a core",
            reference=100 * node_cpu / elapsed,
            reference_label=f"the {SERVERS} idle servers themselves",
            goal="<= 1%",
            met=default_pct <= 1.0,
        ),
        Figure(
            bench="runner",
            figure=f"same, stats every {REFRESH_S:g} s ({rounds} rounds measured)",
            value=stress_pct,
            unit="% of a core",
        ),
        Figure(
            bench="runner",
            figure=f"CPU of one stats round over {SERVERS} servers",
            value=per_round * 1000,
            unit="ms",
        ),
        Figure(
            bench="runner",
            figure=f"memory of the {SERVERS} log relays",
            value=rss_mb,
            unit="MB",
        ),
    ]


RECOVERY_ROUNDS = 10


async def _recovery_figures(root: Path) -> list[Figure]:
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.encryption import AesGcmEncryption
    from mastra_admin.core.inputs import CreateDeployment, CreateProject, CreateTeam
    from mastra_admin.core.local_file_storage import LocalFileStorage
    from mastra_admin.core.models import BuildStatus, DeploymentType
    from mastra_admin.core.testing.memory import InMemoryAdminStorage
    from mastra_admin.sources.local import LocalProjectSource

    projects = root / "recovery-projects"
    write_mastra_project(projects / "crashy", name="crashy")
    source = LocalProjectSource(base_paths=[str(projects)])
    runner = LocalProcessRunner(
        source,
        LocalRunnerSettings(
            builds_dir=root / "recovery-builds", port_range_start=24500, port_range_end=24599
        ),
    )
    admin = MastraAdmin(
        storage=InMemoryAdminStorage(),
        runner=runner,
        source=source,
        file_storage=LocalFileStorage(root / "recovery-files"),
        encryption=AesGcmEncryption.from_key_file(root / "recovery-keys.json"),
    )
    await admin.init()
    orchestrator = admin.orchestrator
    assert orchestrator is not None
    orchestrator.watch_servers()
    try:
        user, _ = await admin.bootstrap_admin("bench@example.com")
        team = await admin.create_team(user.id, CreateTeam(name="Bench"))
        [found] = await admin.list_source_projects(user.id, team.id)
        project = await admin.create_project(
            user.id, team.id, CreateProject(name="Crashy", source_id=found.id)
        )
        deployment = await admin.create_deployment(
            user.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
        )
        await admin.deploy(user.id, deployment.id)
        build = await orchestrator.run_once()
        assert build is not None
        assert build.status is BuildStatus.SUCCEEDED, build.error_message
        artifact = await runner.has_artifact(build.id)
        assert artifact is not None
        storage = admin.context.storage

        starts: list[float] = []
        recoveries: list[float] = []
        for _ in range(RECOVERY_ROUNDS):
            # The server's own start: the same output started and stopped.
            deployment_now, project_now, _team = await admin.deployments.load_deployment(
                deployment.id
            )
            env, secrets = await admin.deployments.build_env(deployment_now, project_now)
            ctx = BuildContext(
                build=build,
                deployment=deployment_now,
                project=project_now,
                source=await source.source_for(project_now),
                env=env,
                secrets=secrets,
            )
            began = time.perf_counter()
            spare = await runner.start(ctx, artifact, _quiet)
            starts.append(time.perf_counter() - began)
            await runner.stop(spare, grace_s=2)

            # A crash: the serving process killed, as the kernel's OOM killer would.
            (serving,) = await storage.servers.list_active(deployment.id)
            assert serving.process_id is not None
            began = time.perf_counter()
            psutil.Process(serving.process_id).kill()
            while True:
                active = await storage.servers.list_active(deployment.id)
                if active and active[0].id != serving.id:
                    break
                await asyncio.sleep(0.01)
            recoveries.append(time.perf_counter() - began)
            orchestrator.crashes.reset(deployment.id)  # each round is a first crash
    finally:
        # Closing the platform leaves servers running (the next start adopts them):
        # stop the deployment's, with no restart pending any more.
        await orchestrator.stop()
        for server in await admin.context.storage.servers.list_active():
            await runner.stop(server, grace_s=2)
        await admin.close()
    start = statistics.median(starts)
    p95 = _percentile(recoveries, 0.95)
    return [
        Figure(
            bench="runner",
            figure=f"crash -> healthy again, p95 of {RECOVERY_ROUNDS} (default recovery)",
            value=p95,
            unit="s",
            reference=start,
            reference_label="the server's own start (median)",
            goal="<= start + 2 s",
            met=p95 <= start + 2.0,
        ),
        Figure(
            bench="runner",
            figure="crash -> healthy again, median",
            value=statistics.median(recoveries),
            unit="s",
        ),
    ]


async def _main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mastra-bench-runner-") as folder:
        root = Path(folder)
        figures = await _deploy_figures(root)
        figures += await _isolation_figures(root)
        figures += await _supervision_figures(root)
        figures += await _recovery_figures(root)
        with contextlib.suppress(OSError):
            shutil.rmtree(root / "builds", ignore_errors=True)
        return figures


def run() -> list[Figure]:
    return asyncio.run(_main())
