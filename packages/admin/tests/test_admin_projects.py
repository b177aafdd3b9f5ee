"""Projects, env vars (encrypted, hidden, revealed with a trace) and project tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import structlog

from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    LicenceLimit,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mastra_admin.core.inputs import (
    CreateApiToken,
    CreateDeployment,
    CreateProject,
    CreateTeam,
    SetEnvVar,
    UpdateDeployment,
    UpdateProject,
)
from mastra_admin.core.models import DeploymentType, ProjectApiToken, ProjectSettings, utcnow
from mastra_admin.core.tokens import PROJECT_TOKEN_PREFIX, generate_token

from .conftest import AdminFactory, World


class TestProjects:
    async def test_created_from_the_source(self, world: World) -> None:
        project = world.project
        assert project.slug == "weather-agent"
        assert project.source_type == "fake"
        assert project.source_config["source_id"] == "weather-agent"
        assert project.source_config["path"] == "/fake/projects/weather-agent"
        assert project.source_config["package_manager"] == "npm"
        assert project.source_config["mastra_version"] == "1.0.0"

    async def test_the_source_project_must_exist_and_be_buildable(self, world: World) -> None:
        admin = world.admin
        with pytest.raises(NotFound):
            await admin.create_project(
                world.owner.id, world.team.id, CreateProject(name="Ghost", source_id="ghost")
            )
        world.source.add("broken", valid=False, problems=["no src/mastra/index.ts"])
        with pytest.raises(InvalidInput, match=r"no src/mastra/index\.ts"):
            await admin.create_project(
                world.owner.id, world.team.id, CreateProject(name="Broken", source_id="broken")
            )
        with pytest.raises(InvalidInput, match="of type 'fake'"):
            await admin.create_project(
                world.owner.id,
                world.team.id,
                CreateProject(name="Odd", source_id="support-bot", source_type="github"),
            )

    async def test_slugs_are_unique_within_a_team(self, world: World) -> None:
        with pytest.raises(Conflict) as caught:
            await world.admin.create_project(
                world.owner.id,
                world.team.id,
                CreateProject(name="Weather agent", source_id="support-bot"),
            )
        assert caught.value.details["field"] == "slug"
        other = await world.admin.create_team(world.owner.id, CreateTeam(name="Other"))
        again = await world.admin.create_project(
            world.owner.id, other.id, CreateProject(name="Weather agent", source_id="weather-agent")
        )
        assert again.slug == "weather-agent"

    async def test_list_is_paged_by_name(self, world: World) -> None:
        admin = world.admin
        for name in ("Zeta", "Alpha"):
            await admin.create_project(
                world.owner.id, world.team.id, CreateProject(name=name, source_id="support-bot")
            )
        page = await admin.list_projects(world.viewer.id, world.team.id, limit=2)
        assert [p.name for p in page.items] == ["Alpha", "Weather agent"]
        assert page.total == 3
        assert page.has_more
        rest = await admin.list_projects(world.viewer.id, world.team.id, limit=2, offset=2)
        assert [p.name for p in rest.items] == ["Zeta"]
        with pytest.raises(NotFound):
            await admin.list_projects(world.outsider.id, world.team.id)
        with pytest.raises(NotFound):
            await admin.list_projects(world.owner.id, "no-such-team")

    async def test_update_and_delete(self, world: World) -> None:
        admin = world.admin
        updated = await admin.update_project(
            world.member.id,
            world.project.id,
            UpdateProject(default_branch="trunk", settings=ProjectSettings(health_path="/ready")),
        )
        assert updated.default_branch == "trunk"
        assert updated.settings.health_path == "/ready"
        assert updated.name == "Weather agent"
        with pytest.raises(PermissionDenied):
            await admin.update_project(world.viewer.id, world.project.id, UpdateProject(name="X"))
        with pytest.raises(PermissionDenied):
            await admin.delete_project(world.member.id, world.project.id)
        await admin.deploy(world.owner.id, world.deployment.id)
        assert admin.orchestrator is not None
        await admin.orchestrator.run_once()
        assert world.runner.running
        await admin.delete_project(world.team_admin.id, world.project.id)
        assert not world.runner.running, "the project's servers are stopped first"
        with pytest.raises(NotFound):
            await admin.get_project(world.owner.id, world.project.id)

    async def test_licence_limits_projects_across_the_installation(
        self, make_admin: AdminFactory
    ) -> None:
        admin = await make_admin()
        root, _ = await admin.bootstrap_admin("root@example.com")
        teams = [await admin.create_team(root.id, CreateTeam(name=f"T{n}")) for n in range(2)]
        for n in range(10):
            await admin.create_project(
                root.id, teams[n % 2].id, CreateProject(name=f"P{n}", source_id="weather-agent")
            )
        with pytest.raises(LicenceLimit, match="at most 10 projects"):
            await admin.create_project(
                root.id, teams[0].id, CreateProject(name="P10", source_id="weather-agent")
            )


COMMANDS: dict[str, Any] = {
    "install_command": ["npm", "ci"],
    "build_command": ["npm", "run", "build"],
    "start_command": ["node", "server.js"],
    "node_options": "--max-old-space-size=256",
}
"""A value for each setting that changes what builds and servers execute."""


class TestCommands:
    """Commands and Node options need ``project:commands:write`` (owners and admins)."""

    @pytest.mark.parametrize("setting", COMMANDS)
    async def test_a_member_may_not_set_them_on_create(self, world: World, setting: str) -> None:
        with pytest.raises(PermissionDenied) as caught:
            await world.admin.create_project(
                world.member.id,
                world.team.id,
                CreateProject(
                    name="Sneaky",
                    source_id="support-bot",
                    settings=ProjectSettings(**{setting: COMMANDS[setting]}),
                ),
            )
        assert setting in caught.value.message
        assert "project:commands:write" in caught.value.message
        assert caught.value.details["permission"] == "project:commands:write"
        assert caught.value.details["settings"] == [setting]
        page = await world.admin.list_projects(world.owner.id, world.team.id)
        assert [p.name for p in page.items] == ["Weather agent"]

    @pytest.mark.parametrize("setting", COMMANDS)
    async def test_a_member_may_not_change_them(self, world: World, setting: str) -> None:
        with pytest.raises(PermissionDenied, match=f"{setting}.*project:commands:write"):
            await world.admin.update_project(
                world.member.id,
                world.project.id,
                UpdateProject(settings=ProjectSettings(**{setting: COMMANDS[setting]})),
            )
        stored = await world.admin.get_project(world.owner.id, world.project.id)
        assert stored.settings == ProjectSettings()

    async def test_a_member_may_change_the_rest_and_save_them_unchanged(self, world: World) -> None:
        admin, project = world.admin, world.project
        await admin.update_project(
            world.owner.id, project.id, UpdateProject(settings=ProjectSettings(**COMMANDS))
        )
        updated = await admin.update_project(
            world.member.id,
            project.id,
            UpdateProject(
                name="Renamed", settings=ProjectSettings(**COMMANDS, health_path="/ready")
            ),
        )
        assert updated.settings.health_path == "/ready"
        assert updated.settings.install_command == COMMANDS["install_command"]
        other = ProjectSettings(**{**COMMANDS, "start_command": None}, health_path="/ready")
        with pytest.raises(PermissionDenied, match="start_command"):
            await admin.update_project(world.member.id, project.id, UpdateProject(settings=other))
        created = await admin.create_project(
            world.member.id,
            world.team.id,
            CreateProject(
                name="Plain", source_id="support-bot", settings=ProjectSettings(health_path="/up")
            ),
        )
        assert created.settings.health_path == "/up"

    @pytest.mark.parametrize("rank", ["owner", "admin"])
    async def test_owners_and_admins_may_set_them(self, world: World, rank: str) -> None:
        actor = world.by_role(rank)
        created = await world.admin.create_project(
            actor.id,
            world.team.id,
            CreateProject(
                name="Custom", source_id="support-bot", settings=ProjectSettings(**COMMANDS)
            ),
        )
        assert created.settings.start_command == COMMANDS["start_command"]
        updated = await world.admin.update_project(
            actor.id,
            world.project.id,
            UpdateProject(settings=ProjectSettings(node_options="--enable-source-maps")),
        )
        assert updated.settings.node_options == "--enable-source-maps"


EXECUTION_KEYS = [
    "NODE_OPTIONS",
    "node_options",
    "LD_PRELOAD",
    "npm_config_script_shell",
    "NPM_CONFIG_NODE_OPTIONS",
    "PATH",
]
"""Env var names that change how Node, npm or the loader load code."""


class TestExecutionEnvVars:
    @pytest.mark.parametrize("key", EXECUTION_KEYS)
    async def test_a_member_may_not_set_them(self, world: World, key: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            await world.admin.set_env_var(
                world.member.id, world.project.id, SetEnvVar(key=key, value="--import=data:x")
            )
        assert key in caught.value.message
        assert "project:commands:write" in caught.value.message
        assert caught.value.details["field"] == "key"
        assert caught.value.details["key"] == key
        assert await world.storage.projects.list_env_vars(world.project.id) == []

    @pytest.mark.parametrize("key", ["OPENAI_API_KEY", "NODE_ENV"])
    async def test_a_member_may_set_ordinary_names(self, world: World, key: str) -> None:
        view = await world.admin.set_env_var(
            world.member.id, world.project.id, SetEnvVar(key=key, value="production")
        )
        assert view.key == key

    @pytest.mark.parametrize(("rank", "key"), [("owner", "NODE_OPTIONS"), ("admin", "LD_PRELOAD")])
    async def test_owners_and_admins_may_set_them(self, world: World, rank: str, key: str) -> None:
        await world.admin.set_env_var(
            world.by_role(rank).id, world.project.id, SetEnvVar(key=key, value="--trace-warnings")
        )
        (stored,) = await world.storage.projects.list_env_vars(world.project.id)
        assert stored.key == key

    async def test_a_member_may_not_delete_them(self, world: World) -> None:
        admin = world.admin
        await admin.set_env_var(
            world.owner.id, world.project.id, SetEnvVar(key="NODE_OPTIONS", value="--x")
        )
        with pytest.raises(InvalidInput, match="project:commands:write"):
            await admin.delete_env_var(world.member.id, world.project.id, "NODE_OPTIONS")
        assert [v.key for v in await admin.list_env_vars(world.member.id, world.project.id)] == [
            "NODE_OPTIONS"
        ]
        await admin.delete_env_var(world.owner.id, world.project.id, "NODE_OPTIONS")


class TestEnvVars:
    async def test_values_are_encrypted_and_hidden(self, world: World) -> None:
        admin = world.admin
        view = await admin.set_env_var(
            world.member.id, world.project.id, SetEnvVar(key="OPENAI_API_KEY", value="sk-123")
        )
        assert view.value is None
        (stored,) = await world.storage.projects.list_env_vars(world.project.id)
        assert stored.encrypted_value.startswith("v1:")
        assert "sk-123" not in stored.encrypted_value
        (listed,) = await admin.list_env_vars(world.viewer.id, world.project.id)
        assert (listed.key, listed.value, listed.is_secret) == ("OPENAI_API_KEY", None, True)

    async def test_reveal_needs_permission_and_is_recorded(self, world: World) -> None:
        admin = world.admin
        await admin.set_env_var(world.owner.id, world.project.id, SetEnvVar(key="A", value="1"))
        await admin.set_env_var(
            world.owner.id,
            world.project.id,
            SetEnvVar(key="B", value="two", deployment_type=DeploymentType.PREVIEW),
        )
        for user in (world.member, world.viewer):
            with pytest.raises(PermissionDenied):
                await admin.reveal_env_vars(user.id, world.project.id)
        with structlog.testing.capture_logs() as logs:
            revealed = await admin.reveal_env_vars(world.team_admin.id, world.project.id)
            only_b = await admin.reveal_env_vars(world.owner.id, world.project.id, keys=["B"])
            for_production = await admin.reveal_env_vars(
                world.owner.id, world.project.id, deployment_type=DeploymentType.PRODUCTION
            )
        assert [(v.key, v.value) for v in revealed] == [("A", "1"), ("B", "two")]
        assert [v.value for v in only_b] == ["two"]
        assert [v.key for v in for_production] == ["A"]
        events = [e for e in logs if e["event"] == "env_var.revealed"]
        assert events[0]["actor_id"] == world.team_admin.id
        assert events[0]["project_id"] == world.project.id
        assert events[0]["keys"] == ["A", "B"]
        assert "1" not in str(events[0].get("values", ""))
        assert "two" not in repr(events)

    async def test_replace_and_delete(self, world: World) -> None:
        admin = world.admin
        first = await admin.set_env_var(
            world.member.id, world.project.id, SetEnvVar(key="A", value="1")
        )
        second = await admin.set_env_var(
            world.member.id, world.project.id, SetEnvVar(key="A", value="2")
        )
        assert second.id == first.id
        (revealed,) = await admin.reveal_env_vars(world.owner.id, world.project.id)
        assert revealed.value == "2"
        with pytest.raises(PermissionDenied):
            await admin.delete_env_var(world.viewer.id, world.project.id, "A")
        await admin.delete_env_var(world.member.id, world.project.id, "A")
        with pytest.raises(NotFound):
            await admin.delete_env_var(world.member.id, world.project.id, "A")

    async def test_outsiders_see_nothing(self, world: World) -> None:
        with pytest.raises(NotFound):
            await world.admin.list_env_vars(world.outsider.id, world.project.id)
        with pytest.raises(NotFound):
            await world.admin.set_env_var(
                world.outsider.id, world.project.id, SetEnvVar(key="A", value="1")
            )

    async def test_precedence_in_the_deployed_environment(self, world: World) -> None:
        """all types < this deployment type < the deployment's own overrides."""
        admin, owner, project = world.admin, world.owner, world.project
        for key, value, kind in [
            ("SHARED", "everywhere", None),
            ("LEVEL", "all", None),
            ("LEVEL", "production", DeploymentType.PRODUCTION),
            ("LEVEL", "preview", DeploymentType.PREVIEW),
            ("OVERRIDDEN", "project", None),
        ]:
            await admin.set_env_var(
                owner.id, project.id, SetEnvVar(key=key, value=value, deployment_type=kind)
            )
        await admin.set_env_var(
            owner.id, project.id, SetEnvVar(key="PUBLIC", value="visible", is_secret=False)
        )
        deployment = await admin.update_deployment(
            owner.id,
            world.deployment.id,
            UpdateDeployment(env_var_overrides={"OVERRIDDEN": "deployment"}),
        )
        assert "deployment" not in deployment.env_var_overrides[0].encrypted_value
        env, secrets = await admin.build_env(deployment, project)
        assert env["SHARED"] == "everywhere"
        assert env["LEVEL"] == "production"
        assert env["OVERRIDDEN"] == "deployment"
        assert env["PUBLIC"] == "visible"
        assert env["MASTRA_PROJECT_ID"] == project.id
        assert env["MASTRA_DEPLOYMENT_ID"] == deployment.id
        assert env["MASTRA_TELEMETRY_DISABLED"] == "1"
        assert env["MASTRA_CLOUD_ACCESS_TOKEN"] == admin.collector_token(deployment.id)
        assert env["MASTRA_CLOUD_TRACES_ENDPOINT"].endswith(
            f"/api/collector/{deployment.id}/spans/publish"
        )
        assert env["MASTRA_PLATFORM_ACCESS_TOKEN"] == env["MASTRA_CLOUD_ACCESS_TOKEN"]
        assert env["MASTRA_PLATFORM_OBSERVABILITY_ENDPOINT"] == env["MASTRA_CLOUD_TRACES_ENDPOINT"]
        assert env["MASTRA_CLOUD_ACCESS_TOKEN"] in secrets
        assert "visible" not in secrets
        assert {"everywhere", "production", "deployment"} <= set(secrets)
        preview = await admin.create_deployment(
            owner.id, project.id, CreateDeployment(type=DeploymentType.PREVIEW, branch="feat/x")
        )
        preview_env, _ = await admin.build_env(preview, project)
        assert preview_env["LEVEL"] == "preview"
        assert preview_env["OVERRIDDEN"] == "project"


