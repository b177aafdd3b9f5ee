"""Every route of the API against every kind of caller, generated from the route table.

For each endpoint: no token is 401; a caller without the endpoint's permission gets
403 when they can see the team and 404 when it is another team's; a caller with it
gets a success status. The expected outcome comes from the endpoint's declared
access and the system roles' permissions, so a new route is covered the moment it is
added, and fails here until it has a sample request below.

Tokens are covered the same way: the owner's token scoped to another permission is
refused what its user's role would allow; a project token (the UI's CI token, with
its default scopes) works on its own project's routes that its scopes name and is
refused everywhere else; and the permitted caller succeeds through a token scoped to
exactly what the route needs, or through the project token where it reaches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mastra_admin.core.admin import PROJECT_TOKEN_DEFAULT_SCOPES, MastraAdmin
from mastra_admin.core.inputs import (
    AddDomain,
    CreateApiToken,
    CreateDeployment,
    CreateInstallation,
    CreateProject,
    CreateRole,
    InviteMember,
    SetEnvVar,
)
from mastra_admin.core.models import DeploymentType, TeamRole
from mastra_admin.core.rbac import has_permission, system_role_permissions
from mastra_admin.server.routes import all_endpoints
from mastra_admin.server.routing import Endpoint

from .conftest import Person, World

ENDPOINTS = [e for e in all_endpoints() if e.access != "public"]
RANKS = ("viewer", "member", "admin", "owner")


class Resources(dict[str, str]):
    """Ids of one of each resource in the world's team, for filling in paths."""


