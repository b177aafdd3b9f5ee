"""The OpenAPI document and the server agree: what the document allows is accepted,
what it refuses is refused, every method of a path is in a 405's ``Allow``, a PATCH
needs a body, and the statuses a route can answer are documented.

The patterns in the document are checked against the validators they stand for on
generated strings (the git branch rules, the names a slug can be made from, free text,
the permissions a custom role may hold), and on the served API for a few values each.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.inputs import (
    BRANCH_PATTERN,
    PERMISSION_RE,
    TEXT_PATTERN,
    UpdateProject,
    UpdateTeam,
    custom_permissions,
    slug_source_pattern,
    slugify,
)
from mastra_admin.core.models import Deployment
from mastra_admin.core.rbac import PERMISSIONS, check_custom_permissions
from mastra_admin.server.openapi import openapi_document
from mastra_admin.server.routes import all_endpoints

from .conftest import World


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(all_endpoints())


def _body_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    name = ref["schema"]["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _string_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A property's string schema (the non-null side of an ``anyOf``)."""
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "string":
            return option
    raise AssertionError(f"no string in {prop}")


def _documented(schema: dict[str, Any], value: str) -> bool:
    pattern = re.search(schema["pattern"], value) is not None
    return pattern and len(value) <= schema.get("maxLength", len(value))


# --- 405 ------------------------------------------------------------------------------


