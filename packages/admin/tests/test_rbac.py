"""RBAC: wildcards, the system roles, and the Authorizer's view of who may see what."""

from __future__ import annotations

import pytest

from mastra_admin.core.errors import InvalidInput, NotFound, PermissionDenied
from mastra_admin.core.inputs import AssignRole, CreateProject, CreateRole
from mastra_admin.core.models import ResourceType
from mastra_admin.core.rbac import (
    PERMISSIONS,
    PLATFORM_ADMIN,
    Principal,
    check_custom_permissions,
    has_permission,
    permission_matches,
    system_role_id,
    system_role_permissions,
    system_roles,
)

from .conftest import World


@pytest.mark.parametrize(
    ("granted", "wanted", "expected"),
    [
        ("*", "project:read", True),
        ("*", "team:members:write", True),
        ("project:*", "project:read", True),
        ("project:*", "project:x:y", True),
        ("project:*", "projects:read", False),
        ("project:*", "project", False),
        ("team:*", "team:members:write", True),
        ("team:members:*", "team:members:read", True),
        ("team:members:*", "team:read", False),
        ("project:read", "project:read", True),
        ("project:read", "project:create", False),
        ("project:read", "project:read:extra", False),
    ],
)
def test_wildcards(granted: str, wanted: str, expected: bool) -> None:
    assert permission_matches(granted, wanted) is expected


def test_system_roles_are_stable_and_complete() -> None:
    roles = {role.name: role for role in system_roles()}
    assert list(roles) == [PLATFORM_ADMIN, "team_owner", "team_admin", "team_member", "team_viewer"]
    assert all(role.is_system and role.team_id is None for role in roles.values())
    assert roles[PLATFORM_ADMIN].permissions == ["*"]
    assert roles["team_owner"].id == system_role_id("team_owner") == system_roles()[1].id
    owner = system_role_permissions("team_owner")
    assert all(has_permission(owner, p) for p in PERMISSIONS), "owners may do everything in a team"


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        ("team_admin", ["team:update", "env_var:reveal", "role:write"], ["team:delete"]),
        (
            "team_member",
            ["project:create", "deployment:deploy", "build:cancel", "env_var:write"],
            [
                "env_var:reveal",
                "project:delete",
                "project:commands:write",
                "team:members:write",
                "token:write",
            ],
        ),
        (
            "team_viewer",
            ["project:read", "build:read", "observability:read", "env_var:read"],
            ["env_var:reveal", "env_var:write", "deployment:deploy", "project:create"],
        ),
    ],
)
def test_system_role_permissions(role: str, allowed: list[str], denied: list[str]) -> None:
    granted = system_role_permissions(role)
    assert all(has_permission(granted, p) for p in allowed)
    assert not any(has_permission(granted, p) for p in denied)


def test_only_owners_and_admins_reveal_env_vars() -> None:
    revealers = [r.name for r in system_roles() if has_permission(r.permissions, "env_var:reveal")]
    assert revealers == [PLATFORM_ADMIN, "team_owner", "team_admin"]


def test_only_owners_and_admins_change_what_projects_execute() -> None:
    holders = [
        r.name for r in system_roles() if has_permission(r.permissions, "project:commands:write")
    ]
    assert holders == [PLATFORM_ADMIN, "team_owner", "team_admin"]


def test_every_system_permission_is_in_the_catalogue() -> None:
    for role in system_roles():
        check_custom_permissions(role.permissions)


def test_custom_permissions_are_checked_against_the_catalogue() -> None:
    assert check_custom_permissions(["project:read", "project:read", "build:*"]) == [
        "project:read",
        "build:*",
    ]
    with pytest.raises(InvalidInput, match="unknown permissions: widget:read") as caught:
        check_custom_permissions(["project:read", "widget:read"])
    assert caught.value.details["unknown"] == ["widget:read"]


async def test_storage_init_seeds_the_system_roles(world: World) -> None:
    stored = await world.storage.rbac.list_roles()
    assert [r.name for r in stored if r.is_system] == [
        PLATFORM_ADMIN,
        "team_admin",
        "team_member",
        "team_owner",
        "team_viewer",
    ]


async def test_access_for_each_rank(world: World) -> None:
    authz = world.admin.authorizer
    root = await authz.access(world.root.id, world.team.id)
    assert root.visible
    assert root.platform_admin
    assert root.team_role is None
    owner = await authz.access(world.owner.id, world.team.id, world.project.id)
    assert owner.allows("team:delete")
    assert owner.team_role is not None
    outsider = await authz.access(world.outsider.id, world.team.id)
    assert not outsider.visible
    assert not outsider.allows("team:read")
    assert await authz.can(world.viewer.id, "project:read", world.team.id, world.project.id)
    assert not await authz.can(world.viewer.id, "project:update", world.team.id, world.project.id)


async def test_ensure_hides_from_outsiders_and_refuses_the_rest(world: World) -> None:
    authz = world.admin.authorizer
    with pytest.raises(NotFound):
        await authz.ensure(world.outsider.id, "team:read", world.team.id)
    with pytest.raises(NotFound):
        await authz.ensure(world.outsider.id, "project:read", world.team.id, world.project.id)
    with pytest.raises(PermissionDenied) as caught:
        await authz.ensure(world.viewer.id, "project:update", world.team.id, world.project.id)
    assert caught.value.details["permission"] == "project:update"
    await authz.ensure(world.member.id, "deployment:deploy", world.team.id, world.project.id)


