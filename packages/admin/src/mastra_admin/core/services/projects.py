"""Projects, their env vars and API tokens, and the source projects to create them from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from mastra_admin.core.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from mastra_admin.core.execution_rules import (
    changed_execution_settings,
    changes_execution,
)
from mastra_admin.core.inputs import (
    CreateApiToken,
    CreateProject,
    SetEnvVar,
    UpdateProject,
)
from mastra_admin.core.models import (
    DeploymentType,
    Page,
    Project,
    ProjectApiToken,
    ProjectEnvVar,
    ProjectSettings,
)
from mastra_admin.core.rbac import (
    Actor,
    as_principal,
    check_custom_permissions,
    user_id_of,
)
from mastra_admin.core.services._service import (
    Service,
    check_expiry,
    ensure_can_grant,
    set_fields,
)
from mastra_admin.core.storage import (
    ProjectUpdate,
)
from mastra_admin.core.tokens import (
    PROJECT_TOKEN_PREFIX,
    generate_token,
)
from mastra_admin.core.views import EnvVarView

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext
    from mastra_admin.core.services.deployments import DeploymentService
    from mastra_admin.core.source import ProjectSource

__all__ = ["ProjectService"]

_log = structlog.get_logger("mastra_admin.core.services.projects")

PROJECT_TOKEN_DEFAULT_SCOPES: tuple[str, ...] = (
    "project:read",
    "deployment:read",
    "deployment:deploy",
    "build:read",
    "build:create",
)
"""What a project token may do when created without scopes: what a CI job needs to
deploy and follow its build."""


class ProjectService(Service):
    """Projects, env vars, project API tokens and the source picker.

    Deleting one tears its deployments down through the deployments service."""

    def __init__(self, context: ServiceContext, deployments: DeploymentService) -> None:
        super().__init__(context)
        self.deployments = deployments

    # --- projects ---------------------------------------------------------------------

    async def create_project(self, actor: Actor, team_id: str, data: CreateProject) -> Project:
        """Create a project from a project the source lists (``data.source_id``) or
        from settings it connects to (``data.source``: a repository, say), up to the
        licence's ``max_projects`` (counted across the installation). Setting a
        command or Node options also needs ``project:commands:write``."""
        await self._team_for(actor, team_id, "project:create")
        await self._ensure_may_change_commands(
            actor, team_id, None, changed_execution_settings(ProjectSettings(), data.settings)
        )
        self.context.require_provider_features("source")
        self.licence.check_limit("max_projects", await self.storage.projects.count())
        provider = self.context.require_source()
        connected: dict[str, Any] = {}
        if provider.connects and data.source is None:
            raise InvalidInput(
                f"projects of the {provider.type!r} source are made from settings: give "
                "`source` (a repository url and its credential, say), not source_id",
                details={"field": "source"},
            )
        if data.source is not None:
            connection = await provider.connect(
                team_id, data.source, default_branch=data.default_branch
            )
            source, connected = connection.source, dict(connection.config)
        else:
            source = await provider.get_project(data.source_id or "")
        if "source_type" in data.model_fields_set and source.type != data.source_type:
            raise InvalidInput(
                f"the project source is of type {source.type!r}, not {data.source_type!r}",
                details={"field": "source_type"},
            )
        if source.metadata.get("valid") is False:
            problems = [str(p) for p in source.metadata.get("problems") or []]
            field = "source" if data.source is not None else "source_id"
            raise InvalidInput(
                "the source project cannot be built: " + ("; ".join(problems) or "invalid"),
                details={"field": field, "problems": problems},
            )
        source_config: dict[str, Any] = {
            **connected,
            "source_id": source.id,
            "path": source.path,
            "name": source.name,
            "package_manager": source.package_manager,
        }
        for key in ("mastra_version", "workspace_root"):
            if source.metadata.get(key) is not None:
                source_config[key] = source.metadata[key]
        project = await self.storage.projects.create(
            Project(
                team_id=team_id,
                name=data.name,
                slug=data.resolved_slug,
                source_type=source.type,
                source_config=source_config,
                default_branch=data.default_branch,
                settings=data.settings,
            )
        )
        _log.info(
            "project.created", team_id=team_id, project_id=project.id, actor_id=user_id_of(actor)
        )
        return project.without_secrets()

    async def get_project(self, actor: Actor, project_id: str) -> Project:
        return (await self._project_for(actor, project_id, "project:read")).without_secrets()

    async def list_projects(
        self, actor: Actor, team_id: str, *, limit: int = 50, offset: int = 0
    ) -> Page[Project]:
        """The team's projects the user may see, by name."""
        hidden = NotFound("team not found", details={"team_id": team_id})
        if await self.storage.teams.get(team_id) is None:
            raise hidden
        access = await self.authorizer.access(actor, team_id)
        if not access.visible:
            raise hidden
        principal = as_principal(actor)
        if not principal.scope_allows("project:read"):
            raise PermissionDenied(
                "the API token's scopes do not include 'project:read'",
                details={"permission": "project:read", "scopes": sorted(principal.scopes or ())},
            )
        if access.allows("project:read"):
            items = await self.storage.projects.list_for_team(team_id, limit=limit, offset=offset)
            total = await self.storage.projects.count_for_team(team_id)
            return Page(
                items=[p.without_secrets() for p in items], total=total, limit=limit, offset=offset
            )
        visible = [
            project
            for project in await self._team_projects(team_id)
            if await self.authorizer.can(actor, "project:read", team_id, project.id)
        ]
        return Page(
            items=[p.without_secrets() for p in visible[offset : offset + limit]],
            total=len(visible),
            limit=limit,
            offset=offset,
        )

    async def update_project(self, actor: Actor, project_id: str, data: UpdateProject) -> Project:
        """Change the given fields; ``settings`` replaces the settings as a whole.
        Changing a command or Node options also needs ``project:commands:write``
        (settings saved again unchanged do not)."""
        stored = await self._project_for(actor, project_id, "project:update")
        if data.settings is not None:
            await self._ensure_may_change_commands(
                actor,
                stored.team_id,
                stored.id,
                changed_execution_settings(stored.settings, data.settings),
            )
        changes = set_fields(data)
        project = await self.storage.projects.update(project_id, ProjectUpdate(**changes))
        _log.info(
            "project.updated",
            project_id=project_id,
            actor_id=user_id_of(actor),
            fields=sorted(changes),
        )
        return project.without_secrets()

    async def delete_project(self, actor: Actor, project_id: str) -> None:
        """Delete the project with its deployments, stopping their servers first."""
        await self._project_for(actor, project_id, "project:delete")
        for deployment in await self.storage.deployments.list_for_project(project_id):
            await self.deployments.teardown(deployment)
        await self.storage.projects.delete(project_id)
        _log.info("project.deleted", project_id=project_id, actor_id=user_id_of(actor))

    # --- env vars ---------------------------------------------------------------------

    async def set_env_var(self, actor: Actor, project_id: str, data: SetEnvVar) -> EnvVarView:
        """Set (or replace) an env var; the value is stored encrypted. A name that
        ``changes_execution`` also needs ``project:commands:write``."""
        project = await self._project_for(actor, project_id, "env_var:write")
        if changes_execution(data.key):
            await self._ensure_may_change_execution_env(actor, project, [data.key], "key")
        encrypted = self.context.require_encryption().encrypt(data.value)
        stored = await self.storage.projects.set_env_var(
            ProjectEnvVar(
                project_id=project_id,
                deployment_type=data.deployment_type,
                key=data.key,
                encrypted_value=encrypted,
                is_secret=data.is_secret,
            )
        )
        _log.info(
            "env_var.set",
            project_id=project_id,
            key=data.key,
            deployment_type=data.deployment_type.value if data.deployment_type else None,
            actor_id=user_id_of(actor),
        )
        return EnvVarView.of(stored)

    async def list_env_vars(self, actor: Actor, project_id: str) -> list[EnvVarView]:
        """Every env var of the project with its value hidden (``value`` is ``None``)."""
        await self._project_for(actor, project_id, "env_var:read")
        return [EnvVarView.of(var) for var in await self.storage.projects.list_env_vars(project_id)]

    async def reveal_env_vars(
        self,
        actor: Actor,
        project_id: str,
        keys: Sequence[str] | None = None,
        *,
        deployment_type: DeploymentType | None = None,
    ) -> list[EnvVarView]:
        """Env vars with their values in clear text (``env_var:reveal``): all of
        them, or those named in ``keys`` (of every deployment type, or of
        ``deployment_type`` only). Each reveal is logged (``env_var.revealed``)
        with the actor, the project and the keys, never the values."""
        await self._project_for(actor, project_id, "env_var:reveal")
        encryption = self.context.require_encryption()
        wanted = set(keys) if keys is not None else None
        revealed = [
            EnvVarView.of(var, encryption.decrypt(var.encrypted_value))
            for var in await self.storage.projects.list_env_vars(project_id)
            if (wanted is None or var.key in wanted)
            and (deployment_type is None or var.deployment_type in (None, deployment_type))
        ]
        _log.info(
            "env_var.revealed",
            actor_id=user_id_of(actor),
            project_id=project_id,
            keys=sorted({view.key for view in revealed}),
        )
        return revealed

    async def delete_env_var(
        self,
        actor: Actor,
        project_id: str,
        key: str,
        deployment_type: DeploymentType | None = None,
    ) -> None:
        """Delete an env var; a name that ``changes_execution`` also needs
        ``project:commands:write``."""
        project = await self._project_for(actor, project_id, "env_var:write")
        if changes_execution(key):
            await self._ensure_may_change_execution_env(actor, project, [key], "key")
        type_value = deployment_type.value if deployment_type else None
        if not await self.storage.projects.delete_env_var(project_id, key, type_value):
            raise NotFound("env var not found", details={"key": key, "deployment_type": type_value})
        _log.info(
            "env_var.deleted",
            project_id=project_id,
            key=key,
            deployment_type=type_value,
            actor_id=user_id_of(actor),
        )

    # --- project API tokens -----------------------------------------------------------

    async def create_project_token(
        self, actor: Actor, project_id: str, data: CreateApiToken
    ) -> tuple[ProjectApiToken, str]:
        """A token for automation on one project (a CI job deploying, say). Its
        scopes default to ``PROJECT_TOKEN_DEFAULT_SCOPES``; the creator cannot grant
        a scope they do not hold. The raw token is returned this once."""
        project = await self._project_for(actor, project_id, "token:write")
        check_expiry(data.expires_at)
        scopes = check_custom_permissions(data.scopes or list(PROJECT_TOKEN_DEFAULT_SCOPES))
        access = await self.authorizer.access(actor, project.team_id, project.id)
        ensure_can_grant(access, scopes)
        generated = generate_token(PROJECT_TOKEN_PREFIX)
        token = await self.storage.projects.create_api_token(
            ProjectApiToken(
                project_id=project_id,
                name=data.name,
                token_hash=generated.token_hash,
                token_prefix=generated.display_prefix,
                scopes=scopes,
                expires_at=data.expires_at,
                created_by=user_id_of(actor),
            )
        )
        _log.info(
            "project_token.created",
            project_id=project_id,
            token_id=token.id,
            actor_id=user_id_of(actor),
        )
        return token, generated.raw

    async def list_project_tokens(self, actor: Actor, project_id: str) -> list[ProjectApiToken]:
        await self._project_for(actor, project_id, "token:read")
        return await self.storage.projects.list_api_tokens(project_id)

    async def delete_project_token(self, actor: Actor, project_id: str, token_id: str) -> None:
        await self._project_for(actor, project_id, "token:write")
        tokens = await self.storage.projects.list_api_tokens(project_id)
        if not any(t.id == token_id for t in tokens):
            raise NotFound("API token not found", details={"token_id": token_id})
        await self.storage.projects.delete_api_token(token_id)
        _log.info(
            "project_token.deleted",
            project_id=project_id,
            token_id=token_id,
            actor_id=user_id_of(actor),
        )

    # --- sources ------------------------------------------------------------------------

    async def list_source_projects(self, actor: Actor, team_id: str) -> list[ProjectSource]:
        """The projects the team can create from (the source picker), valid or not:
        an invalid one carries ``metadata["problems"]`` saying why."""
        await self._team_for(actor, team_id, "project:create")
        return await self.context.require_source().list_projects(team_id)

    async def get_source_project(self, actor: Actor, team_id: str, source_id: str) -> ProjectSource:
        await self._team_for(actor, team_id, "project:create")
        return await self.context.require_source().get_project(source_id)
