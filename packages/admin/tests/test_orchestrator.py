"""The build orchestrator: queue to running server, with every way it can go wrong."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.inputs import (
    CreateDeployment,
    CreateProject,
    CreateTeam,
    RollbackRequest,
    SetEnvVar,
)
from mastra_admin.core.licence import LicenceValidator
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    BuildTrigger,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    HealthStatus,
    RunningServer,
    User,
    utcnow,
)
from mastra_admin.core.orchestrator import INTERRUPTED, BuildOrchestrator
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.recovery import DeploymentEvent, DeploymentEventKind
from mastra_admin.core.settings import BuildSettings, MastraAdminSettings, RecoverySettings
from mastra_admin.core.storage import BuildUpdate, DeploymentUpdate
from mastra_admin.core.testing.fakes import FakeRouter, FakeRunner
from mastra_admin.core.testing.memory import InMemoryAdminStorage

from .conftest import AdminFactory


class Recorder:
    """A plugin that records the event hooks the core fires."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, BuildStatus]] = []
        self.status_changes: list[tuple[DeploymentStatus, DeploymentStatus]] = []
        self.events: list[DeploymentEvent] = []

    @hookimpl
    def mastra_admin_build_finished(self, build: Build, deployment: Deployment) -> None:
        self.finished.append((build.id, build.status))

    @hookimpl
    def mastra_admin_deployment_status_changed(
        self, deployment: Deployment, previous: DeploymentStatus
    ) -> None:
        self.status_changes.append((previous, deployment.status))

    @hookimpl
    def mastra_admin_deployment_event(self, event: DeploymentEvent) -> None:
        self.events.append(event)


@dataclass
class Site:
    admin: MastraAdmin
    root: User
    deployment: Deployment
    recorder: Recorder
    project_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def storage(self) -> InMemoryAdminStorage:
        assert isinstance(self.admin.storage, InMemoryAdminStorage)
        return self.admin.storage

    @property
    def runner(self) -> FakeRunner:
        assert isinstance(self.admin.runner, FakeRunner)
        return self.admin.runner

    @property
    def router(self) -> FakeRouter:
        assert isinstance(self.admin.router, FakeRouter)
        return self.admin.router

    @property
    def orchestrator(self) -> BuildOrchestrator:
        assert self.admin.orchestrator is not None
        return self.admin.orchestrator

    async def deploy(self, deployment: Deployment | None = None) -> Build:
        return await self.admin.deploy(self.root.id, (deployment or self.deployment).id)

    async def build(self, build_id: str) -> Build:
        build = await self.storage.builds.get(build_id)
        assert build is not None
        return build

    async def current(self, deployment: Deployment | None = None) -> Deployment:
        found = await self.storage.deployments.get((deployment or self.deployment).id)
        assert found is not None
        return found

    async def deployed(self) -> tuple[Build, RunningServer]:
        """Deploy and run the build through; return it and its server."""
        build = await self.deploy()
        done = await self.orchestrator.run_once()
        assert done is not None
        assert done.status is BuildStatus.SUCCEEDED, done.error_message
        (server,) = [s for s in await self.storage.servers.list_active() if s.build_id == build.id]
        return done, server

    async def add_preview(self, branch: str) -> Deployment:
        return await self.admin.create_deployment(
            self.root.id,
            self.project_id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch=branch),
        )


SiteFactory = Callable[..., Awaitable[Site]]


@pytest.fixture
async def make_site(make_admin: AdminFactory, enterprise_licence: LicenceValidator) -> SiteFactory:
    async def make(recovery: RecoverySettings | None = None, **build_settings: Any) -> Site:
        recorder = Recorder()
        plugins = PluginManager(builtins=False)
        plugins.register(recorder, "recorder")
        settings = MastraAdminSettings(
            builds=BuildSettings(**{"poll_interval_s": 0.05, **build_settings}),
            recovery=recovery or RecoverySettings(),
        )
        admin = await make_admin(licence=enterprise_licence, settings=settings, plugins=plugins)
        assert admin.orchestrator is not None
        admin.orchestrator.status_poll_s = 0.05
        admin.orchestrator.exit_report_grace_s = 0.01
        admin.orchestrator.watch_servers()
        root, _ = await admin.bootstrap_admin("root@example.com")
        team = await admin.create_team(root.id, CreateTeam(name="Search"))
        project = await admin.create_project(
            root.id, team.id, CreateProject(name="Weather", source_id="weather-agent")
        )
        deployment = await admin.create_deployment(
            root.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
        )
        return Site(admin, root, deployment, recorder, project_id=project.id)

    return make


