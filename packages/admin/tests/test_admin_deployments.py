"""Deployments and builds: creation rules, deploy, stop, restart, rollback, cancel,
preview expiry, and the state every one of them leaves behind."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mastra_admin.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from mastra_admin.core.inputs import (
    CreateDeployment,
    CreateProject,
    DeployRequest,
    RollbackRequest,
    UpdateDeployment,
    UpdateTeam,
)
from mastra_admin.core.models import (
    BuildStatus,
    BuildTrigger,
    DeploymentStatus,
    DeploymentType,
    RouteStatus,
    TeamSettings,
    utcnow,
)
from mastra_admin.core.orchestrator import BuildOrchestrator
from mastra_admin.core.storage import DeploymentUpdate

from .conftest import World


def orchestrator(world: World) -> BuildOrchestrator:
    assert world.admin.orchestrator is not None
    return world.admin.orchestrator


async def deployed(world: World) -> str:
    """Deploy the world's deployment and run the build; the build id."""
    build = await world.admin.deploy(world.owner.id, world.deployment.id)
    done = await orchestrator(world).run_once()
    assert done is not None
    assert done.status is BuildStatus.SUCCEEDED
    return build.id


class TestCreate:
    async def test_branches_and_slugs_by_type(self, world: World) -> None:
        admin, owner, project = world.admin, world.owner, world.project
        production = world.deployment
        assert (production.branch, production.slug) == ("main", "production-main")
        assert production.status is DeploymentStatus.PENDING
        assert production.public_url is None, "known once routed"
        assert production.expires_at is None
        staging = await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.STAGING)
        )
        assert (staging.branch, staging.slug) == ("staging", "staging-staging")
        preview = await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="feat/Login")
        )
        assert preview.slug == "preview-feat-login"
        with pytest.raises(InvalidInput, match="needs a branch"):
            await admin.create_deployment(
                owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW)
            )

    async def test_preview_expiry(self, world: World) -> None:
        admin, owner, project = world.admin, world.owner, world.project
        before = utcnow()
        default = await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="a")
        )
        assert default.expires_at is not None
        assert timedelta(hours=71) < default.expires_at - before <= timedelta(hours=72, seconds=5)
        await admin.update_team(
            owner.id, world.team.id, UpdateTeam(settings=TeamSettings(preview_ttl_hours=6))
        )
        team_ttl = await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="b")
        )
        assert team_ttl.expires_at is not None
        assert team_ttl.expires_at - before <= timedelta(hours=6, seconds=5)
        explicit = await admin.create_deployment(
            owner.id,
            project.id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch="c", ttl_hours=1),
        )
        assert explicit.expires_at is not None
        assert explicit.expires_at - before <= timedelta(hours=1, seconds=5)
        with pytest.raises(InvalidInput, match="future"):
            await admin.create_deployment(
                owner.id,
                project.id,
                CreateDeployment(
                    type=DeploymentType.PREVIEW,
                    branch="d",
                    expires_at=utcnow() - timedelta(hours=1),
                ),
            )

    async def test_one_deployment_per_branch_and_host_name(self, world: World) -> None:
        admin, owner, project = world.admin, world.owner, world.project
        with pytest.raises(Conflict) as same:
            await admin.create_deployment(
                owner.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
            )
        assert same.value.details["field"] == "slug"
        # A preview of main would share production's host name.
        with pytest.raises(Conflict, match="host name") as host:
            await admin.create_deployment(
                owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="main")
            )
        assert host.value.details["field"] == "branch"
        await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="feat-x")
        )
        with pytest.raises(Conflict):  # "feat/x" and "feat-x" make the same slug
            await admin.create_deployment(
                owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="feat/x")
            )

    async def test_host_names_are_unique_across_the_teams_projects(self, world: World) -> None:
        admin, owner = world.admin, world.owner
        # "weather" on branch "agent-main" would be weather-agent-main.search, the
        # host of the project "weather-agent" on branch "main".
        weather = await admin.create_project(
            owner.id, world.team.id, CreateProject(name="Weather", source_id="support-bot")
        )
        with pytest.raises(Conflict, match="of project 'weather-agent'"):
            await admin.create_deployment(
                owner.id,
                weather.id,
                CreateDeployment(type=DeploymentType.PREVIEW, branch="agent-main"),
            )

    async def test_overrides_are_encrypted(self, world: World) -> None:
        preview = await world.admin.create_deployment(
            world.owner.id,
            world.project.id,
            CreateDeployment(
                type=DeploymentType.PREVIEW, branch="x", env_var_overrides={"TOKEN": "abc"}
            ),
        )
        (override,) = preview.env_var_overrides
        assert override.key == "TOKEN"
        assert "abc" not in override.encrypted_value
        env, _ = await world.admin.build_env(preview, world.project)
        assert env["TOKEN"] == "abc"

    async def test_update_rules(self, world: World) -> None:
        admin, owner = world.admin, world.owner
        with pytest.raises(InvalidInput, match="only preview"):
            await admin.update_deployment(
                owner.id, world.deployment.id, UpdateDeployment(expires_at=utcnow() + timedelta(1))
            )
        preview = await admin.create_deployment(
            owner.id, world.project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="y")
        )
        with pytest.raises(InvalidInput, match="must expire"):
            await admin.update_deployment(owner.id, preview.id, UpdateDeployment(expires_at=None))
        later = utcnow() + timedelta(days=10)
        updated = await admin.update_deployment(
            world.member.id, preview.id, UpdateDeployment(expires_at=later, auto_shutdown=True)
        )
        assert updated.expires_at == later
        assert updated.auto_shutdown
        with pytest.raises(PermissionDenied):
            await admin.update_deployment(world.viewer.id, preview.id, UpdateDeployment())

    async def test_read_and_list(self, world: World) -> None:
        admin = world.admin
        assert (
            await admin.get_deployment(world.viewer.id, world.deployment.id)
        ).id == world.deployment.id
        assert [d.id for d in await admin.list_deployments(world.viewer.id, world.project.id)] == [
            world.deployment.id
        ]
        with pytest.raises(NotFound, match="deployment not found"):
            await admin.get_deployment(world.outsider.id, world.deployment.id)
        with pytest.raises(NotFound, match="deployment not found"):
            await admin.get_deployment(world.owner.id, "missing")


