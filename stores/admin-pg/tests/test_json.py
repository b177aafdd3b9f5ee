"""JSON columns written badly by hand still decode: [] or {} where the shape is wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from mastra_admin.core.models import (
    Build,
    Deployment,
    DeploymentType,
    Project,
    Role,
    Team,
    User,
    UserApiToken,
)
from mastra_admin.stores.pg import PgAdminStorage

BAD_LISTS = ["null", "{}", '{"a": 1}', '"not a list"', "42"]
BAD_MAPS = ["null", "[]", "[1, 2]", '"text"', "true"]


def _raw(storage: PgAdminStorage, url: str, statement: str, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.replace("{schema}", storage.schema), params)


@pytest.fixture
async def storage(pg_database_url: str) -> AsyncIterator[PgAdminStorage]:
    storage = PgAdminStorage(pg_database_url)
    await storage.init()
    yield storage
    await storage.close()


@pytest.mark.parametrize("bad", BAD_LISTS)
async def test_list_columns_decode_to_empty_lists(
    storage: PgAdminStorage, pg_database_url: str, bad: str
) -> None:
    user = await storage.users.create(User(email="j@example.com"))
    token = await storage.users.create_token(
        UserApiToken(user_id=user.id, name="t", token_hash="h", token_prefix="p", scopes=["a"])
    )
    role = await storage.rbac.create_role(Role(name="custom", permissions=["x"]))
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_user_tokens SET scopes = %s::jsonb WHERE id = %s",
        bad,
        token.id,
    )
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_roles SET permissions = %s::jsonb WHERE id = %s",
        bad,
        role.id,
    )
    got = await storage.users.get_token_by_hash("h")
    assert got is not None
    assert got.scopes == []
    got_role = await storage.rbac.get_role(role.id)
    assert got_role is not None
    assert got_role.permissions == []


@pytest.mark.parametrize("bad", BAD_MAPS)
async def test_map_columns_decode_to_empty_maps(
    storage: PgAdminStorage, pg_database_url: str, bad: str
) -> None:
    user = await storage.users.create(User(email="j@example.com", metadata={"k": "v"}))
    team = await storage.teams.create(Team(name="t", slug="t"))
    project = await storage.projects.create(
        Project(
            team_id=team.id,
            name="p",
            slug="p",
            source_type="local",
            source_config={"source_id": "s"},
        )
    )
    for table, column, row_id in [
        ("admin_users", "metadata", user.id),
        ("admin_teams", "settings", team.id),
        ("admin_projects", "source_config", project.id),
        ("admin_projects", "settings", project.id),
    ]:
        _raw(
            storage,
            pg_database_url,
            f"UPDATE {{schema}}.{table} SET {column} = %s::jsonb WHERE id = %s",
            bad,
            row_id,
        )
    got_user = await storage.users.get(user.id)
    assert got_user is not None
    assert got_user.metadata == {}
    got_team = await storage.teams.get(team.id)
    assert got_team is not None
    assert got_team.settings.preview_ttl_hours == 72  # the defaults
    got_project = await storage.projects.get(project.id)
    assert got_project is not None
    assert got_project.source_config == {}
    assert got_project.settings.health_path == "/health"


async def test_a_json_string_holding_json_is_decoded(
    storage: PgAdminStorage, pg_database_url: str
) -> None:
    role = await storage.rbac.create_role(Role(name="custom"))
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_roles SET permissions = to_jsonb(%s::text) WHERE id = %s",
        '["project:read"]',
        role.id,
    )
    got = await storage.rbac.get_role(role.id)
    assert got is not None
    assert got.permissions == ["project:read"]


async def test_malformed_overrides_keep_the_good_items(
    storage: PgAdminStorage, pg_database_url: str
) -> None:
    team = await storage.teams.create(Team(name="t", slug="t"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="p", slug="p", source_type="local")
    )
    deployment = await storage.deployments.create(
        Deployment(project_id=project.id, type=DeploymentType.STAGING, branch="b", slug="b")
    )
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_deployments SET env_var_overrides = %s::jsonb WHERE id = %s",
        '[{"key": "A", "encrypted_value": "e"}, 5, "x", null]',
        deployment.id,
    )
    got = await storage.deployments.get(deployment.id)
    assert got is not None
    assert [o.key for o in got.env_var_overrides] == ["A"]
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_deployments SET env_var_overrides = 'null' WHERE id = %s",
        deployment.id,
    )
    again = await storage.deployments.get(deployment.id)
    assert again is not None
    assert again.env_var_overrides == []
    await storage.builds.create(Build(deployment_id=deployment.id, triggered_by="t"))


async def test_wrongly_typed_values_inside_json_columns_reset_that_column(
    storage: PgAdminStorage, pg_database_url: str
) -> None:
    team = await storage.teams.create(Team(name="t", slug="t"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="p", slug="p", source_type="local")
    )
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_teams SET settings = %s::jsonb WHERE id = %s",
        '{"preview_ttl_hours": "soon", "max_concurrent_builds": -3}',
        team.id,
    )
    _raw(
        storage,
        pg_database_url,
        "UPDATE {schema}.admin_projects SET settings = %s::jsonb WHERE id = %s",
        '{"install_command": "npm ci"}',
        project.id,
    )
    got_team = await storage.teams.get(team.id)
    assert got_team is not None
    assert got_team.settings.preview_ttl_hours == 72
    assert got_team.name == "t"
    listed = await storage.projects.list_for_team(team.id)
    assert [p.settings.install_command for p in listed] == [None]
