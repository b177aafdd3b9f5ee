"""``Service``: the base of the core's services, with the lookups they share.

Permission-checked lookups (a team, project, deployment or build the actor may see,
``NotFound`` otherwise), the checks on execution settings, and the small helpers
every service uses on its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from mastra_admin.core.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from mastra_admin.core.execution_rules import (
    COMMANDS_PERMISSION,
)
from mastra_admin.core.models import (
    Build,
    Deployment,
    Project,
    Team,
    User,
    utcnow,
)
from mastra_admin.core.rbac import PERMISSIONS, Access, Actor, as_principal, permission_matches

if TYPE_CHECKING:
    from mastra_admin.core.licence import LicenceValidator
    from mastra_admin.core.rbac import Authorizer
    from mastra_admin.core.services.context import ServiceContext
    from mastra_admin.core.settings import MastraAdminSettings
    from mastra_admin.core.storage import AdminStorage

__all__ = ["Service", "check_expiry", "ensure_can_grant", "set_fields", "validated"]


class Service:
    """A service of the core: business operations on one resource, behind RBAC and
    the licence, over the shared ``ServiceContext``."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    @property
    def settings(self) -> MastraAdminSettings:
        return self.context.settings

    @property
    def storage(self) -> AdminStorage:
        return self.context.storage

    @property
    def authorizer(self) -> Authorizer:
        return self.context.authorizer

    @property
    def licence(self) -> LicenceValidator:
        return self.context.licence

    # --- lookups with permission checks -------------------------------------------

    async def _team_for(self, actor: Actor, team_id: str, permission: str) -> Team:
        hidden = NotFound("team not found", details={"team_id": team_id})
        team = await self.storage.teams.get(team_id)
        if team is None:
            raise hidden
        await self.authorizer.ensure(actor, permission, team.id, hidden=hidden)
        return team

    async def _project_for(self, actor: Actor, project_id: str, permission: str) -> Project:
        hidden = NotFound("project not found", details={"project_id": project_id})
        project = await self.storage.projects.get(project_id)
        if project is None:
            raise hidden
        await self.authorizer.ensure(actor, permission, project.team_id, project.id, hidden=hidden)
        return project

    async def _deployment_for(
        self, actor: Actor, deployment_id: str, permission: str
    ) -> tuple[Deployment, Project, Team]:
        hidden = NotFound("deployment not found", details={"deployment_id": deployment_id})
        try:
            deployment, project, team = await self.load_deployment(deployment_id)
        except NotFound:
            raise hidden from None
        await self.authorizer.ensure(actor, permission, team.id, project.id, hidden=hidden)
        return deployment, project, team

    async def _build_for(
        self, actor: Actor, build_id: str, permission: str
    ) -> tuple[Build, Deployment, Project, Team]:
        hidden = NotFound("build not found", details={"build_id": build_id})
        build = await self.storage.builds.get(build_id)
        if build is None:
            raise hidden
        try:
            deployment, project, team = await self.load_deployment(build.deployment_id)
        except NotFound:
            raise hidden from None
        await self.authorizer.ensure(actor, permission, team.id, project.id, hidden=hidden)
        return build, deployment, project, team

    async def _ensure_may_change_commands(
        self, actor: Actor, team_id: str, project_id: str | None, settings: Sequence[str]
    ) -> None:
        """``PermissionDenied`` naming ``settings`` (changed execution settings) unless
        the actor holds ``project:commands:write``."""
        if not settings or await self.authorizer.can(
            actor, COMMANDS_PERMISSION, team_id, project_id
        ):
            return
        raise PermissionDenied(
            f"changing {', '.join(settings)} needs the permission {COMMANDS_PERMISSION!r}",
            details={
                "permission": COMMANDS_PERMISSION,
                "settings": list(settings),
                "team_id": team_id,
                "project_id": project_id,
            },
        )

    async def _ensure_may_change_execution_env(
        self, actor: Actor, project: Project, keys: Sequence[str], field: str
    ) -> None:
        """``InvalidInput`` on ``field`` naming ``keys`` (env vars that change how code
        loads) unless the actor holds ``project:commands:write``."""
        if not keys or await self.authorizer.can(
            actor, COMMANDS_PERMISSION, project.team_id, project.id
        ):
            return
        one = len(keys) == 1
        raise InvalidInput(
            f"{', '.join(keys)} {'changes' if one else 'change'} how Node, npm or the"
            f" loader load code; changing {'it' if one else 'them'} needs the permission"
            f" {COMMANDS_PERMISSION!r}",
            details={
                "field": field,
                "key": keys[0],
                "keys": list(keys),
                "permission": COMMANDS_PERMISSION,
            },
        )

    @staticmethod
    def _ensure_unscoped(actor: Actor, what: str) -> str:
        """The actor's user id, if it acts with all of its user's permissions (or a
        token scoped to ``*``): what gives a user new power (creating a team, joining
        one) is not within any narrower scope."""
        principal = as_principal(actor)
        if principal.project_id is not None or not principal.scope_allows("*"):
            raise PermissionDenied(
                f"an API token scoped to less than '*' cannot {what}",
                details={"scopes": sorted(principal.scopes or ()), "token_id": principal.token_id},
            )
        return principal.user_id

    async def _user(self, user_id: str) -> User:
        user = await self.storage.users.get(user_id)
        if user is None:
            raise NotFound("user not found", details={"user_id": user_id})
        return user

    async def _team_projects(self, team_id: str) -> list[Project]:
        found: list[Project] = []
        while True:
            page = await self.storage.projects.list_for_team(team_id, limit=500, offset=len(found))
            found.extend(page)
            if len(page) < 500:
                return found

    async def load_deployment(self, deployment_id: str) -> tuple[Deployment, Project, Team]:
        """The deployment with its project and team, without any permission check."""
        deployment = await self.storage.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        project = await self.storage.projects.get(deployment.project_id)
        if project is None:
            raise NotFound("project not found", details={"project_id": deployment.project_id})
        team = await self.storage.teams.get(project.team_id)
        if team is None:
            raise NotFound("team not found", details={"team_id": project.team_id})
        return deployment, project, team


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], **values: Any) -> _M:
    """Build an input model from plain values, as ``InvalidInput`` when they are bad."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}", details={"field": field}) from None


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=utcnow().tzinfo)
    if moment <= utcnow():
        raise InvalidInput("the expiry must be in the future", details={"field": "expires_at"})


def set_fields(data: BaseModel) -> dict[str, Any]:
    """The fields an update input set to a value (an explicit ``null`` for a field
    that cannot be empty, such as a name, changes nothing)."""
    return {
        name: getattr(data, name)
        for name in data.model_fields_set
        if getattr(data, name) is not None
    }


def ensure_can_grant(access: Access, permissions: Sequence[str]) -> None:
    """Nobody hands out more than they hold: every permission a role or token
    covers must be covered by the actor's own permissions there."""
    missing = sorted(
        {
            known
            for granted in permissions
            for known in PERMISSIONS
            if permission_matches(str(granted), known) and not access.allows(known)
        }
    )
    if missing:
        raise PermissionDenied(
            "you cannot grant permissions you do not hold: " + ", ".join(missing),
            details={"permissions": missing},
        )