EXECUTION_KEYS = [
    "NODE_OPTIONS",
    "node_options",
    "LD_PRELOAD",
    "npm_config_script_shell",
    "NPM_CONFIG_NODE_OPTIONS",
    "PATH",
]
"""Env var names that change how Node, npm or the loader load code."""


class TestExecutionOverrides:
    """Overrides named as ``changes_execution`` need ``project:commands:write``."""

    @pytest.mark.parametrize("key", EXECUTION_KEYS)
    async def test_a_member_may_not_override_them(self, world: World, key: str) -> None:
        admin, member = world.admin, world.member
        with pytest.raises(InvalidInput) as created:
            await admin.create_deployment(
                member.id,
                world.project.id,
                CreateDeployment(
                    type=DeploymentType.PREVIEW, branch="x", env_var_overrides={key: "--x"}
                ),
            )
        with pytest.raises(InvalidInput) as updated:
            await admin.update_deployment(
                member.id, world.deployment.id, UpdateDeployment(env_var_overrides={key: "--x"})
            )
        for caught in (created, updated):
            assert key in caught.value.message
            assert "project:commands:write" in caught.value.message
            assert caught.value.details["key"] == key
            assert caught.value.details["field"] == "env_var_overrides"
        assert [d.id for d in await admin.list_deployments(member.id, world.project.id)] == [
            world.deployment.id
        ]
        assert (await admin.get_deployment(member.id, world.deployment.id)).env_var_overrides == []

    async def test_a_member_may_override_ordinary_names(self, world: World) -> None:
        overrides = {"OPENAI_API_KEY": "sk-1", "NODE_ENV": "production"}
        preview = await world.admin.create_deployment(
            world.member.id,
            world.project.id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch="x", env_var_overrides=overrides),
        )
        updated = await world.admin.update_deployment(
            world.member.id, preview.id, UpdateDeployment(env_var_overrides=overrides)
        )
        assert sorted(o.key for o in updated.env_var_overrides) == ["NODE_ENV", "OPENAI_API_KEY"]

    async def test_a_member_keeps_an_owners_override_but_cannot_change_it(
        self, world: World
    ) -> None:
        admin, member, deployment = world.admin, world.member, world.deployment
        await admin.update_deployment(
            world.owner.id,
            deployment.id,
            UpdateDeployment(env_var_overrides={"NODE_OPTIONS": "--enable-source-maps"}),
        )
        kept = await admin.update_deployment(
            member.id,
            deployment.id,
            UpdateDeployment(env_var_overrides={"NODE_OPTIONS": "--enable-source-maps", "A": "1"}),
        )
        assert sorted(o.key for o in kept.env_var_overrides) == ["A", "NODE_OPTIONS"]
        for refused in ({"NODE_OPTIONS": "--import=data:x", "A": "1"}, {"A": "1"}):
            with pytest.raises(InvalidInput, match="NODE_OPTIONS"):
                await admin.update_deployment(
                    member.id, deployment.id, UpdateDeployment(env_var_overrides=refused)
                )
        env, _ = await admin.build_env(
            await admin.get_deployment(member.id, deployment.id), world.project
        )
        assert env["NODE_OPTIONS"] == "--enable-source-maps"


