"""Projects, env vars (encrypted, hidden, revealed with a trace) and project tokens."""

from __future__ import annotations

from datetime import timedelta

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
