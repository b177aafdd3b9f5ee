"""The in-memory storage keeps the storage contract: conflicts, parents, cascades, the queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from mastra_admin.core.errors import Conflict, NotFound
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentType,
    Project,
    ProjectEnvVar,
    RunningServer,
    Team,
    TeamMember,
    User,
    utcnow,
)
from mastra_admin.core.storage import BuildUpdate, UserUpdate
from mastra_admin.core.testing.memory import InMemoryAdminStorage


@pytest.fixture
def storage() -> InMemoryAdminStorage:
    return InMemoryAdminStorage()


async def _deployment(storage: InMemoryAdminStorage, branch: str = "main") -> Deployment:
    team = await storage.teams.get_by_slug("t") or await storage.teams.create(
        Team(name="T", slug="t")
    )
    project = await storage.projects.get_by_slug(team.id, "p") or await storage.projects.create(
        Project(team_id=team.id, name="P", slug="p", source_type="local")
    )
    return await storage.deployments.create(
        Deployment(project_id=project.id, type=DeploymentType.PREVIEW, branch=branch, slug=branch)
    )


async def test_email_is_unique_case_insensitively_and_the_conflict_names_it(
    storage: InMemoryAdminStorage,
) -> None:
    await storage.users.create(User(email="Ada@Example.com"))
    with pytest.raises(Conflict) as caught:
        await storage.users.create(User(email="ada@example.COM"))
    assert caught.value.details == {"field": "email"}
    found = await storage.users.get_by_email("ADA@example.com")
    assert found is not None
    assert found.email == "Ada@Example.com"


async def test_returned_entities_are_copies(storage: InMemoryAdminStorage) -> None:
    user = await storage.users.create(User(email="a@example.com"))
    user.name = "changed outside"
    stored = await storage.users.get(user.id)
    assert stored is not None
    assert stored.name is None


async def test_update_bumps_updated_at_and_refuses_a_taken_email(
    storage: InMemoryAdminStorage,
) -> None:
    a = await storage.users.create(User(email="a@example.com"))
    await storage.users.create(User(email="b@example.com"))
    renamed = await storage.users.update(a.id, UserUpdate(name="Ada"))
    assert renamed.name == "Ada"
    assert renamed.updated_at >= a.updated_at
    with pytest.raises(Conflict):
        await storage.users.update(a.id, UserUpdate(email="B@example.com"))
    with pytest.raises(NotFound):
        await storage.users.update("missing", UserUpdate(name="x"))


async def test_missing_parents_are_not_found(storage: InMemoryAdminStorage) -> None:
    with pytest.raises(NotFound):
        await storage.projects.create(Project(team_id="nope", name="P", slug="p", source_type="x"))
    team = await storage.teams.create(Team(name="T", slug="t"))
    with pytest.raises(NotFound):
        await storage.teams.add_member(TeamMember(team_id=team.id, user_id="nobody"))
    with pytest.raises(NotFound):
        await storage.builds.create(Build(deployment_id="nope", triggered_by="u"))


async def test_deleting_a_team_cascades_to_everything_below(
    storage: InMemoryAdminStorage,
) -> None:
    deployment = await _deployment(storage)
    build = await storage.builds.create(Build(deployment_id=deployment.id, triggered_by="u"))
    await storage.servers.create(
        RunningServer(deployment_id=deployment.id, build_id=build.id, host="127.0.0.1", port=4100)
    )
    await storage.projects.set_env_var(
        ProjectEnvVar(project_id=deployment.project_id, key="K", encrypted_value="v")
    )
    team = await storage.teams.get_by_slug("t")
    assert team is not None
    assert await storage.teams.delete(team.id) is True
    assert await storage.projects.get(deployment.project_id) is None
    assert await storage.deployments.get(deployment.id) is None
    assert await storage.builds.get(build.id) is None
    assert await storage.servers.list_active() == []
    assert await storage.projects.list_env_vars(deployment.project_id) == []


async def test_env_var_replace_keeps_id_and_orders_untyped_first(
    storage: InMemoryAdminStorage,
) -> None:
    deployment = await _deployment(storage)
    pid = deployment.project_id
    first = await storage.projects.set_env_var(
        ProjectEnvVar(project_id=pid, key="B", encrypted_value="1")
    )
    again = await storage.projects.set_env_var(
        ProjectEnvVar(project_id=pid, key="B", encrypted_value="2")
    )
    await storage.projects.set_env_var(
        ProjectEnvVar(
            project_id=pid, key="A", encrypted_value="3", deployment_type=DeploymentType.STAGING
        )
    )
    await storage.projects.set_env_var(ProjectEnvVar(project_id=pid, key="A", encrypted_value="4"))
    assert again.id == first.id
    assert again.created_at == first.created_at
    listed = await storage.projects.list_env_vars(pid)
    assert [(v.key, v.deployment_type, v.encrypted_value) for v in listed] == [
        ("A", None, "4"),
        ("A", DeploymentType.STAGING, "3"),
        ("B", None, "2"),
    ]


async def test_dequeue_is_fifo_skips_busy_deployments_and_respects_max_active(
    storage: InMemoryAdminStorage,
) -> None:
    one = await _deployment(storage, "one")
    two = await _deployment(storage, "two")
    t0 = utcnow()
    b1 = await storage.builds.create(Build(deployment_id=one.id, triggered_by="u", queued_at=t0))
    b2 = await storage.builds.create(
        Build(deployment_id=one.id, triggered_by="u", queued_at=t0 + timedelta(seconds=1))
    )
    b3 = await storage.builds.create(
        Build(deployment_id=two.id, triggered_by="u", queued_at=t0 + timedelta(seconds=2))
    )
    assert await storage.builds.queue_position(b3.id) == 3
    lease = utcnow() + timedelta(seconds=30)

    first = await storage.builds.dequeue("w1", lease)
    assert first is not None
    assert first.id == b1.id
    assert first.status is BuildStatus.BUILDING
    assert first.worker_id == "w1"
    assert first.started_at is not None
    assert first.lease_expires_at == lease
    assert await storage.builds.dequeue("w2", lease, max_active=1) is None

    second = await storage.builds.dequeue("w2", lease)
    assert second is not None
    assert second.id == b3.id
    assert await storage.builds.dequeue("w3", lease) is None
    assert await storage.builds.queue_position(b2.id) == 1

    assert await storage.builds.renew_lease(b1.id, "w1", lease + timedelta(seconds=5))
    assert not await storage.builds.renew_lease(b1.id, "w2", lease)


async def test_concurrent_dequeue_hands_each_build_out_once(
    storage: InMemoryAdminStorage,
) -> None:
    ids = []
    for i in range(20):
        deployment = await _deployment(storage, f"b{i}")
        ids.append(
            (await storage.builds.create(Build(deployment_id=deployment.id, triggered_by="u"))).id
        )
    lease = utcnow() + timedelta(seconds=30)
    taken = await asyncio.gather(*(storage.builds.dequeue(f"w{i}", lease) for i in range(30)))
    got = [b.id for b in taken if b is not None]
    assert sorted(got) == sorted(ids)


async def test_transition_is_compare_and_set(storage: InMemoryAdminStorage) -> None:
    deployment = await _deployment(storage)
    build = await storage.builds.create(Build(deployment_id=deployment.id, triggered_by="u"))
    moved = await storage.builds.transition(
        build.id, [BuildStatus.QUEUED], BuildUpdate(status=BuildStatus.CANCELLED)
    )
    assert moved is not None
    assert moved.status is BuildStatus.CANCELLED
    assert (
        await storage.builds.transition(
            build.id, [BuildStatus.QUEUED], BuildUpdate(status=BuildStatus.BUILDING)
        )
        is None
    )
    with pytest.raises(NotFound):
        await storage.builds.transition("missing", [BuildStatus.QUEUED], BuildUpdate())


async def test_cancel_queued_keeps_one_and_counts_by_status(
    storage: InMemoryAdminStorage,
) -> None:
    deployment = await _deployment(storage)
    builds = [
        await storage.builds.create(Build(deployment_id=deployment.id, triggered_by="u"))
        for _ in range(3)
    ]
    cancelled = await storage.builds.cancel_queued(
        deployment.id, except_build_id=builds[-1].id, at=utcnow()
    )
    assert sorted(cancelled) == sorted(b.id for b in builds[:2])
    assert await storage.builds.count_by_status() == {
        BuildStatus.CANCELLED: 2,
        BuildStatus.QUEUED: 1,
    }
    assert await storage.builds.queue_length() == 1
