"""Teams, members, invites, installations, custom roles and role assignments."""

from __future__ import annotations

from pydantic import BaseModel

from mastra_admin.core.inputs import (
    AcceptInvite,
    AssignRole,
    CreateInstallation,
    CreateRole,
    CreateTeam,
    InviteMember,
    UpdateMember,
    UpdateRole,
    UpdateTeam,
)
from mastra_admin.core.models import (
    Role,
    RoleAssignment,
    Team,
    TeamInstallation,
    TeamInvite,
    TeamMember,
)
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["endpoints"]


class CreatedInvite(BaseModel):
    invite: TeamInvite
    token: str


async def list_teams(call: Call) -> list[Team]:
    return await call.admin.list_teams(call.actor)


async def create_team(call: Call) -> Team:
    return await call.admin.create_team(call.actor, call.body)


async def get_team(call: Call) -> Team:
    return await call.admin.get_team(call.actor, call.params["team_id"])


async def update_team(call: Call) -> Team:
    return await call.admin.update_team(call.actor, call.params["team_id"], call.body)


async def delete_team(call: Call) -> None:
    await call.admin.delete_team(call.actor, call.params["team_id"])


async def list_members(call: Call) -> list[TeamMember]:
    return await call.admin.list_members(call.actor, call.params["team_id"])


async def update_member(call: Call) -> TeamMember:
    p = call.params
    return await call.admin.update_member_role(call.actor, p["team_id"], p["user_id"], call.body)


async def remove_member(call: Call) -> None:
    await call.admin.remove_member(call.actor, call.params["team_id"], call.params["user_id"])


async def list_invites(call: Call) -> list[TeamInvite]:
    return await call.admin.list_invites(call.actor, call.params["team_id"])


async def invite_member(call: Call) -> CreatedInvite:
    invite, token = await call.admin.invite_member(call.actor, call.params["team_id"], call.body)
    return CreatedInvite(invite=invite, token=token)


async def revoke_invite(call: Call) -> None:
    await call.admin.revoke_invite(call.actor, call.params["team_id"], call.params["invite_id"])


async def accept_invite(call: Call) -> TeamMember:
    return await call.admin.accept_invite(call.actor, call.body)


async def list_installations(call: Call) -> list[TeamInstallation]:
    return await call.admin.list_installations(call.actor, call.params["team_id"])


async def add_installation(call: Call) -> TeamInstallation:
    return await call.admin.add_installation(call.actor, call.params["team_id"], call.body)


async def remove_installation(call: Call) -> None:
    p = call.params
    await call.admin.remove_installation(call.actor, p["team_id"], p["installation_id"])


async def list_roles(call: Call) -> list[Role]:
    return await call.admin.list_roles(call.actor, call.params["team_id"])


async def create_role(call: Call) -> Role:
    return await call.admin.create_role(call.actor, call.params["team_id"], call.body)


async def update_role(call: Call) -> Role:
    p = call.params
    return await call.admin.update_role(call.actor, p["team_id"], p["role_id"], call.body)


async def delete_role(call: Call) -> None:
    await call.admin.delete_role(call.actor, call.params["team_id"], call.params["role_id"])


async def list_role_assignments(call: Call) -> list[RoleAssignment]:
    return await call.admin.list_role_assignments(call.actor, call.params["team_id"])


async def assign_role(call: Call) -> RoleAssignment:
    return await call.admin.assign_role(call.actor, call.params["team_id"], call.body)


async def unassign_role(call: Call) -> None:
    await call.admin.unassign_role(call.actor, call.params["team_id"], call.body)


T = "/api/teams/{team_id}"