async def seed(admin: MastraAdmin, world: World) -> Resources:
    owner = world.owner.user.id
    project = await admin.create_project(
        owner, world.team_id, CreateProject(name="Weather", source_id="weather-agent")
    )
    await admin.set_env_var(owner, project.id, SetEnvVar(key="API_KEY", value="secret-1"))
    deployment = await admin.create_deployment(
        owner, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    build = await admin.deploy(owner, deployment.id)
    domain = await admin.add_domain(owner, deployment.id, AddDomain(hostname="shop.example.com"))
    token, project_token = await admin.create_project_token(
        owner, project.id, CreateApiToken(name="ci")
    )
    invite, _ = await admin.invite_member(
        owner, world.team_id, InviteMember(email="later@example.com", role=TeamRole.VIEWER)
    )
    installation = await admin.add_installation(
        owner,
        world.team_id,
        CreateInstallation(provider="github", installation_id="42", account_name="acme"),
    )
    role = await admin.create_role(
        owner, world.team_id, CreateRole(name="deployer", permissions=["deployment:deploy"])
    )
    own_token, _ = await admin.create_user_token(owner, CreateApiToken(name="laptop"))
    # Someone none of the callers is, so that "remove member" is never "leave the team".
    target, _ = await admin.system_create_user("target@example.com")
    _, raw = await admin.invite_member(
        owner, world.team_id, InviteMember(email=target.email, role=TeamRole.VIEWER)
    )
    await admin.accept_invite(target.id, raw)
    return Resources(
        team_id=world.team_id,
        project_id=project.id,
        deployment_id=deployment.id,
        build_id=build.id,
        domain_id=domain.id,
        key="API_KEY",
        token_id=token.id,
        invite_id=invite.id,
        installation_id=installation.id,
        role_id=role.id,
        user_id=target.id,
        trace_id="0" * 32,
        source_id="weather-agent",
        own_token_id=own_token.id,
        project_token=project_token,
    )


# A request the endpoint's permitted callers may make successfully: body, query, and
# the success statuses accepted. Keyed by the handler's name.
Sample = tuple[dict[str, Any] | None, dict[str, Any], set[int]]

SAMPLES: dict[str, Callable[[Resources, World], Sample]] = {
    "source_info": lambda r, w: (None, {}, {200}),
    "get_me": lambda r, w: (None, {}, {200}),
    "list_my_tokens": lambda r, w: (None, {}, {200}),
    "create_my_token": lambda r, w: ({"name": "cli"}, {}, {201}),
    "revoke_my_token": lambda r, w: (None, {}, {204, 404}),
    "list_users": lambda r, w: (None, {}, {200}),
    "create_user": lambda r, w: ({"email": "new@example.com"}, {}, {201}),
    "get_user": lambda r, w: (None, {}, {200}),
    "get_licence": lambda r, w: (None, {}, {200}),
    "list_plugins": lambda r, w: (None, {}, {200}),
    "ingestion_status": lambda r, w: (None, {}, {200}),
    "list_teams": lambda r, w: (None, {}, {200}),
    "create_team": lambda r, w: ({"name": "Another Team"}, {}, {201}),
    "get_team": lambda r, w: (None, {}, {200}),
    "update_team": lambda r, w: ({"name": "Search Renamed"}, {}, {200}),
    "delete_team": lambda r, w: (None, {}, {204}),
    "list_members": lambda r, w: (None, {}, {200}),
    "update_member": lambda r, w: ({"role": "member"}, {}, {200}),
    "remove_member": lambda r, w: (None, {}, {204}),
    "list_invites": lambda r, w: (None, {}, {200}),
    "invite_member": lambda r, w: ({"email": "x@example.com", "role": "viewer"}, {}, {201}),
    "revoke_invite": lambda r, w: (None, {}, {204}),
    "accept_invite": lambda r, w: ({"token": "mai_" + "x" * 43}, {}, {404, 422}),
    "list_installations": lambda r, w: (None, {}, {200}),
    "add_installation": lambda r, w: (
        {"provider": "github", "installation_id": "43", "account_name": "b"},
        {},
        {201},
    ),
    "remove_installation": lambda r, w: (None, {}, {204}),
    "list_roles": lambda r, w: (None, {}, {200}),
    "create_role": lambda r, w: ({"name": "reader", "permissions": ["project:read"]}, {}, {201}),
    "update_role": lambda r, w: ({"permissions": ["build:read"]}, {}, {200}),
    "delete_role": lambda r, w: (None, {}, {204}),
    "list_role_assignments": lambda r, w: (None, {}, {200}),
    "assign_role": lambda r, w: (
        {
            "role_id": r["role_id"],
            "user_id": r["user_id"],
            "resource_type": "project",
            "resource_id": r["project_id"],
        },
        {},
        {201},
    ),
    "unassign_role": lambda r, w: (
        {
            "role_id": r["role_id"],
            "user_id": r["user_id"],
            "resource_type": "project",
            "resource_id": r["project_id"],
        },
        {},
        {204, 404},
    ),
    "list_projects": lambda r, w: (None, {}, {200}),
    "create_project": lambda r, w: ({"name": "Support", "source_id": "support-bot"}, {}, {201}),
    "get_project": lambda r, w: (None, {}, {200}),
    "update_project": lambda r, w: ({"name": "Weather 2"}, {}, {200}),
    "delete_project": lambda r, w: (None, {}, {204}),
    "list_env_vars": lambda r, w: (None, {}, {200}),
    "set_env_var": lambda r, w: ({"key": "OTHER", "value": "v"}, {}, {200}),
    "reveal_env_vars": lambda r, w: ({}, {}, {200}),
    "delete_env_var": lambda r, w: (None, {}, {204}),
    "list_project_tokens": lambda r, w: (None, {}, {200}),
    "create_project_token": lambda r, w: ({"name": "deploy bot"}, {}, {201}),
    "delete_project_token": lambda r, w: (None, {}, {204}),
    "list_routes": lambda r, w: (None, {}, {200}),
    "list_source_projects": lambda r, w: (None, {"team_id": r["team_id"]}, {200}),
    "get_source_project": lambda r, w: (None, {"team_id": r["team_id"]}, {200}),
    "list_deployments": lambda r, w: (None, {}, {200}),
    "create_deployment": lambda r, w: ({"type": "preview", "branch": "feature-x"}, {}, {201}),
    "get_deployment": lambda r, w: (None, {}, {200}),
    "update_deployment": lambda r, w: ({"auto_shutdown": True}, {}, {200}),
    "delete_deployment": lambda r, w: (None, {}, {204}),
    "deploy": lambda r, w: ({}, {}, {202}),
    "stop": lambda r, w: (None, {}, {200}),
    "restart": lambda r, w: (None, {}, {202, 409}),
    "rollback": lambda r, w: ({"build_id": r["build_id"]}, {}, {202, 409, 422}),
    "list_builds": lambda r, w: (None, {}, {200}),
    "list_servers": lambda r, w: (None, {}, {200}),
    "get_route": lambda r, w: (None, {}, {200}),
    "get_build": lambda r, w: (None, {}, {200}),
    "cancel_build": lambda r, w: (None, {}, {200}),
    "get_build_log": lambda r, w: (None, {}, {200}),
    "stream_build_log": lambda r, w: (None, {}, {200}),
    "queue_position": lambda r, w: (None, {}, {200}),
    "list_project_domains": lambda r, w: (None, {}, {200}),
    "list_deployment_domains": lambda r, w: (None, {}, {200}),
    "add_domain": lambda r, w: ({"hostname": "new.example.com"}, {}, {201}),
    "domain_support": lambda r, w: (None, {}, {200}),
    "get_domain": lambda r, w: (None, {}, {200}),
    "verify_domain": lambda r, w: (None, {}, {200}),
    "remove_domain": lambda r, w: (None, {}, {204}),
    "list_traces": lambda r, w: (None, {}, {200, 503}),
    "get_trace": lambda r, w: (None, {}, {404, 503}),
    "list_spans": lambda r, w: (None, {}, {200, 503}),
    "list_logs": lambda r, w: (None, {}, {200, 503}),
    "list_metrics": lambda r, w: (None, {}, {200, 503}),
    "list_scores": lambda r, w: (None, {}, {200, 503}),
    "list_feedback": lambda r, w: (None, {}, {200, 503}),
    "time_series": lambda r, w: (
        None,
        {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"},
        {200, 503},
    ),
}


def test_every_route_has_a_sample() -> None:
    missing = [e.operation_id for e in ENDPOINTS if e.operation_id not in SAMPLES]
    assert missing == [], f"add samples for new routes: {missing}"


def _path(endpoint: Endpoint, resources: Resources) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "token_id" and endpoint.path.startswith("/api/me/"):
            return resources["own_token_id"]
        return resources[name]

    return re.sub(r"{([a-z_]+)}", fill, endpoint.path)


# What a route checks beyond its declared permission, for the sample request: a token
# scoped to the permission alone is refused without these.
EXTRA_SCOPES: dict[str, list[str]] = {
    "deploy": ["build:create"],
    "restart": ["build:create"],
    "rollback": ["build:create"],
    "create_project_token": list(PROJECT_TOKEN_DEFAULT_SCOPES),
    "create_role": ["project:read"],
    "update_role": ["build:read"],
    "assign_role": ["deployment:deploy"],
}

# Routes about the signed-in user that a scoped token may not use as it is: creating an
# unscoped token, revoking a wider one, creating or joining a team.
SCOPED_REFUSED = {"create_my_token", "revoke_my_token", "create_team", "accept_invite"}


def _project_token_reaches(endpoint: Endpoint) -> bool:
    """Whether the default project token may call the route on its own project."""
    on_project = any(
        f"{{{name}}}" in endpoint.path for name in ("project_id", "deployment_id", "build_id")
    )
    needed = [endpoint.permission or "*", *EXTRA_SCOPES.get(endpoint.operation_id, [])]
    return (
        endpoint.access == "team"
        and on_project
        and all(has_permission(PROJECT_TOKEN_DEFAULT_SCOPES, p) for p in needed)
    )


async def _scoped(admin: MastraAdmin, person: Person, scopes: list[str]) -> Person:
    _token, raw = await admin.create_user_token(
        person.user.id, CreateApiToken(name="scoped", scopes=scopes)
    )
    return Person(person.user, raw)


def _allowed(endpoint: Endpoint, rank: str) -> bool:
    if endpoint.access == "user":
        return True
    if endpoint.access == "platform":
        return False
    assert endpoint.permission is not None, f"{endpoint.operation_id} declares no permission"
    return has_permission(system_role_permissions(f"team_{rank}"), endpoint.permission)


async def _call(
    client: httpx.AsyncClient, endpoint: Endpoint, path: str, person: Person | None, sample: Sample
) -> httpx.Response:
    body, query, _ = sample
    headers = person.headers if person else {}
    return await client.request(
        endpoint.method, path, json=body, params=query, headers=headers, timeout=30
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_route_authorization(
    endpoint: Endpoint, admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    resources = await seed(admin, world)
    sample = SAMPLES[endpoint.operation_id](resources, world)
    path = _path(endpoint, resources)
    if endpoint.operation_id == "stream_build_log":
        await admin.cancel_build(world.owner.user.id, resources["build_id"])  # so the stream ends

    anonymous = await _call(client, endpoint, path, None, sample)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthenticated"

    # Callers without the permission first: a refused request must change nothing.
    permitted: list[Person] = [world.platform] if endpoint.access != "user" else []
    for rank in RANKS:
        person: Person = getattr(world, rank)
        if not _allowed(endpoint, rank):
            response = await _call(client, endpoint, path, person, sample)
            expected = 403
            assert response.status_code == expected, (rank, response.text)
            assert response.json()["error"]["code"] in {"permission_denied"}
        else:
            permitted.append(person)
    if endpoint.access == "team":
        response = await _call(client, endpoint, path, world.outsider, sample)
        assert response.status_code == 404, ("outsider", response.text)
    elif endpoint.access == "platform":
        response = await _call(client, endpoint, path, world.outsider, sample)
        assert response.status_code == 403, ("outsider", response.text)

    # The owner's token scoped to something else is refused what the owner may do.
    other = "route:read" if endpoint.permission != "route:read" else "server:read"
    narrow = await _scoped(admin, world.owner, [other])
    response = await _call(client, endpoint, path, narrow, sample)
    if endpoint.access == "user" and endpoint.operation_id not in SCOPED_REFUSED:
        assert response.status_code in sample[2], ("scoped", response.text)
    else:
        assert response.status_code == 403, ("scoped", response.text)
        assert response.json()["error"]["code"] == "permission_denied"

    # The project token: refused off its project and outside its scopes.
    project_token = Person(world.owner.user, resources["project_token"])
    reaches = _project_token_reaches(endpoint)
    if not reaches:
        response = await _call(client, endpoint, path, project_token, sample)
        team_level = endpoint.access == "team" and (
            "{team_id}" in endpoint.path or "team_id" in sample[1]
        )
        assert response.status_code == (404 if team_level else 403), (
            "project token",
            response.text,
        )

    # One permitted caller, the least privileged, succeeds: through the project token
    # where it reaches, through a token scoped to what the route needs on team routes.
    caller = permitted[0] if endpoint.access == "platform" else (permitted or [world.viewer])[0]
    if endpoint.access == "team":
        caller = next(p for p in permitted if p is not world.platform)
        needed = [str(endpoint.permission), *EXTRA_SCOPES.get(endpoint.operation_id, [])]
        caller = project_token if reaches else await _scoped(admin, caller, needed)
    if endpoint.access == "user":
        caller = world.owner
    response = await _call(client, endpoint, path, caller, sample)
    assert response.status_code in sample[2], (
        caller.user.email,
        response.status_code,
        response.text,
    )
