"""Tokens mean what they say: each test is an attack tried against the API.

A scoped user token is limited to both its scopes and its user's role; it never
creates or revokes a token wider than itself. A project token works on its own
project's routes that its scopes name, as its creator, and nowhere else. The response
cache never serves one principal what another was answered. Nobody receives the
ciphertext of a deployment's overrides.
"""

from __future__ import annotations

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import (
    CreateApiToken,
    CreateDeployment,
    CreateProject,
    UpdateDeployment,
)
from mastra_admin.core.models import DeploymentType

from .conftest import Person, World


async def _scoped(admin: MastraAdmin, person: Person, *scopes: str) -> dict[str, str]:
    _token, raw = await admin.create_user_token(
        person.user.id, CreateApiToken(name="scoped", scopes=list(scopes))
    )
    return {"Authorization": f"Bearer {raw}"}


async def _project(admin: MastraAdmin, world: World, name: str = "Weather") -> str:
    project = await admin.create_project(
        world.owner.user.id, world.team_id, CreateProject(name=name, source_id="weather-agent")
    )
    return project.id


async def test_a_read_scoped_token_cannot_write_or_mint_a_wider_token(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    reader = await _scoped(admin, world.owner, "project:read")

    assert (await client.get(f"/api/projects/{project_id}", headers=reader)).status_code == 200
    wrote = await client.put(
        f"/api/projects/{project_id}/env", json={"key": "K", "value": "v"}, headers=reader
    )
    assert wrote.status_code == 403, wrote.text
    assert wrote.json()["error"]["details"]["permission"] == "env_var:write"
    assert await admin.list_env_vars(world.owner.user.id, project_id) == []

    before = {t.id for t in await admin.list_user_tokens(world.owner.user.id)}
    unscoped = await client.post("/api/me/tokens", json={"name": "root"}, headers=reader)
    assert unscoped.status_code == 403, unscoped.text
    wider = await client.post(
        "/api/me/tokens", json={"name": "w", "scopes": ["project:*"]}, headers=reader
    )
    assert wider.status_code == 403, wider.text
    assert "project:update" in wider.json()["error"]["details"]["permissions"]
    assert {t.id for t in await admin.list_user_tokens(world.owner.user.id)} == before

    # As narrow or narrower is fine, and the new token is no wider either.
    same = await client.post(
        "/api/me/tokens", json={"name": "n", "scopes": ["project:read"]}, headers=reader
    )
    assert same.status_code == 201, same.text
    again = {"Authorization": f"Bearer {same.json()['secret']}"}
    assert (await client.get(f"/api/projects/{project_id}", headers=again)).status_code == 200
    assert (await client.delete(f"/api/projects/{project_id}", headers=again)).status_code == 403


async def test_scopes_never_widen_a_role(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    """A viewer's token scoped to everything is still a viewer."""
    project_id = await _project(admin, world)
    everything = await _scoped(admin, world.viewer, "*")
    deleted = await client.delete(f"/api/projects/{project_id}", headers=everything)
    assert deleted.status_code == 403, deleted.text
    revealed = await client.post(
        f"/api/projects/{project_id}/env/reveal", json={}, headers=everything
    )
    assert revealed.status_code == 403


async def test_a_scoped_token_revokes_itself_but_not_a_wider_token(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    owner = world.owner
    mine = await admin.list_user_tokens(owner.user.id)
    [login] = [t for t in mine if not t.scopes]
    scoped, raw = await admin.create_user_token(
        owner.user.id, CreateApiToken(name="ci", scopes=["deployment:read"])
    )
    headers = {"Authorization": f"Bearer {raw}"}

    refused = await client.delete(f"/api/me/tokens/{login.id}", headers=headers)
    assert refused.status_code == 403, refused.text
    assert (await client.get("/api/me", headers=owner.headers)).status_code == 200

    assert (await client.delete(f"/api/me/tokens/{scoped.id}", headers=headers)).status_code == 204
    assert (await client.get("/api/me", headers=headers)).status_code == 401


async def test_a_scoped_platform_admin_token_is_no_platform_admin(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    headers = await _scoped(admin, world.platform, "project:read")
    created = await client.post("/api/users", json={"email": "x@example.com"}, headers=headers)
    assert created.status_code == 403, created.text
    assert (await client.get("/api/users", headers=headers)).status_code == 403
    team = await client.post("/api/teams", json={"name": "Mine"}, headers=headers)
    assert team.status_code == 403, team.text
    full = await _scoped(admin, world.platform, "*")
    assert (await client.get("/api/users", headers=full)).status_code == 200


async def test_a_project_token_deploys_and_follows_its_build_and_nothing_else(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    owner = world.owner.user.id
    project_id = await _project(admin, world)
    other_project = await _project(admin, world, "Elsewhere")
    deployment = await admin.create_deployment(
        owner, project_id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    other = await admin.create_deployment(
        owner, other_project, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    made = await client.post(
        f"/api/projects/{project_id}/tokens", json={"name": "ci"}, headers=world.owner.headers
    )
    assert made.status_code == 201, made.text
    ci = {"Authorization": f"Bearer {made.json()['secret']}"}

    assert (await client.get(f"/api/projects/{project_id}", headers=ci)).status_code == 200
    deployed = await client.post(f"/api/deployments/{deployment.id}/deploy", json={}, headers=ci)
    assert deployed.status_code == 202, deployed.text
    build_id = deployed.json()["id"]
    assert deployed.json()["triggered_by"] == owner
    got = await client.get(f"/api/deployments/{deployment.id}", headers=ci)
    assert got.status_code == 200
    assert (await client.get(f"/api/builds/{build_id}", headers=ci)).status_code == 200
    assert (await client.get(f"/api/builds/{build_id}/logs", headers=ci)).status_code == 200
    await admin.cancel_build(owner, build_id)
    async with client.stream("GET", f"/api/builds/{build_id}/logs/stream", headers=ci) as stream:
        assert stream.status_code == 200
        assert "event: end" in "".join([chunk async for chunk in stream.aiter_text()])

    # Another project of the same team, the team itself, people, secrets: refused.
    for method, path, body, status in [
        ("POST", f"/api/deployments/{other.id}/deploy", {}, 404),
        ("GET", f"/api/projects/{other_project}", None, 404),
        ("GET", f"/api/teams/{world.team_id}", None, 404),
        ("GET", f"/api/teams/{world.team_id}/projects", None, 404),
        ("GET", "/api/me", None, 403),
        ("GET", "/api/teams", None, 403),
        ("POST", "/api/me/tokens", {"name": "escape"}, 403),
        ("POST", f"/api/projects/{project_id}/tokens", {"name": "more"}, 403),
        ("GET", f"/api/projects/{project_id}/env", None, 403),
        ("POST", f"/api/projects/{project_id}/env/reveal", {}, 403),
        ("DELETE", f"/api/deployments/{deployment.id}", None, 403),
        ("PATCH", f"/api/projects/{project_id}", {"name": "x"}, 403),
    ]:
        response = await client.request(method, path, json=body, headers=ci)
        assert response.status_code == status, (method, path, response.text)


async def test_a_project_token_acts_with_its_creators_current_permissions(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    """Made by a member who then leaves the team: the token leaves with them."""
    project_id = await _project(admin, world)
    deployment = await admin.create_deployment(
        world.owner.user.id, project_id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    made = await client.post(
        f"/api/projects/{project_id}/tokens",
        json={"name": "ci", "scopes": ["deployment:read"]},
        headers=world.admin.headers,
    )
    assert made.status_code == 201, made.text
    ci = {"Authorization": f"Bearer {made.json()['secret']}"}
    assert (await client.get(f"/api/deployments/{deployment.id}", headers=ci)).status_code == 200
    await admin.remove_member(world.owner.user.id, world.team_id, world.admin.user.id)
    assert (await client.get(f"/api/deployments/{deployment.id}", headers=ci)).status_code == 404

    # Deleted: unauthenticated at once.
    token_id = made.json()["token"]["id"]
    await admin.delete_project_token(world.owner.user.id, project_id, token_id)
    assert (await client.get(f"/api/deployments/{deployment.id}", headers=ci)).status_code == 401


async def test_the_response_cache_keeps_principals_apart(
    admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    """The owner's answer, cached, is never what the owner's narrower token gets."""
    project_id = await _project(admin, world)
    path = f"/api/teams/{world.team_id}/projects"
    for _ in range(2):
        assert (await client.get(path, headers=world.owner.headers)).status_code == 200
    narrow = await _scoped(admin, world.owner, "deployment:read")
    refused = await client.get(path, headers=narrow)
    assert refused.status_code == 403, refused.text
    assert project_id not in refused.text


@pytest.mark.parametrize("rank", ["viewer", "owner"])
async def test_nobody_receives_the_ciphertext_of_overrides(
    rank: str, admin: MastraAdmin, world: World, client: httpx.AsyncClient
) -> None:
    project_id = await _project(admin, world)
    deployment = await admin.create_deployment(
        world.owner.user.id, project_id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    await admin.update_deployment(
        world.owner.user.id,
        deployment.id,
        UpdateDeployment(env_var_overrides={"SECRET": "s3cr3t"}),
    )
    person: Person = getattr(world, rank)
    got = await client.get(f"/api/deployments/{deployment.id}", headers=person.headers)
    listed = await client.get(f"/api/projects/{project_id}/deployments", headers=person.headers)
    for body in (got.json(), listed.json()[0]):
        assert body["env_var_overrides"] == [{"key": "SECRET", "is_secret": True}]
    assert "encrypted_value" not in got.text + listed.text