class TestDeploy:
    async def test_deploy_queues_a_build_that_runs(self, world: World) -> None:
        admin = world.admin
        build = await admin.deploy(
            world.member.id, world.deployment.id, DeployRequest(commit_sha="abc123")
        )
        assert build.status is BuildStatus.QUEUED
        assert build.triggered_by == world.member.id
        assert build.commit_sha == "abc123"
        assert await admin.get_queue_position(world.viewer.id, build.id) == 1
        await orchestrator(world).run_once()
        assert await admin.get_queue_position(world.viewer.id, build.id) is None
        deployment = await admin.get_deployment(world.viewer.id, world.deployment.id)
        assert deployment.status is DeploymentStatus.RUNNING
        assert deployment.current_build_id == build.id
        assert deployment.public_url is not None
        assert "weather-agent-main.search" in deployment.public_url
        log = await admin.get_build_log(world.viewer.id, build.id)
        assert "[build] running" in log
        (server,) = await admin.list_servers(world.viewer.id, world.deployment.id)
        assert server.build_id == build.id
        (route,) = await admin.list_routes(world.viewer.id, world.project.id)
        assert route == await admin.get_route(world.viewer.id, world.deployment.id)
        assert route.status is RouteStatus.ACTIVE

    async def test_viewers_cannot_deploy_and_outsiders_cannot_see(self, world: World) -> None:
        with pytest.raises(PermissionDenied):
            await world.admin.deploy(world.viewer.id, world.deployment.id)
        with pytest.raises(NotFound):
            await world.admin.deploy(world.outsider.id, world.deployment.id)

    async def test_a_newer_build_supersedes_older_queued_ones(self, world: World) -> None:
        admin = world.admin
        first = await admin.deploy(world.owner.id, world.deployment.id)
        second = await admin.deploy(world.owner.id, world.deployment.id)
        third = await admin.deploy(world.owner.id, world.deployment.id)
        page = await admin.list_builds(world.viewer.id, world.deployment.id)
        statuses = {b.id: b.status for b in page.items}
        assert statuses == {
            first.id: BuildStatus.CANCELLED,
            second.id: BuildStatus.CANCELLED,
            third.id: BuildStatus.QUEUED,
        }
        assert [b.id for b in page.items] == [third.id, second.id, first.id], "newest first"
        assert (await admin.get_build(world.owner.id, first.id)).error_message == (
            f"superseded by build {second.id}"
        )
        assert ("finished", first.id, "cancelled") in world.hooks.events
        assert ("finished", second.id, "cancelled") in world.hooks.events
        # Another deployment's queue is untouched.
        preview = await admin.create_deployment(
            world.owner.id,
            world.project.id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch="p"),
        )
        other = await admin.deploy(world.owner.id, preview.id)
        assert (await admin.get_build(world.owner.id, third.id)).status is BuildStatus.QUEUED
        assert (await admin.get_build(world.owner.id, other.id)).status is BuildStatus.QUEUED
        assert await admin.get_queue_position(world.owner.id, other.id) == 2

    async def test_racing_deploys_leave_exactly_the_newest_queued(self, world: World) -> None:
        admin = world.admin
        builds = await asyncio.gather(
            *(admin.deploy(world.member.id, world.deployment.id) for _ in range(8))
        )
        newest = max(builds, key=lambda b: (b.queued_at, b.id))
        page = await admin.list_builds(world.owner.id, world.deployment.id)
        queued = [b.id for b in page.items if b.status is BuildStatus.QUEUED]
        assert queued == [newest.id]
        assert page.total == 8

    async def test_rollback_triggers_are_not_accepted_on_deploy(self) -> None:
        with pytest.raises(ValueError, match="use rollback"):
            DeployRequest(trigger=BuildTrigger.ROLLBACK)


