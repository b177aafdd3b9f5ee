"""Custom roles per team: who may create them, what they may grant, the licence gate."""

from __future__ import annotations

import pytest

from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    LicenceLimit,
    NotFound,
    PermissionDenied,
)
from mastra_admin.core.inputs import AssignRole, CreateProject, CreateRole, CreateTeam, UpdateRole
from mastra_admin.core.models import ResourceType
from mastra_admin.core.rbac import PLATFORM_ADMIN, system_role_id

from .conftest import AdminFactory, World


def on_team(world: World, role_id: str, user_id: str) -> AssignRole:
    return AssignRole(
        role_id=role_id, user_id=user_id, resource_type=ResourceType.TEAM, resource_id=world.team.id
    )


async def test_create_update_list_delete(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    role = await admin.create_role(
        owner.id,
        team.id,
        CreateRole(name="releaser", description="ships", permissions=["deployment:deploy"]),
    )
    assert role.team_id == team.id
    assert not role.is_system
    names = [r.name for r in await admin.list_roles(world.viewer.id, team.id)]
    assert names[-1] == "releaser"
    assert PLATFORM_ADMIN in names
    updated = await admin.update_role(
        owner.id, team.id, role.id, UpdateRole(permissions=["deployment:*", "build:read"])
    )
    assert updated.permissions == ["deployment:*", "build:read"]
    assert updated.description == "ships"
    cleared = await admin.update_role(owner.id, team.id, role.id, UpdateRole(description=None))
    assert cleared.description is None
    assert cleared.permissions == ["deployment:*", "build:read"]
    await admin.delete_role(owner.id, team.id, role.id)
    assert "releaser" not in [r.name for r in await admin.list_roles(owner.id, team.id)]
    with pytest.raises(NotFound):
        await admin.delete_role(owner.id, team.id, role.id)


async def test_role_names_are_unique_and_not_system_names(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    await admin.create_role(owner.id, team.id, CreateRole(name="ops", permissions=["build:read"]))
    with pytest.raises(Conflict):
        await admin.create_role(
            owner.id, team.id, CreateRole(name="ops", permissions=["build:read"])
        )
    with pytest.raises(Conflict, match="system role"):
        await admin.create_role(
            owner.id, team.id, CreateRole(name="team_owner", permissions=["build:read"])
        )


async def test_unknown_permissions_are_refused(world: World) -> None:
    with pytest.raises(InvalidInput, match="unknown permissions"):
        await world.admin.create_role(
            world.owner.id, world.team.id, CreateRole(name="odd", permissions=["rocket:launch"])
        )


async def test_system_roles_cannot_be_changed(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    with pytest.raises(PermissionDenied, match="system roles"):
        await admin.update_role(
            owner.id, team.id, system_role_id("team_viewer"), UpdateRole(permissions=["*"])
        )
    with pytest.raises(PermissionDenied, match="system roles"):
        await admin.delete_role(owner.id, team.id, system_role_id("team_viewer"))


async def test_another_teams_role_is_not_found(world: World) -> None:
    admin = world.admin
    other = await admin.create_team(world.outsider.id, CreateTeam(name="Other"))
    theirs = await admin.create_role(
        world.outsider.id, other.id, CreateRole(name="x", permissions=["build:read"])
    )
    with pytest.raises(NotFound):
        await admin.delete_role(world.owner.id, world.team.id, theirs.id)
    with pytest.raises(NotFound):
        await admin.assign_role(
            world.owner.id, world.team.id, on_team(world, theirs.id, world.member.id)
        )


async def test_members_and_viewers_cannot_manage_roles(world: World) -> None:
    for user in (world.member, world.viewer):
        with pytest.raises(PermissionDenied):
            await world.admin.create_role(
                user.id, world.team.id, CreateRole(name="x", permissions=["build:read"])
            )
    with pytest.raises(NotFound):
        await world.admin.list_roles(world.outsider.id, world.team.id)


async def test_nobody_grants_more_than_they_hold(world: World) -> None:
    """An admin lacks team:delete, so cannot put it in a role or assign team_owner."""
    admin, team = world.admin, world.team
    with pytest.raises(PermissionDenied, match="team:delete"):
        await admin.create_role(
            world.team_admin.id, team.id, CreateRole(name="wrecker", permissions=["team:*"])
        )
    with pytest.raises(PermissionDenied, match="team:delete"):
        await admin.assign_role(
            world.team_admin.id,
            team.id,
            on_team(world, system_role_id("team_owner"), world.member.id),
        )
    with pytest.raises(PermissionDenied, match="platform administrator"):
        await admin.assign_role(
            world.owner.id, team.id, on_team(world, system_role_id(PLATFORM_ADMIN), world.member.id)
        )
    # What they do hold, they may hand out.
    await admin.assign_role(
        world.team_admin.id,
        team.id,
        on_team(world, system_role_id("team_admin"), world.outsider.id),
    )
    await admin.authorizer.ensure(world.outsider.id, "env_var:reveal", team.id, world.project.id)


async def test_assignments_must_point_inside_the_team(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    role = await admin.create_role(
        owner.id, team.id, CreateRole(name="r", permissions=["build:read"])
    )
    other = await admin.create_team(world.outsider.id, CreateTeam(name="Other"))
    foreign_project = await admin.create_project(
        world.outsider.id, other.id, CreateProject(name="Theirs", source_id="support-bot")
    )
    with pytest.raises(InvalidInput, match="this team"):
        await admin.assign_role(
            owner.id,
            team.id,
            AssignRole(
                role_id=role.id,
                user_id=world.member.id,
                resource_type=ResourceType.TEAM,
                resource_id=other.id,
            ),
        )
    with pytest.raises(NotFound):
        await admin.assign_role(
            owner.id,
            team.id,
            AssignRole(
                role_id=role.id,
                user_id=world.member.id,
                resource_type=ResourceType.PROJECT,
                resource_id=foreign_project.id,
            ),
        )
    with pytest.raises(NotFound):
        await admin.assign_role(owner.id, team.id, on_team(world, role.id, "no-such-user"))


async def test_assign_list_unassign(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    role = await admin.create_role(
        owner.id, team.id, CreateRole(name="r", permissions=["build:read"])
    )
    on_project = AssignRole(
        role_id=role.id,
        user_id=world.outsider.id,
        resource_type=ResourceType.PROJECT,
        resource_id=world.project.id,
    )
    await admin.assign_role(owner.id, team.id, on_team(world, role.id, world.outsider.id))
    await admin.assign_role(owner.id, team.id, on_project)
    with pytest.raises(Conflict):
        await admin.assign_role(owner.id, team.id, on_project)
    listed = await admin.list_role_assignments(world.viewer.id, team.id)
    assert {(a.resource_type, a.resource_id) for a in listed} == {
        (ResourceType.TEAM, team.id),
        (ResourceType.PROJECT, world.project.id),
    }
    await admin.unassign_role(owner.id, team.id, on_team(world, role.id, world.outsider.id))
    await admin.unassign_role(owner.id, team.id, on_project)
    with pytest.raises(NotFound):
        await admin.unassign_role(owner.id, team.id, on_project)
    with pytest.raises(NotFound):
        await admin.get_project(world.outsider.id, world.project.id)


async def test_deleting_a_role_revokes_what_it_gave(world: World) -> None:
    admin, team, owner = world.admin, world.team, world.owner
    role = await admin.create_role(
        owner.id, team.id, CreateRole(name="r", permissions=["project:read"])
    )
    await admin.assign_role(owner.id, team.id, on_team(world, role.id, world.outsider.id))
    assert (await admin.get_project(world.outsider.id, world.project.id)).id == world.project.id
    await admin.delete_role(owner.id, team.id, role.id)
    with pytest.raises(NotFound):
        await admin.get_project(world.outsider.id, world.project.id)


async def test_custom_roles_need_the_advanced_rbac_feature(make_admin: AdminFactory) -> None:
    admin = await make_admin()  # community tier
    root, _ = await admin.bootstrap_admin("root@example.com")
    team = await admin.create_team(root.id, CreateTeam(name="Free"))
    with pytest.raises(LicenceLimit, match="advanced-rbac") as caught:
        await admin.create_role(root.id, team.id, CreateRole(name="r", permissions=["build:read"]))
    assert caught.value.details == {"feature": "advanced-rbac", "tier": "community"}
    with pytest.raises(LicenceLimit):
        await admin.assign_role(
            root.id,
            team.id,
            AssignRole(
                role_id=system_role_id("team_viewer"),
                user_id=root.id,
                resource_type=ResourceType.TEAM,
                resource_id=team.id,
            ),
        )
    # Listing roles needs no feature.
    assert len(await admin.list_roles(root.id, team.id)) == 5


async def test_deploying_needs_build_create_as_well(world: World) -> None:
    """A role with ``deployment:deploy`` alone may stop a deployment, not queue builds."""
    admin, team, owner = world.admin, world.team, world.owner
    role = await admin.create_role(
        owner.id,
        team.id,
        CreateRole(name="operator", permissions=["deployment:read", "deployment:deploy"]),
    )
    await admin.assign_role(owner.id, team.id, on_team(world, role.id, world.outsider.id))
    with pytest.raises(PermissionDenied, match="build:create"):
        await admin.deploy(world.outsider.id, world.deployment.id)
    stopped = await admin.stop(world.outsider.id, world.deployment.id)
    assert stopped.status.value == "stopped"