async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, world: World
) -> None:
    team = f"/api/teams/{world.team_id}"  # GET, PATCH and DELETE, each its own route
    response = await client.post(team, headers=world.owner.headers, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["details"] == {"allowed": ["DELETE", "GET", "HEAD", "PATCH"]}
    assert "POST" in error["message"]

    teams = await client.put("/api/teams", headers=world.owner.headers)
    assert teams.status_code == 405
    assert teams.headers["allow"] == "GET, HEAD, POST"


async def test_a_405_is_given_without_a_token(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(f"/api/teams/{world.team_id}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"


# --- bodies ---------------------------------------------------------------------------


async def test_a_patch_without_a_body_is_refused(client: httpx.AsyncClient, world: World) -> None:
    team = f"/api/teams/{world.team_id}"
    before = (await client.get(team, headers=world.owner.headers)).json()
    response = await client.patch(team, headers=world.owner.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"] == {"field": "body"}
    blank = await client.patch(team, headers=world.owner.headers, content=b"  \n")
    assert blank.status_code == 422
    assert (await client.get(team, headers=world.owner.headers)).json() == before


async def test_an_empty_patch_changes_nothing(client: httpx.AsyncClient, world: World) -> None:
    team = f"/api/teams/{world.team_id}"
    before = (await client.get(team, headers=world.owner.headers)).json()
    response = await client.patch(team, headers=world.owner.headers, json={})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == before["name"]
    assert response.json()["settings"] == before["settings"]


async def test_a_post_whose_fields_are_all_optional_may_omit_its_body(
    client: httpx.AsyncClient, world: World, deployment: Deployment
) -> None:
    reveal = await client.post(
        f"/api/projects/{deployment.project_id}/env/reveal", headers=world.owner.headers
    )
    assert reveal.status_code == 200, reveal.text
    assert reveal.json() == []


def test_the_document_says_which_bodies_are_required(document: dict[str, Any]) -> None:
    required = {
        (method.upper(), path): operation["requestBody"]["required"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert required[("PATCH", "/api/teams/{team_id}")] is True
    assert required[("PATCH", "/api/deployments/{deployment_id}")] is True
    assert required[("PUT", "/api/projects/{project_id}/env")] is True
    assert required[("POST", "/api/teams")] is True
    assert required[("POST", "/api/deployments/{deployment_id}/deploy")] is False
    assert required[("POST", "/api/projects/{project_id}/env/reveal")] is False
    assert all(required[key] for key in required if key[0] in ("PATCH", "PUT"))


async def test_values_of_the_wrong_json_type_are_refused(
    client: httpx.AsyncClient, world: World, deployment: Deployment
) -> None:
    headers = world.owner.headers
    path = f"/api/deployments/{deployment.id}"
    for body in ({"auto_shutdown": 0}, {"auto_shutdown": "true"}, {"expires_at": 1900000000}):
        response = await client.patch(path, headers=headers, json=body)
        assert response.status_code == 422, (body, response.text)
    settings = {"settings": {"preview_ttl_hours": "5"}}
    team = await client.patch(f"/api/teams/{world.team_id}", headers=headers, json=settings)
    assert team.status_code == 422, team.text
    whole = {"settings": {"preview_ttl_hours": 5.0}}  # JSON's integer 5, as the schema reads
    team = await client.patch(f"/api/teams/{world.team_id}", headers=headers, json=whole)
    assert team.status_code == 200, team.text
    assert team.json()["settings"]["preview_ttl_hours"] == 5


async def test_query_values_are_read_as_their_documented_types(
    client: httpx.AsyncClient, world: World, deployment: Deployment
) -> None:
    servers = f"/api/deployments/{deployment.id}/servers"
    ok = await client.get(servers, params={"include_stopped": "true"}, headers=world.owner.headers)
    assert ok.status_code == 200, ok.text
    for wrong in ("yes", "1"):
        response = await client.get(
            servers, params={"include_stopped": wrong}, headers=world.owner.headers
        )
        assert response.status_code == 422, (wrong, response.text)


# --- statuses -------------------------------------------------------------------------


def test_conflicts_and_oversized_bodies_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, method in [
        ("/api/teams", "post"),
        ("/api/teams/{team_id}/projects", "post"),
        ("/api/teams/{team_id}/members/{user_id}", "patch"),
        ("/api/teams/{team_id}/members/{user_id}", "delete"),
        ("/api/projects/{project_id}/deployments", "post"),
        ("/api/deployments/{deployment_id}/restart", "post"),
        ("/api/builds/{build_id}/cancel", "post"),
        ("/api/users", "post"),
    ]:
        assert "409" in paths[path][method]["responses"], (method, path)
    for path, item in paths.items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)


async def test_a_documented_conflict_is_answered(client: httpx.AsyncClient, world: World) -> None:
    first = await client.post("/api/teams", headers=world.owner.headers, json={"name": "Twice"})
    assert first.status_code == 201
    again = await client.post("/api/teams", headers=world.owner.headers, json={"name": "Twice"})
    assert again.status_code == 409


# --- the documented patterns, on the served API -----------------------------------------


SLUGS = {"search-2": True, "a": True, "Search": False, "-search": False, "a b": False}
BRANCHES = {
    "feature/login-2": True,
    "release@1": True,
    "bad..branch": False,
    "topic.lock": False,
    "feature/.hidden": False,
    "with space": False,
    " main": False,
}
ENV_KEYS = {"API_KEY": True, "_private2": True, "2FAST": False, "MY-KEY": False, "": False}


async def test_a_slug_is_accepted_exactly_when_the_document_allows_it(
    client: httpx.AsyncClient, world: World, document: dict[str, Any]
) -> None:
    schema = _string_schema(_body_schema(document, "/api/teams", "post")["properties"]["slug"])
    for slug, accepted in SLUGS.items():
        assert _documented(schema, slug) is accepted, slug
        response = await client.post(
            "/api/teams", headers=world.owner.headers, json={"name": "Any", "slug": slug}
        )
        assert response.status_code == (201 if accepted else 422), (slug, response.text)


async def test_a_branch_is_accepted_exactly_when_the_document_allows_it(
    client: httpx.AsyncClient, world: World, document: dict[str, Any], deployment: Deployment
) -> None:
    prop = _body_schema(document, "/api/projects/{project_id}", "patch")["properties"]
    schema = _string_schema(prop["default_branch"])
    for branch, accepted in BRANCHES.items():
        assert _documented(schema, branch) is accepted, branch
        response = await client.patch(
            f"/api/projects/{deployment.project_id}",
            headers=world.owner.headers,
            json={"default_branch": branch},
        )
        assert response.status_code == (200 if accepted else 422), (branch, response.text)


async def test_an_env_key_is_accepted_exactly_when_the_document_allows_it(
    client: httpx.AsyncClient, world: World, document: dict[str, Any], deployment: Deployment
) -> None:
    schema = _body_schema(document, "/api/projects/{project_id}/env", "put")["properties"]["key"]
    for key, accepted in ENV_KEYS.items():
        assert _documented(schema, key) is accepted, key
        response = await client.put(
            f"/api/projects/{deployment.project_id}/env",
            headers=world.owner.headers,
            json={"key": key, "value": "x"},
        )
        assert response.status_code == (200 if accepted else 422), (key, response.text)


# --- the documented patterns, against their validators ----------------------------------

_BRANCHY = st.lists(
    st.sampled_from([*"ab-_/.@{}~^:?*[\\ ", ".lock", "\x00", "\x7f", "\u3000", "é"]),
    max_size=10,
).map("".join)


@given(st.one_of(_BRANCHY, st.from_regex(BRANCH_PATTERN, fullmatch=True)))
def test_the_branch_pattern_is_the_branch_rule(value: str) -> None:
    documented = re.search(BRANCH_PATTERN, value) is not None and 1 <= len(value) <= 255
    try:
        UpdateProject(default_branch=value)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented is accepted


@given(st.text(max_size=8))
def test_a_name_gives_a_slug_exactly_when_the_document_says(name: str) -> None:
    assert (re.search(slug_source_pattern(), name) is not None) is (slugify(name) != "")


@given(st.text(alphabet=st.sampled_from([*"a \t\n\x00\x1c\x85\u3000\ufeff"]), max_size=6))
def test_the_text_pattern_is_what_remains_after_stripping(name: str) -> None:
    documented = re.search(TEXT_PATTERN, name) is not None and 1 <= len(name) <= 255
    try:
        UpdateTeam(name=name)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented is accepted


_PARTS = sorted({part for permission in PERMISSIONS for part in permission.split(":")})


@given(st.lists(st.sampled_from([*_PARTS, "*", "widget", "x"]), min_size=1, max_size=4))
def test_the_permissions_listed_are_those_a_custom_role_may_hold(parts: list[str]) -> None:
    permission = ":".join(parts)
    try:
        valid = PERMISSION_RE.fullmatch(permission) is not None and bool(
            check_custom_permissions([permission])
        )
    except InvalidInput:
        valid = False
    assert (permission in custom_permissions()) is valid