class TestStop:
    async def test_stop_stops_servers_route_and_queue(self, world: World) -> None:
        admin = world.admin
        await deployed(world)
        queued = await admin.deploy(world.owner.id, world.deployment.id)
        stopped = await admin.stop(world.member.id, world.deployment.id)
        assert stopped.status is DeploymentStatus.STOPPED
        assert stopped.current_build_id is not None, "kept for restart"
        assert world.runner.running == {}
        assert await admin.list_servers(world.owner.id, world.deployment.id) == []
        (history,) = await admin.list_servers(
            world.owner.id, world.deployment.id, include_stopped=True
        )
        assert history.stopped_at is not None
        route = await admin.get_route(world.owner.id, world.deployment.id)
        assert route is not None
        assert route.status is RouteStatus.STOPPED
        assert (await admin.get_build(world.owner.id, queued.id)).status is BuildStatus.CANCELLED
        assert ("status", world.deployment.id, "running", "stopped") in world.hooks.events

    async def test_stopping_a_stopped_deployment_changes_nothing(self, world: World) -> None:
        await world.admin.stop(world.owner.id, world.deployment.id)
        events = len(world.hooks.events)
        again = await world.admin.stop(world.owner.id, world.deployment.id)
        assert again.status is DeploymentStatus.STOPPED
        assert len(world.hooks.events) == events, "no status change, no hook"


class TestRestartAndRollback:
    async def test_restart_needs_a_deployed_build(self, world: World) -> None:
        with pytest.raises(Conflict, match="never been deployed"):
            await world.admin.restart(world.owner.id, world.deployment.id)

    async def test_restart_starts_the_kept_output_again(self, world: World) -> None:
        admin = world.admin
        first = await deployed(world)
        await admin.stop(world.owner.id, world.deployment.id)
        restart = await admin.restart(world.member.id, world.deployment.id)
        assert restart.trigger is BuildTrigger.ROLLBACK
        assert restart.artifact_build_id == first
        done = await orchestrator(world).run_once()
        assert done is not None
        assert done.status is BuildStatus.SUCCEEDED
        assert world.runner.builds_started == [first], "no rebuild"
        deployment = await admin.get_deployment(world.owner.id, world.deployment.id)
        assert deployment.status is DeploymentStatus.RUNNING
        route = await admin.get_route(world.owner.id, world.deployment.id)
        assert route is not None
        assert route.status is RouteStatus.ACTIVE

    async def test_restart_rebuilds_when_the_output_is_gone(self, world: World) -> None:
        first = await deployed(world)
        world.runner.artifacts.clear()
        restart = await world.admin.restart(world.owner.id, world.deployment.id)
        assert restart.trigger is BuildTrigger.MANUAL
        assert restart.artifact_build_id is None
        await orchestrator(world).run_once()
        assert world.runner.builds_started == [first, restart.id]

    async def test_rollback_to_an_earlier_build(self, world: World) -> None:
        admin = world.admin
        first = await deployed(world)
        second = await deployed(world)
        rollback = await admin.rollback(
            world.member.id, world.deployment.id, RollbackRequest(build_id=first)
        )
        assert rollback.trigger is BuildTrigger.ROLLBACK
        assert rollback.artifact_build_id == first
        await orchestrator(world).run_once()
        assert world.runner.builds_started == [first, second]
        (server,) = await admin.list_servers(world.owner.id, world.deployment.id)
        assert server.metadata["artifact_build_id"] == first
        # Rolling back to the rollback build itself uses the original output.
        again = await admin.rollback(world.owner.id, world.deployment.id, rollback.id)
        assert again.artifact_build_id == first

    async def test_rollback_validation(self, world: World) -> None:
        admin, owner = world.admin, world.owner
        with pytest.raises(NotFound):
            await admin.rollback(owner.id, world.deployment.id, "missing")
        queued = await admin.deploy(owner.id, world.deployment.id)
        with pytest.raises(Conflict, match="only a succeeded build") as not_done:
            await admin.rollback(owner.id, world.deployment.id, queued.id)
        assert not_done.value.details["status"] == "queued"
        world.runner.fail_step = "build"
        failed = await orchestrator(world).run_once()
        assert failed is not None
        assert failed.status is BuildStatus.FAILED
        with pytest.raises(Conflict, match="failed"):
            await admin.rollback(owner.id, world.deployment.id, failed.id)
        world.runner.fail_step = None
        good = await deployed(world)
        world.runner.artifacts.pop(good)
        with pytest.raises(Conflict, match="no longer kept"):
            await admin.rollback(owner.id, world.deployment.id, good)
        preview = await admin.create_deployment(
            owner.id, world.project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="z")
        )
        with pytest.raises(NotFound):  # a build of another deployment
            await admin.rollback(owner.id, preview.id, good)
        with pytest.raises(PermissionDenied):
            await admin.rollback(world.viewer.id, world.deployment.id, good)