endpoints = [
    Endpoint(
        "GET",
        "/api/teams",
        list_teams,
        "Teams I belong to",
        "teams",
        access="user",
        response=list[Team],
        cache=True,
    ),
    Endpoint(
        "POST",
        "/api/teams",
        create_team,
        "Create a team (I become its owner)",
        "teams",
        access="user",
        body=CreateTeam,
        response=Team,
        status_code=201,
        extra_responses={409: "a team has this slug"},
    ),
    Endpoint(
        "GET", T, get_team, "A team", "teams", permission="team:read", response=Team, cache=True
    ),
    Endpoint(
        "PATCH",
        T,
        update_team,
        "Rename a team or change its settings",
        "teams",
        permission="team:update",
        body=UpdateTeam,
        response=Team,
    ),
    Endpoint(
        "DELETE",
        T,
        delete_team,
        "Delete a team with everything in it",
        "teams",
        permission="team:delete",
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{T}/members",
        list_members,
        "Members",
        "members",
        permission="team:members:read",
        response=list[TeamMember],
        cache=True,
    ),
    Endpoint(
        "PATCH",
        f"{T}/members/{{user_id}}",
        update_member,
        "Change a member's role",
        "members",
        permission="team:members:write",
        body=UpdateMember,
        response=TeamMember,
        extra_responses={409: "the team's last owner cannot be demoted"},
    ),
    Endpoint(
        "DELETE",
        f"{T}/members/{{user_id}}",
        remove_member,
        "Remove a member",
        "members",
        permission="team:members:write",
        status_code=204,
        extra_responses={409: "the team's last owner cannot leave"},
    ),
    Endpoint(
        "GET",
        f"{T}/invites",
        list_invites,
        "Pending invites",
        "members",
        permission="team:members:read",
        response=list[TeamInvite],
    ),
    Endpoint(
        "POST",
        f"{T}/invites",
        invite_member,
        "Invite someone by email (token shown once)",
        "members",
        permission="team:members:write",
        body=InviteMember,
        response=CreatedInvite,
        status_code=201,
        extra_responses={409: "this person is a member already"},
    ),
    Endpoint(
        "DELETE",
        f"{T}/invites/{{invite_id}}",
        revoke_invite,
        "Revoke an invite",
        "members",
        permission="team:members:write",
        status_code=204,
    ),
    Endpoint(
        "POST",
        "/api/invites/accept",
        accept_invite,
        "Accept an invite sent to my email",
        "members",
        access="user",
        body=AcceptInvite,
        response=TeamMember,
        extra_responses={409: "the invite was accepted already, or I am a member already"},
    ),
    Endpoint(
        "GET",
        f"{T}/installations",
        list_installations,
        "Installed integrations",
        "installations",
        permission="team:read",
        response=list[TeamInstallation],
    ),
    Endpoint(
        "POST",
        f"{T}/installations",
        add_installation,
        "Record an installed integration",
        "installations",
        permission="team:update",
        body=CreateInstallation,
        response=TeamInstallation,
        status_code=201,
        extra_responses={409: "this installation is recorded already"},
    ),
    Endpoint(
        "DELETE",
        f"{T}/installations/{{installation_id}}",
        remove_installation,
        "Remove an installation",
        "installations",
        permission="team:update",
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{T}/roles",
        list_roles,
        "System and custom roles",
        "roles",
        permission="role:read",
        response=list[Role],
    ),
    Endpoint(
        "POST",
        f"{T}/roles",
        create_role,
        "Create a custom role",
        "roles",
        permission="role:write",
        body=CreateRole,
        response=Role,
        status_code=201,
        extra_responses={409: "the team has a role of this name, or a system role has it"},
    ),
    Endpoint(
        "PATCH",
        f"{T}/roles/{{role_id}}",
        update_role,
        "Change a custom role",
        "roles",
        permission="role:write",
        body=UpdateRole,
        response=Role,
    ),
    Endpoint(
        "DELETE",
        f"{T}/roles/{{role_id}}",
        delete_role,
        "Delete a custom role",
        "roles",
        permission="role:write",
        status_code=204,
    ),
    Endpoint(
        "GET",
        f"{T}/role-assignments",
        list_role_assignments,
        "Who holds which role",
        "roles",
        permission="role:read",
        response=list[RoleAssignment],
    ),
    Endpoint(
        "POST",
        f"{T}/role-assignments",
        assign_role,
        "Give a user a role on the team or one project",
        "roles",
        permission="role:write",
        body=AssignRole,
        response=RoleAssignment,
        status_code=201,
        extra_responses={409: "the user holds this role there already"},
    ),
    Endpoint(
        "POST",
        f"{T}/role-assignments/remove",
        unassign_role,
        "Take a role away",
        "roles",
        permission="role:write",
        body=AssignRole,
        status_code=204,
    ),
]