@pytest.fixture
async def site(make_site: SiteFactory) -> Site:
    return await make_site()


async def _until(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# --- the happy path ------------------------------------------------------------------


async def test_a_deploy_is_built_started_routed_and_running(site: Site) -> None:
    build = await site.deploy()
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.id == build.id
    assert done.status is BuildStatus.SUCCEEDED
    assert done.completed_at is not None
    assert done.log_path == f"builds/{build.id}.log"

    (server,) = await site.storage.servers.list_active(site.deployment.id)
    assert server.build_id == build.id
    assert server.health_status is HealthStatus.HEALTHY
    deployment = await site.current()
    assert deployment.status is DeploymentStatus.RUNNING
    assert deployment.current_build_id == build.id
    assert (deployment.internal_host, deployment.internal_port) == (server.host, server.port)
    route = await site.router.get_route(site.deployment.id)
    assert route is not None
    assert route.target_port == server.port
    assert deployment.public_url == route.public_url
    assert route.subdomain == "weather-main.search"
    assert await site.orchestrator.run_once() is None


async def test_secrets_never_reach_the_build_log(site: Site) -> None:
    await site.admin.set_env_var(
        site.root.id, site.project_id, SetEnvVar(key="OPENAI_API_KEY", value="sk-very-secret")
    )
    await site.admin.set_env_var(
        site.root.id, site.project_id, SetEnvVar(key="REGION", value="eu-west", is_secret=False)
    )
    build, _ = await site.deployed()
    ctx = site.runner.contexts[build.id]
    assert ctx.env["OPENAI_API_KEY"] == "sk-very-secret"
    assert ctx.env["REGION"] == "eu-west"
    assert ctx.env["MASTRA_DEPLOYMENT_ID"] == site.deployment.id
    log = await site.admin.get_build_log(site.root.id, build.id)
    assert "sk-very-secret" not in log
    assert "env check: ***" in log
    assert "[build] running" in log
    assert "==> build succeeded" in log


async def test_hooks_see_every_status_change_and_the_finished_build(site: Site) -> None:
    build, _ = await site.deployed()
    assert site.recorder.status_changes == [
        (DeploymentStatus.PENDING, DeploymentStatus.BUILDING),
        (DeploymentStatus.BUILDING, DeploymentStatus.RUNNING),
    ]
    assert site.recorder.finished == [(build.id, BuildStatus.SUCCEEDED)]


# --- zero downtime and failures --------------------------------------------------------


async def test_the_route_moves_before_the_old_server_stops(site: Site) -> None:
    _, old = await site.deployed()
    new_build, new = await site.deployed()
    journal = site.runner.journal
    route_moved = journal.index(("route", site.deployment.id, new.host, str(new.port)))
    old_stopped = journal.index(("stop", old.id))
    assert journal.index(("start", new_build.id, new.id)) < route_moved < old_stopped
    assert [s.id for s in await site.storage.servers.list_active()] == [new.id]
    stopped = await site.storage.servers.get(old.id)
    assert stopped is not None
    assert stopped.stopped_at is not None
    assert stopped.health_status is HealthStatus.STOPPED


@pytest.mark.parametrize("step", ["copy", "install", "build", "start", "health"])
async def test_a_failed_step_keeps_the_old_server_serving(site: Site, step: str) -> None:
    first, old = await site.deployed()
    site.runner.fail_step = step
    failing = await site.deploy()
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.id == failing.id
    assert done.status is BuildStatus.FAILED
    assert done.error_message == f"{step} failed (exit code 1)"

    deployment = await site.current()
    assert deployment.status is DeploymentStatus.RUNNING
    assert deployment.current_build_id == first.id
    assert [s.id for s in await site.storage.servers.list_active()] == [old.id]
    assert list(site.runner.running) == [old.id]  # nothing of the failed build runs
    route = await site.router.get_route(site.deployment.id)
    assert route is not None
    assert route.target_port == old.port
    log = await site.admin.get_build_log(site.root.id, failing.id)
    assert f"==> build failed: {step} failed (exit code 1)" in log


async def test_a_refused_route_stops_the_new_server_and_keeps_the_old(site: Site) -> None:
    _, old = await site.deployed()
    site.router.fail_register = True
    done = await site.deploy() and await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.FAILED
    assert list(site.runner.running) == [old.id]
    assert (await site.current()).status is DeploymentStatus.RUNNING


async def test_a_first_build_that_fails_leaves_the_deployment_failed(site: Site) -> None:
    site.runner.fail_step = "install"
    await site.deploy()
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.FAILED
    assert (await site.current()).status is DeploymentStatus.FAILED
    assert site.recorder.finished == [(done.id, BuildStatus.FAILED)]


async def test_an_unexpected_error_is_an_internal_error_not_a_crash(site: Site) -> None:
    site.runner.fail_step = "build"
    site.runner.fail_error = RuntimeError("the runner has a bug")
    await site.deploy()
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.FAILED
    assert done.error_message == "internal error: the runner has a bug"


# --- cancel ---------------------------------------------------------------------------


async def test_a_cancelled_queued_build_is_never_built(site: Site) -> None:
    build = await site.deploy()
    cancelled = await site.admin.cancel_build(site.root.id, build.id)
    assert cancelled.status is BuildStatus.CANCELLED
    assert await site.orchestrator.run_once() is None
    assert site.runner.builds_started == []


@pytest.mark.parametrize("step", ["install", "health"])
async def test_cancelling_a_running_build_stops_it_at_once(site: Site, step: str) -> None:
    _, old = await site.deployed()
    site.runner.hang_step = step
    site.runner.step_entered.clear()
    build = await site.deploy()
    worker = asyncio.create_task(site.orchestrator.run_once())
    await _until(lambda: _hanging(site.runner, step))
    await site.admin.cancel_build(site.root.id, build.id)
    done = await asyncio.wait_for(worker, 5)
    assert done is not None
    assert done.status is BuildStatus.CANCELLED
    assert list(site.runner.running) == [old.id]
    deployment = await site.current()
    assert deployment.status is DeploymentStatus.RUNNING
    assert deployment.internal_port == old.port
    assert site.recorder.finished[-1] == (build.id, BuildStatus.CANCELLED)


async def test_a_build_cancelled_by_another_process_is_stopped_by_its_worker(
    site: Site,
) -> None:
    site.runner.hang_step = "build"
    build = await site.deploy()
    worker = asyncio.create_task(site.orchestrator.run_once())
    await _until(lambda: _hanging(site.runner, "build"))
    # Another process's API: only the stored status changes; no cancel_local here.
    await site.storage.builds.transition(
        build.id, [BuildStatus.BUILDING], BuildUpdate(status=BuildStatus.CANCELLED)
    )
    done = await asyncio.wait_for(worker, 5)
    assert done is not None
    assert done.status is BuildStatus.CANCELLED
    assert site.runner.builds_cancelled == [build.id]
    assert site.runner.running == {}
    assert (await site.current()).status is DeploymentStatus.STOPPED


async def test_cancel_local_only_knows_builds_of_this_process(site: Site) -> None:
    build = await site.deploy()
    assert site.orchestrator.cancel_local(build.id) is False


async def _hanging(runner: FakeRunner, step: str) -> bool:
    return any(entry[:2] == ("hang", step) for entry in runner.journal)


# --- rollback -------------------------------------------------------------------------


async def test_a_rollback_starts_the_kept_output_without_building(site: Site) -> None:
    first, _ = await site.deployed()
    await site.deployed()
    built = list(site.runner.builds_started)
    rollback = await site.admin.rollback(site.root.id, site.deployment.id, first.id)
    assert rollback.trigger is BuildTrigger.ROLLBACK
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.SUCCEEDED
    assert site.runner.builds_started == built  # nothing was built
    (server,) = await site.storage.servers.list_active()
    assert server.build_id == rollback.id
    assert server.metadata["artifact_build_id"] == first.id
    assert (await site.current()).current_build_id == rollback.id


async def test_a_rollback_whose_output_is_gone_fails_clearly(site: Site) -> None:
    first, old = await site.deployed()
    rollback = await site.admin.rollback(site.root.id, site.deployment.id, first.id)
    del site.runner.artifacts[first.id]  # pruned between the request and the worker
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.id == rollback.id
    assert done.status is BuildStatus.FAILED
    assert done.error_message is not None
    assert "no longer kept" in done.error_message
    assert list(site.runner.running) == [old.id]


async def test_only_the_last_successful_outputs_are_kept(make_site: SiteFactory) -> None:
    site = await make_site(keep_successful=2)
    builds = [(await site.deployed())[0] for _ in range(4)]
    assert sorted(site.runner.artifacts) == sorted(b.id for b in builds[-2:])


# --- the queue and the workers --------------------------------------------------------


async def test_a_newer_deploy_supersedes_queued_ones(site: Site) -> None:
    older = [await site.deploy() for _ in range(2)]
    newest = await site.deploy()
    for build in older:
        assert (await site.build(build.id)).status is BuildStatus.CANCELLED
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.id == newest.id
    assert await site.orchestrator.run_once() is None
    assert site.runner.builds_started == [newest.id]


async def test_workers_respect_the_limit_on_active_builds(make_site: SiteFactory) -> None:
    site = await make_site(workers=5, max_active_builds=2)
    site.runner.step_delay_s = 0.03
    deployments = [await site.add_preview(f"feature-{i}") for i in range(6)]
    builds = [await site.deploy(d) for d in deployments]
    await site.orchestrator.start()
    try:
        await _until(lambda: _all_final(site, builds))
    finally:
        await site.orchestrator.stop()
    assert site.runner.max_concurrent_builds == 2
    assert sorted(site.runner.builds_started) == sorted(b.id for b in builds)
    for build in builds:
        assert (await site.build(build.id)).status is BuildStatus.SUCCEEDED


async def test_orchestrators_in_many_processes_share_one_queue(make_site: SiteFactory) -> None:
    site = await make_site(workers=2, max_active_builds=5)
    site.runner.step_delay_s = 0.03
    others = [
        BuildOrchestrator(site.admin.deployments, worker_id=f"other-host:{n}:w") for n in range(2)
    ]
    deployments = [await site.add_preview(f"branch-{i}") for i in range(9)]
    builds = [await site.deploy(d) for d in deployments]
    everyone = [site.orchestrator, *others]
    for orchestrator in everyone:
        await orchestrator.start()
    try:
        await _until(lambda: _all_final(site, builds))
    finally:
        for orchestrator in everyone:
            await orchestrator.stop()
    assert 2 < site.runner.max_concurrent_builds <= 5  # more than one process's workers
    assert sorted(site.runner.builds_started) == sorted(b.id for b in builds)  # once each
    workers = {(await site.build(b.id)).worker_id for b in builds}
    assert len(workers) > 1


async def test_one_deployment_never_builds_twice_at_once(make_site: SiteFactory) -> None:
    site = await make_site(workers=3)
    site.runner.step_delay_s = 0.05
    await site.orchestrator.start()
    try:
        first = await site.deploy()
        await _until(lambda: _status_is(site, first, BuildStatus.BUILDING))
        second = await site.deploy()
        await _until(lambda: _all_final(site, [first, second]))
    finally:
        await site.orchestrator.stop()
    journal = site.runner.journal
    first_switched = journal.index(("route", site.deployment.id, "127.0.0.1", "4100"))
    assert first_switched < journal.index(("build", second.id))
    assert site.runner.max_concurrent_builds == 1


async def _all_final(site: Site, builds: list[Build]) -> bool:
    statuses = [(await site.build(b.id)).status for b in builds]
    return all(status.is_terminal for status in statuses)


async def _status_is(site: Site, build: Build, status: BuildStatus) -> bool:
    return (await site.build(build.id)).status is status


async def test_wake_makes_an_idle_worker_look_at_once(make_site: SiteFactory) -> None:
    site = await make_site(workers=1, poll_interval_s=30)
    await site.orchestrator.start()
    try:
        await asyncio.sleep(0.05)  # the worker is now waiting for its next poll
        build = await site.deploy()  # deploy() wakes the orchestrator
        await _until(lambda: _all_final(site, [build]), within=5)
    finally:
        await site.orchestrator.stop()


async def test_stop_interrupts_builds_and_leaves_nothing_half_started(
    make_site: SiteFactory,
) -> None:
    site = await make_site(workers=1)
    site.runner.hang_step = "health"
    build = await site.deploy()
    await site.orchestrator.start()
    await _until(lambda: _hanging(site.runner, "health"))
    await site.orchestrator.stop()
    done = await site.build(build.id)
    assert done.status is BuildStatus.FAILED
    assert done.error_message == INTERRUPTED
    assert site.runner.running == {}
    assert not site.orchestrator.running


async def test_the_lease_is_renewed_while_a_build_runs(make_site: SiteFactory) -> None:
    site = await make_site(lease_s=1.2)
    site.runner.step_delay_s = 0.6  # three build steps: longer than the lease
    build = await site.deploy()
    worker = asyncio.create_task(site.orchestrator.run_once())
    await asyncio.sleep(1.5)
    held = await site.build(build.id)
    assert held.lease_expires_at is not None
    assert held.lease_expires_at > utcnow()
    rival = BuildOrchestrator(site.admin.deployments, worker_id="rival:1:x")
    await rival.recover()  # a live lease is not a dead worker
    done = await asyncio.wait_for(worker, 10)
    assert done is not None
    assert done.status is BuildStatus.SUCCEEDED


# --- supervision and recovery ---------------------------------------------------------


async def test_health_refresh_records_stats_and_notices_a_dead_server(site: Site) -> None:
    _, server = await site.deployed()
    await site.orchestrator.refresh_servers()
    checked = await site.storage.servers.get(server.id)
    assert checked is not None
    assert checked.last_health_check is not None
    assert checked.memory_usage_mb == 64.0
    site.runner.crash(server.id)
    await site.orchestrator.refresh_servers()
    gone = await site.storage.servers.get(server.id)
    assert gone is not None
    assert gone.stopped_at is not None
    crashed = site.recorder.events[-1]
    assert crashed.kind is DeploymentEventKind.CRASHED
    assert crashed.crashes[0].reason == "the process is gone"
    await _until(lambda: _serving_again(site, server))


async def test_without_restarts_a_crash_fails_the_deployment(make_site: SiteFactory) -> None:
    site = await make_site(recovery=RecoverySettings(restart=False))
    _, server = await site.deployed()
    await site.runner.exit(server.id, 1, "Error: boom")
    assert (await site.current()).status is DeploymentStatus.FAILED
    assert not await site.storage.servers.list_active(site.deployment.id)
    assert [e.kind for e in site.recorder.events] == [
        DeploymentEventKind.CRASHED,
        DeploymentEventKind.CRASH_LOOP,
    ]


async def _serving_again(site: Site, crashed: RunningServer) -> bool:
    active = await site.storage.servers.list_active(site.deployment.id)
    return bool(active) and active[0].id != crashed.id


# --- crash recovery ------------------------------------------------------------------


async def test_a_server_that_exits_is_restarted_routed_and_reported(
    make_site: SiteFactory,
) -> None:
    site = await make_site(recovery=RecoverySettings(backoff_initial_s=0.05))
    build, server = await site.deployed()
    await site.runner.exit(server.id, 3, "Error: OPENAI_API_KEY=[masked] rejected", "at main")
    deployment = await site.current()
    assert deployment.status is DeploymentStatus.RUNNING  # restarting, not failed
    await _until(lambda: _serving_again(site, server))
    (new,) = await site.storage.servers.list_active(site.deployment.id)
    assert new.build_id == build.id  # the same build, from its kept output
    route = await site.router.get_route(site.deployment.id)
    assert route is not None
    assert route.target_port == new.port
    deployment = await site.current()
    assert (deployment.internal_host, deployment.internal_port) == (new.host, new.port)
    kinds = [e.kind for e in site.recorder.events]
    assert kinds == [DeploymentEventKind.CRASHED, DeploymentEventKind.RECOVERED]
    crash = site.recorder.events[0].crashes[0]
    assert (crash.exit_code, crash.server_id, crash.build_id) == (3, server.id, build.id)
    assert crash.last_lines[-1] == "at main"
    assert site.recorder.events[1].server_id == new.id
    assert site.orchestrator.stats.restarts == 1
    # Each event is a runtime log of the deployment (source "platform").
    files = site.admin.file_storage
    assert files is not None
    records = [
        json.loads(line)
        for info in await files.list(f"logs/{site.project_id}/")
        for line in (await files.read(info.path)).splitlines()
    ]
    by_event = {r["attributes"]["event"]: r for r in records if r["source"] == "platform"}
    assert by_event["crashed"]["level"] == "error"
    assert by_event["crashed"]["deployment_id"] == site.deployment.id
    assert by_event["crashed"]["attributes"]["crashes"][0]["exit_code"] == 3
    assert by_event["recovered"]["level"] == "info"


async def test_a_crash_loop_stops_restarting_and_says_why(make_site: SiteFactory) -> None:
    site = await make_site(recovery=RecoverySettings(backoff_initial_s=0.01, crash_loop_restarts=3))
    _, server = await site.deployed()
    for n in range(3):
        await site.runner.exit(server.id, 10 + n, f"crash {n}")
        if n < 2:
            await _until(lambda s=server: _serving_again(site, s))
            (server,) = await site.storage.servers.list_active(site.deployment.id)
    deployment = await site.current()
    assert deployment.status is DeploymentStatus.CRASH_LOOP
    loop = site.recorder.events[-1]
    assert loop.kind is DeploymentEventKind.CRASH_LOOP
    assert [c.exit_code for c in loop.crashes] == [10, 11, 12]
    assert [c.last_lines for c in loop.crashes] == [["crash 0"], ["crash 1"], ["crash 2"]]
    assert (DeploymentStatus.RUNNING, DeploymentStatus.CRASH_LOOP) in (site.recorder.status_changes)
    await asyncio.sleep(0.1)
    assert not await site.storage.servers.list_active(site.deployment.id)
    # A deploy starts afresh: running again, the crash history forgotten.
    await site.deployed()
    assert (await site.current()).status is DeploymentStatus.RUNNING
    assert site.orchestrator.crashes.count(site.deployment.id) == 0


async def test_a_server_failing_its_health_checks_is_replaced(make_site: SiteFactory) -> None:
    site = await make_site(recovery=RecoverySettings(backoff_initial_s=0, unhealthy_checks=2))
    _, server = await site.deployed()
    site.runner.unhealthy.add(server.id)
    await site.orchestrator.refresh_servers()
    assert await site.storage.servers.list_active(site.deployment.id)  # one failure: kept
    await site.orchestrator.refresh_servers()
    assert server.id in site.runner.stop_calls  # stopped, not left hanging
    await _until(lambda: _serving_again(site, server))
    crash = site.recorder.events[0].crashes[0]
    assert crash.reason == "failed 2 health checks in a row; stopped"


async def test_a_stopped_deployment_is_not_restarted(make_site: SiteFactory) -> None:
    site = await make_site(recovery=RecoverySettings(backoff_initial_s=0.2))
    _, server = await site.deployed()
    await site.runner.exit(server.id, 1)
    await site.admin.stop(site.root.id, site.deployment.id)
    await asyncio.sleep(0.4)
    assert not await site.storage.servers.list_active(site.deployment.id)
    assert (await site.current()).status is DeploymentStatus.STOPPED
    assert DeploymentEventKind.RECOVERED not in [e.kind for e in site.recorder.events]


async def test_a_restart_that_fails_counts_as_another_crash(make_site: SiteFactory) -> None:
    site = await make_site(recovery=RecoverySettings(backoff_initial_s=0.01, crash_loop_restarts=2))
    _, server = await site.deployed()
    site.runner.fail_step = "health"
    await site.runner.exit(server.id, 1, "first")
    await _until(lambda: _status(site, DeploymentStatus.CRASH_LOOP))
    loop = site.recorder.events[-1]
    assert loop.crashes[-1].reason.startswith("the restart failed: ")
    assert not await site.storage.servers.list_active(site.deployment.id)


async def test_rollback_with_no_target_goes_to_the_previous_healthy_build(site: Site) -> None:
    first, _ = await site.deployed()
    await site.deployed()
    rollback = await site.admin.rollback(site.root.id, site.deployment.id, RollbackRequest())
    assert rollback.artifact_build_id == first.id
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.SUCCEEDED
    # Back on the first build's output; with nothing earlier left, no target.
    assert (await site.current()).current_build_id == rollback.id
    again = await site.admin.rollback(site.root.id, site.deployment.id, RollbackRequest())
    assert again.artifact_build_id != first.id


async def _status(site: Site, status: DeploymentStatus) -> bool:
    return (await site.current()).status is status


async def test_the_supervisor_removes_expired_previews(make_site: SiteFactory) -> None:
    site = await make_site(health_interval_s=0.05)
    preview = await site.add_preview("old-idea")
    await site.storage.deployments.update(
        preview.id, DeploymentUpdate(expires_at=utcnow() - timedelta(minutes=1))
    )
    await site.orchestrator.start()
    try:
        await _until(lambda: _gone(site, preview))
    finally:
        await site.orchestrator.stop()
    assert await site.storage.deployments.get(site.deployment.id) is not None


async def _gone(site: Site, deployment: Deployment) -> bool:
    return await site.storage.deployments.get(deployment.id) is None


async def _stuck_build(site: Site, deployment: Deployment, **fields: Any) -> Build:
    build = await site.storage.builds.create(
        Build(deployment_id=deployment.id, triggered_by=site.root.id)
    )
    values = {"status": BuildStatus.BUILDING, "started_at": utcnow(), **fields}
    return await site.storage.builds.update(build.id, BuildUpdate(**values))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def test_recovery_fails_builds_of_dead_workers_and_keeps_live_ones(site: Site) -> None:
    host = socket.gethostname()
    later = utcnow() + timedelta(minutes=5)
    deployments = [site.deployment, *[await site.add_preview(f"r{i}") for i in range(3)]]
    expired = await _stuck_build(
        site, deployments[0], worker_id="elsewhere:1:a", lease_expires_at=utcnow()
    )
    dead = await _stuck_build(
        site, deployments[1], worker_id=f"{host}:{_dead_pid()}:b", lease_expires_at=later
    )
    alive = await _stuck_build(
        site, deployments[2], worker_id=f"{host}:{os.getppid()}:c", lease_expires_at=later
    )
    queued = await site.deploy(deployments[3])

    await site.orchestrator.recover()

    for build in (expired, dead):
        recovered = await site.build(build.id)
        assert recovered.status is BuildStatus.FAILED
        assert recovered.error_message == INTERRUPTED
        assert (await site.current(deployments[0])).status is DeploymentStatus.FAILED
    assert (await site.build(alive.id)).status is BuildStatus.BUILDING
    assert (await site.build(queued.id)).status is BuildStatus.QUEUED
    finished = {build_id for build_id, _ in site.recorder.finished}
    assert {expired.id, dead.id} <= finished
    log = await site.admin.get_build_log(site.root.id, expired.id)
    assert INTERRUPTED in log


async def test_recovery_reattaches_live_servers_and_retires_gone_ones(site: Site) -> None:
    _, server = await site.deployed()
    preview = await site.add_preview("demo")
    (await site.deploy(preview)) and await site.orchestrator.run_once()
    (preview_server,) = await site.storage.servers.list_active(preview.id)

    restarted = FakeRunner()  # a new process: it supervises nothing yet
    restarted.attachable = {server.id}
    site.admin.runner = restarted
    await site.orchestrator.recover()

    assert server.id in restarted.running
    assert (await site.current()).status is DeploymentStatus.RUNNING
    retired = await site.storage.servers.get(preview_server.id)
    assert retired is not None
    assert retired.stopped_at is not None
    assert retired.health_status is HealthStatus.STOPPED
    assert (await site.current(preview)).status is DeploymentStatus.FAILED


async def test_recovery_stops_a_server_its_interrupted_build_started(site: Site) -> None:
    _, old = await site.deployed()
    stuck = await _stuck_build(
        site,
        site.deployment,
        status=BuildStatus.DEPLOYING,
        worker_id="elsewhere:1:a",
        lease_expires_at=utcnow() - timedelta(seconds=1),
    )
    orphan = await site.storage.servers.create(
        RunningServer(deployment_id=site.deployment.id, build_id=stuck.id, host="h", port=4999)
    )
    site.runner.running[orphan.id] = orphan
    await site.orchestrator.recover()
    assert list(site.runner.running) == [old.id]
    assert (await site.current()).status is DeploymentStatus.RUNNING
    assert (await site.current()).current_build_id != stuck.id


async def test_a_project_gone_from_its_source_fails_the_build_with_that_reason(
    site: Site,
) -> None:
    assert site.admin.source is not None
    site.admin.source.remove("weather-agent")  # type: ignore[attr-defined]
    await site.deploy()
    done = await site.orchestrator.run_once()
    assert done is not None
    assert done.status is BuildStatus.FAILED
    assert done.error_message == "project not found in the source"
    assert site.runner.builds_started == []