class TestProjectTokens:
    async def test_shown_once_scoped_and_checked(self, world: World) -> None:
        admin = world.admin
        token, raw = await admin.create_project_token(
            world.team_admin.id, world.project.id, CreateApiToken(name="ci")
        )
        assert raw.startswith("mpt_")
        assert token.token_prefix == raw[:12]
        assert "deployment:deploy" in token.scopes
        assert raw not in token.model_dump_json()
        found = await admin.authenticate_project_token(
            raw, permission="deployment:deploy", project_id=world.project.id
        )
        assert found.id == token.id
        assert found.created_by == world.team_admin.id
        with pytest.raises(PermissionDenied, match="scopes"):
            await admin.authenticate_project_token(raw, permission="project:delete")
        with pytest.raises(NotFound):
            await admin.authenticate_project_token(raw, project_id="another-project")
        (listed,) = await admin.list_project_tokens(world.member.id, world.project.id)
        assert listed.last_used_at is not None
        with pytest.raises(Unauthenticated):
            await admin.authenticate_project_token("mpt_unknown")

    async def test_who_may_create_and_delete(self, world: World) -> None:
        admin = world.admin
        with pytest.raises(PermissionDenied):
            await admin.create_project_token(
                world.member.id, world.project.id, CreateApiToken(name="x")
            )
        with pytest.raises(PermissionDenied):
            await admin.list_project_tokens(world.viewer.id, world.project.id)
        token, raw = await admin.create_project_token(
            world.owner.id, world.project.id, CreateApiToken(name="x", scopes=["build:read"])
        )
        with pytest.raises(PermissionDenied):
            await admin.delete_project_token(world.member.id, world.project.id, token.id)
        await admin.delete_project_token(world.owner.id, world.project.id, token.id)
        with pytest.raises(Unauthenticated):
            await admin.authenticate_project_token(raw)
        with pytest.raises(NotFound):
            await admin.delete_project_token(world.owner.id, world.project.id, token.id)

    async def test_a_token_cannot_carry_more_than_its_creator_holds(self, world: World) -> None:
        with pytest.raises(PermissionDenied, match="team:delete"):
            await world.admin.create_project_token(
                world.team_admin.id,
                world.project.id,
                CreateApiToken(name="x", scopes=["team:delete"]),
            )

    async def test_expired_tokens_are_refused(self, world: World) -> None:
        raw, token_hash, prefix = generate_token(PROJECT_TOKEN_PREFIX)
        await world.storage.projects.create_api_token(
            ProjectApiToken(
                project_id=world.project.id,
                name="old",
                token_hash=token_hash,
                token_prefix=prefix,
                created_by=world.owner.id,
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
        with pytest.raises(Unauthenticated, match="expired"):
            await world.admin.authenticate_project_token(raw)