async def test_a_principal_may_do_what_both_its_scopes_and_its_role_allow(
    world: World,
) -> None:
    authz, team, project = world.admin.authorizer, world.team.id, world.project.id
    viewer_everything = Principal(user_id=world.viewer.id, scopes=frozenset({"*"}))
    assert await authz.can(viewer_everything, "project:read", team, project)
    assert not await authz.can(viewer_everything, "project:delete", team, project)
    owner_reading = Principal(user_id=world.owner.id, scopes=frozenset({"project:read"}))
    assert await authz.can(owner_reading, "project:read", team, project)
    assert not await authz.can(owner_reading, "project:update", team, project)
    with pytest.raises(PermissionDenied) as caught:
        await authz.ensure(owner_reading, "env_var:write", team, project)
    assert caught.value.details["scopes"] == ["project:read"]
    root_reading = Principal(user_id=world.root.id, scopes=frozenset({"project:read"}))
    assert await authz.is_platform_admin(root_reading)
    with pytest.raises(PermissionDenied):
        await authz.ensure_platform_admin(root_reading)


async def test_a_project_token_knows_its_project_and_nothing_around_it(world: World) -> None:
    admin, owner = world.admin, world.owner.id
    other = await admin.create_project(
        owner, world.team.id, CreateProject(name="Other", source_id="support-bot")
    )
    token = Principal(user_id=owner, scopes=frozenset({"*"}), project_id=world.project.id)
    assert await admin.authorizer.can(token, "project:delete", world.team.id, world.project.id)
    assert not (await admin.authorizer.access(token, world.team.id)).visible
    assert not (await admin.authorizer.access(token, world.team.id, other.id)).visible
    assert not await admin.authorizer.is_platform_admin(
        Principal(user_id=world.root.id, scopes=frozenset({"*"}), project_id=world.project.id)
    )


async def test_what_a_principal_resolved_goes_when_its_grants_change(world: World) -> None:
    """One principal (one request) checks repeatedly; a change made meanwhile counts."""
    admin, member = world.admin, Principal(user_id=world.member.id)
    for _ in range(2):
        assert await admin.authorizer.can(member, "deployment:deploy", world.team.id)
    tracker = admin.storage.changes
    # Kept on the principal where the storage vouches for it (PostgreSQL's feed).
    assert bool(member._resolved) == (tracker is not None and tracker.live)
    await admin.remove_member(world.owner.id, world.team.id, world.member.id)
    assert not (await admin.authorizer.access(member, world.team.id)).visible


async def test_project_scoped_roles_apply_to_that_project_only(world: World) -> None:
    admin, owner, guest = world.admin, world.owner, world.outsider
    other = await admin.create_project(
        owner.id, world.team.id, CreateProject(name="Support", source_id="support-bot")
    )
    role = await admin.create_role(
        owner.id,
        world.team.id,
        CreateRole(name="deployer", permissions=["project:read", "deployment:*", "build:*"]),
    )
    await admin.assign_role(
        owner.id,
        world.team.id,
        AssignRole(
            role_id=role.id,
            user_id=guest.id,
            resource_type=ResourceType.PROJECT,
            resource_id=world.project.id,
        ),
    )
    authz = admin.authorizer
    await authz.ensure(guest.id, "deployment:deploy", world.team.id, world.project.id)
    with pytest.raises(NotFound):
        await authz.ensure(guest.id, "project:read", world.team.id, other.id)
    # The team itself becomes visible (read only), not its team-level permissions.
    team_access = await authz.access(guest.id, world.team.id)
    assert team_access.visible
    assert team_access.allows("team:read")
    assert not team_access.allows("deployment:deploy")
    with pytest.raises(PermissionDenied):
        await authz.ensure(guest.id, "project:create", world.team.id)


async def test_team_scoped_roles_apply_to_every_project(world: World) -> None:
    admin, owner, guest = world.admin, world.owner, world.outsider
    role = await admin.create_role(
        owner.id,
        world.team.id,
        CreateRole(name="auditor", permissions=["project:read", "build:read"]),
    )
    await admin.assign_role(
        owner.id,
        world.team.id,
        AssignRole(
            role_id=role.id,
            user_id=guest.id,
            resource_type=ResourceType.TEAM,
            resource_id=world.team.id,
        ),
    )
    other = await admin.create_project(
        owner.id, world.team.id, CreateProject(name="Support", source_id="support-bot")
    )
    for project_id in (world.project.id, other.id):
        await admin.authorizer.ensure(guest.id, "build:read", world.team.id, project_id)
        with pytest.raises(PermissionDenied):
            await admin.authorizer.ensure(guest.id, "deployment:deploy", world.team.id, project_id)


async def test_a_custom_role_of_another_team_does_not_apply(world: World) -> None:
    """An assignment pointing a team's custom role at another team's project (as a
    broken or hostile store row could) grants nothing there."""
    from mastra_admin.core.inputs import CreateTeam
    from mastra_admin.core.models import RoleAssignment

    admin = world.admin
    other_team = await admin.create_team(world.outsider.id, CreateTeam(name="Other"))
    role = await admin.create_role(
        world.owner.id, world.team.id, CreateRole(name="reader", permissions=["project:read"])
    )
    await world.storage.rbac.assign(
        RoleAssignment(
            role_id=role.id,
            user_id=world.member.id,
            resource_type=ResourceType.TEAM,
            resource_id=other_team.id,
        )
    )
    access = await admin.authorizer.access(world.member.id, other_team.id)
    assert not access.visible


def test_the_access_control_page_shows_the_current_permissions() -> None:
    from pathlib import Path

    from mastra_admin.core.rbac import permission_table

    page = Path(__file__).resolve().parents[3] / "docs" / "access-control.md"
    assert permission_table() in page.read_text(encoding="utf-8"), (
        "docs/access-control.md is out of date: paste "
        "`python -c 'from mastra_admin.core.rbac import permission_table; "
        "print(permission_table())'` into it"
    )