class TestCancel:
    async def test_cancel_a_queued_build(self, world: World) -> None:
        admin = world.admin
        build = await admin.deploy(world.owner.id, world.deployment.id)
        with pytest.raises(PermissionDenied):
            await admin.cancel_build(world.viewer.id, build.id)
        cancelled = await admin.cancel_build(world.member.id, build.id)
        assert cancelled.status is BuildStatus.CANCELLED
        assert cancelled.completed_at is not None
        assert ("finished", build.id, "cancelled") in world.hooks.events
        assert await orchestrator(world).run_once() is None, "nothing left to run"
        with pytest.raises(Conflict, match="already cancelled"):
            await admin.cancel_build(world.member.id, build.id)

    async def test_cancel_a_running_build_keeps_the_old_server(self, world: World) -> None:
        admin = world.admin
        first = await deployed(world)
        world.runner.hang_step = "install"
        world.runner.step_entered.clear()
        second = await admin.deploy(world.owner.id, world.deployment.id)
        running = asyncio.create_task(orchestrator(world).run_once())
        await asyncio.wait_for(world.runner.step_entered.wait(), 5)
        while (await admin.get_build(world.owner.id, second.id)).status is not BuildStatus.BUILDING:
            await asyncio.sleep(0.01)
        cancelled = await admin.cancel_build(world.owner.id, second.id)
        assert cancelled.status is BuildStatus.CANCELLED
        final = await asyncio.wait_for(running, 5)
        assert final is not None
        assert final.status is BuildStatus.CANCELLED
        assert second.id in world.runner.builds_cancelled
        deployment = await admin.get_deployment(world.owner.id, world.deployment.id)
        assert deployment.status is DeploymentStatus.RUNNING
        assert deployment.current_build_id == first
        (server,) = await admin.list_servers(world.owner.id, world.deployment.id)
        assert server.build_id == first

    async def test_finished_builds_cannot_be_cancelled(self, world: World) -> None:
        build = await deployed(world)
        with pytest.raises(Conflict, match="already succeeded") as caught:
            await world.admin.cancel_build(world.owner.id, build)
        assert caught.value.details["status"] == "succeeded"

    async def test_build_reads_are_hidden_from_outsiders(self, world: World) -> None:
        build = await world.admin.deploy(world.owner.id, world.deployment.id)
        for read in (
            world.admin.get_build(world.outsider.id, build.id),
            world.admin.get_build_log(world.outsider.id, build.id),
            world.admin.get_queue_position(world.outsider.id, build.id),
            world.admin.cancel_build(world.outsider.id, build.id),
        ):
            with pytest.raises(NotFound, match="build not found"):
                await read
        with pytest.raises(NotFound):
            await world.admin.list_builds(world.outsider.id, world.deployment.id)


class TestDeleteAndExpiry:
    async def test_delete_removes_server_route_and_builds(self, world: World) -> None:
        admin = world.admin
        await deployed(world)
        with pytest.raises(PermissionDenied):
            await admin.delete_deployment(world.member.id, world.deployment.id)
        await admin.delete_deployment(world.team_admin.id, world.deployment.id)
        assert world.runner.running == {}
        assert world.router.routes == {}
        assert await world.storage.routes.list_all() == []
        with pytest.raises(NotFound):
            await admin.get_deployment(world.owner.id, world.deployment.id)

    async def test_expired_previews_are_cleaned_up(self, world: World) -> None:
        admin, owner = world.admin, world.owner
        expiring = await admin.create_deployment(
            owner.id,
            world.project.id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch="old", ttl_hours=1),
        )
        lasting = await admin.create_deployment(
            owner.id,
            world.project.id,
            CreateDeployment(type=DeploymentType.PREVIEW, branch="new", ttl_hours=48),
        )
        await admin.deploy(owner.id, expiring.id)
        await orchestrator(world).run_once()
        assert world.runner.running
        # An hour and a bit later:
        await world.storage.deployments.update(
            expiring.id,
            DeploymentUpdate(expires_at=utcnow() - timedelta(minutes=1)),
        )
        assert await admin.cleanup_expired_previews() == [expiring.id]
        assert world.runner.running == {}
        assert world.router.routes == {}
        remaining = {d.id for d in await admin.list_deployments(owner.id, world.project.id)}
        assert remaining == {world.deployment.id, lasting.id}
        assert await admin.cleanup_expired_previews() == []
