"""``InMemoryAdminStorage``: a complete ``AdminStorage`` held in dictionaries.

For tests and demos: it follows every rule of ``mastra_admin.core.storage`` (conflicts
naming the field, missing parents, cascades, ordering, the build queue) so that the
core's own tests exercise real semantics. State lives in one process and is guarded
by one ``asyncio.Lock``; every entity handed out is a deep copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from mastra_admin.core.errors import Conflict, NotFound
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    Domain,
    DomainStatus,
    HealthStatus,
    Project,
    ProjectApiToken,
    ProjectEnvVar,
    ResourceType,
    Role,
    RoleAssignment,
    Route,
    RouteStatus,
    RunningServer,
    Team,
    TeamInstallation,
    TeamInvite,
    TeamMember,
    TeamRole,
    User,
    UserApiToken,
    utcnow,
)
from mastra_admin.core.storage import (
    AdminStorage,
    BuildStore,
    BuildUpdate,
    DeploymentStore,
    DeploymentUpdate,
    DomainStore,
    DomainUpdate,
    Patch,
    ProjectStore,
    ProjectUpdate,
    RbacStore,
    RoleUpdate,
    RouteStore,
    RouteUpdate,
    RunningServerStore,
    RunningServerUpdate,
    TeamStore,
    TeamUpdate,
    UserStore,
    UserUpdate,
    WebhookDeliveryStore,
    last_owner_conflict,
)

__all__ = ["InMemoryAdminStorage"]

M = TypeVar("M", bound=BaseModel)

_ACTIVE = (BuildStatus.BUILDING, BuildStatus.DEPLOYING)


def _copy(model: M) -> M:
    return model.model_copy(deep=True)


def _copies(models: Iterable[M]) -> list[M]:
    return [_copy(m) for m in models]


def _page(items: Sequence[M], limit: int, offset: int) -> list[M]:
    return _copies(items[offset : offset + limit])


def _conflict(what: str, field: str) -> Conflict:
    return Conflict(f"{what} with this {field} already exists", details={"field": field})


def _not_found(what: str, key: str, value: str | None) -> NotFound:
    return NotFound(f"{what} not found", details={key: value})


def _apply(entity: M, patch: Patch) -> M:
    """A validated copy of ``entity`` with the patch's fields set and ``updated_at`` bumped."""
    updated = _copy(entity)
    for name, value in patch.changes().items():
        setattr(updated, name, value)
    if "updated_at" in type(entity).model_fields:
        updated.updated_at = utcnow()  # type: ignore[attr-defined]
    return updated


def _queue_key(build: Build) -> tuple[datetime, str]:
    return (build.queued_at, build.id)


class _State:
    """Every table, and the one lock that makes each operation atomic."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users: dict[str, User] = {}
        self.user_tokens: dict[str, UserApiToken] = {}
        self.teams: dict[str, Team] = {}
        self.members: dict[str, TeamMember] = {}
        self.invites: dict[str, TeamInvite] = {}
        self.installations: dict[str, TeamInstallation] = {}
        self.projects: dict[str, Project] = {}
        self.env_vars: dict[str, ProjectEnvVar] = {}
        self.project_tokens: dict[str, ProjectApiToken] = {}
        self.deployments: dict[str, Deployment] = {}
        self.builds: dict[str, Build] = {}
        self.servers: dict[str, RunningServer] = {}
        self.routes: dict[str, Route] = {}
        self.roles: dict[str, Role] = {}
        self.assignments: dict[str, RoleAssignment] = {}
        self.webhook_deliveries: dict[tuple[str, str], datetime] = {}
        self.domains: dict[str, Domain] = {}

    # --- cascades (called with the lock held) ----------------------------------

    def drop_where(self, table: dict[str, M], predicate: Callable[[M], bool]) -> list[str]:
        doomed = [key for key, row in table.items() if predicate(row)]
        for key in doomed:
            del table[key]
        return doomed

    def delete_user(self, user_id: str) -> None:
        del self.users[user_id]
        self.drop_where(self.user_tokens, lambda t: t.user_id == user_id)
        self.drop_where(self.members, lambda m: m.user_id == user_id)
        self.drop_where(self.assignments, lambda a: a.user_id == user_id)

    def delete_team(self, team_id: str) -> None:
        del self.teams[team_id]
        self.drop_where(self.members, lambda m: m.team_id == team_id)
        self.drop_where(self.invites, lambda i: i.team_id == team_id)
        self.drop_where(self.installations, lambda i: i.team_id == team_id)
        for project_id in [p.id for p in self.projects.values() if p.team_id == team_id]:
            self.delete_project(project_id)
        for role_id in [r.id for r in self.roles.values() if r.team_id == team_id]:
            self.delete_role(role_id)
        self.drop_where(
            self.assignments,
            lambda a: a.resource_type is ResourceType.TEAM and a.resource_id == team_id,
        )

    def delete_project(self, project_id: str) -> None:
        del self.projects[project_id]
        self.drop_where(self.env_vars, lambda v: v.project_id == project_id)
        self.drop_where(self.project_tokens, lambda t: t.project_id == project_id)
        for deployment_id in [
            d.id for d in self.deployments.values() if d.project_id == project_id
        ]:
            self.delete_deployment(deployment_id)
        self.drop_where(self.routes, lambda r: r.project_id == project_id)
        self.drop_where(
            self.assignments,
            lambda a: a.resource_type is ResourceType.PROJECT and a.resource_id == project_id,
        )

    def delete_deployment(self, deployment_id: str) -> None:
        del self.deployments[deployment_id]
        self.drop_where(self.builds, lambda b: b.deployment_id == deployment_id)
        self.drop_where(self.servers, lambda s: s.deployment_id == deployment_id)
        self.drop_where(self.routes, lambda r: r.deployment_id == deployment_id)
        self.drop_where(self.domains, lambda d: d.deployment_id == deployment_id)

    def delete_role(self, role_id: str) -> None:
        del self.roles[role_id]
        self.drop_where(self.assignments, lambda a: a.role_id == role_id)


class _Store:
    def __init__(self, state: _State) -> None:
        self._s = state


# --- users -----------------------------------------------------------------------


class _Users(_Store, UserStore):
    def _email_taken(self, email: str, except_id: str | None = None) -> bool:
        wanted = email.casefold()
        return any(
            u.email.casefold() == wanted and u.id != except_id for u in self._s.users.values()
        )

    def _external_id_taken(self, external_id: str | None, except_id: str | None = None) -> bool:
        return external_id is not None and any(
            u.external_id == external_id and u.id != except_id for u in self._s.users.values()
        )

    async def create(self, user: User) -> User:
        async with self._s.lock:
            if user.id in self._s.users:
                raise _conflict("a user", "id")
            if self._email_taken(user.email):
                raise _conflict("a user", "email")
            if self._external_id_taken(user.external_id):
                raise _conflict("a user", "external_id")
            self._s.users[user.id] = _copy(user)
            return _copy(user)

    async def get(self, user_id: str) -> User | None:
        async with self._s.lock:
            user = self._s.users.get(user_id)
            return _copy(user) if user else None

    async def get_by_email(self, email: str) -> User | None:
        wanted = email.casefold()
        async with self._s.lock:
            for user in self._s.users.values():
                if user.email.casefold() == wanted:
                    return _copy(user)
            return None

    async def get_by_external_id(self, external_id: str) -> User | None:
        async with self._s.lock:
            for user in self._s.users.values():
                if user.external_id == external_id:
                    return _copy(user)
            return None

    async def update(self, user_id: str, patch: UserUpdate) -> User:
        async with self._s.lock:
            user = self._s.users.get(user_id)
            if user is None:
                raise _not_found("user", "user_id", user_id)
            changes = patch.changes()
            if changes.get("email") is not None and self._email_taken(changes["email"], user_id):
                raise _conflict("a user", "email")
            if self._external_id_taken(changes.get("external_id"), user_id):
                raise _conflict("a user", "external_id")
            updated = _apply(user, patch)
            self._s.users[user_id] = updated
            return _copy(updated)

    async def delete(self, user_id: str) -> bool:
        async with self._s.lock:
            if user_id not in self._s.users:
                return False
            self._s.delete_user(user_id)
            return True

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        async with self._s.lock:
            users = sorted(self._s.users.values(), key=lambda u: (u.created_at, u.id))
            return _page(users, limit, offset)

    async def count(self) -> int:
        async with self._s.lock:
            return len(self._s.users)

    async def create_token(self, token: UserApiToken) -> UserApiToken:
        async with self._s.lock:
            if token.user_id not in self._s.users:
                raise _not_found("user", "user_id", token.user_id)
            if token.id in self._s.user_tokens:
                raise _conflict("a token", "id")
            if any(t.token_hash == token.token_hash for t in self._s.user_tokens.values()):
                raise _conflict("a token", "token_hash")
            self._s.user_tokens[token.id] = _copy(token)
            return _copy(token)

    async def get_token_by_hash(self, token_hash: str) -> UserApiToken | None:
        async with self._s.lock:
            for token in self._s.user_tokens.values():
                if token.token_hash == token_hash:
                    return _copy(token)
            return None

    async def list_tokens(self, user_id: str) -> list[UserApiToken]:
        async with self._s.lock:
            tokens = [t for t in self._s.user_tokens.values() if t.user_id == user_id]
            tokens.sort(key=lambda t: (t.created_at, t.id), reverse=True)
            return _copies(tokens)

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        async with self._s.lock:
            token = self._s.user_tokens.get(token_id)
            if token is None:
                return False
            if token.revoked_at is None:
                token.revoked_at = at
            return True

    async def touch_token(self, token_id: str, at: datetime) -> None:
        async with self._s.lock:
            token = self._s.user_tokens.get(token_id)
            if token is not None:
                token.last_used_at = at


# --- teams -----------------------------------------------------------------------


class _Teams(_Store, TeamStore):
    def _require_team(self, team_id: str) -> Team:
        team = self._s.teams.get(team_id)
        if team is None:
            raise _not_found("team", "team_id", team_id)
        return team

    async def create(self, team: Team) -> Team:
        async with self._s.lock:
            if team.id in self._s.teams:
                raise _conflict("a team", "id")
            if any(t.slug == team.slug for t in self._s.teams.values()):
                raise _conflict("a team", "slug")
            self._s.teams[team.id] = _copy(team)
            return _copy(team)

    async def get(self, team_id: str) -> Team | None:
        async with self._s.lock:
            team = self._s.teams.get(team_id)
            return _copy(team) if team else None

    async def get_by_slug(self, slug: str) -> Team | None:
        async with self._s.lock:
            for team in self._s.teams.values():
                if team.slug == slug:
                    return _copy(team)
            return None

    async def update(self, team_id: str, patch: TeamUpdate) -> Team:
        async with self._s.lock:
            team = self._require_team(team_id)
            slug = patch.changes().get("slug")
            if slug is not None and any(
                t.slug == slug and t.id != team_id for t in self._s.teams.values()
            ):
                raise _conflict("a team", "slug")
            updated = _apply(team, patch)
            self._s.teams[team_id] = updated
            return _copy(updated)

    async def delete(self, team_id: str) -> bool:
        async with self._s.lock:
            if team_id not in self._s.teams:
                return False
            self._s.delete_team(team_id)
            return True

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[Team]:
        async with self._s.lock:
            teams = sorted(self._s.teams.values(), key=lambda t: (t.name, t.id))
            return _page(teams, limit, offset)

    async def list_for_user(self, user_id: str) -> list[Team]:
        async with self._s.lock:
            team_ids = {m.team_id for m in self._s.members.values() if m.user_id == user_id}
            teams = [self._s.teams[t] for t in team_ids if t in self._s.teams]
            teams.sort(key=lambda t: (t.name, t.id))
            return _copies(teams)

    async def count(self) -> int:
        async with self._s.lock:
            return len(self._s.teams)

    async def add_member(self, member: TeamMember) -> TeamMember:
        async with self._s.lock:
            self._require_team(member.team_id)
            if member.user_id not in self._s.users:
                raise _not_found("user", "user_id", member.user_id)
            if any(
                m.team_id == member.team_id and m.user_id == member.user_id
                for m in self._s.members.values()
            ):
                raise Conflict(
                    "the user is already a member of this team", details={"field": "user_id"}
                )
            self._s.members[member.id] = _copy(member)
            return _copy(member)

    def _find_member(self, team_id: str, user_id: str) -> TeamMember | None:
        for member in self._s.members.values():
            if member.team_id == team_id and member.user_id == user_id:
                return member
        return None

    async def get_member(self, team_id: str, user_id: str) -> TeamMember | None:
        async with self._s.lock:
            member = self._find_member(team_id, user_id)
            return _copy(member) if member else None

    async def list_members(self, team_id: str) -> list[TeamMember]:
        async with self._s.lock:
            members = [m for m in self._s.members.values() if m.team_id == team_id]
            members.sort(key=lambda m: (m.joined_at, m.id))
            return _copies(members)

    async def count_members(self, team_id: str) -> int:
        async with self._s.lock:
            return sum(1 for m in self._s.members.values() if m.team_id == team_id)

    async def update_member_role(
        self, team_id: str, user_id: str, role: TeamRole, *, keep_owner: bool = False
    ) -> TeamMember:
        async with self._s.lock:
            member = self._find_member(team_id, user_id)
            if member is None:
                raise NotFound(
                    "the user is not a member of this team",
                    details={"team_id": team_id, "user_id": user_id},
                )
            if keep_owner and role is not TeamRole.OWNER and self._last_owner(member):
                raise last_owner_conflict("role", user_id)
            member.role = role
            return _copy(member)

    async def remove_member(self, team_id: str, user_id: str, *, keep_owner: bool = False) -> bool:
        async with self._s.lock:
            member = self._find_member(team_id, user_id)
            if member is None:
                return False
            if keep_owner and self._last_owner(member):
                raise last_owner_conflict("user_id", user_id)
            del self._s.members[member.id]
            return True

    def _last_owner(self, member: TeamMember) -> bool:
        return member.role is TeamRole.OWNER and not any(
            m.team_id == member.team_id and m.role is TeamRole.OWNER and m.id != member.id
            for m in self._s.members.values()
        )

    async def create_invite(self, invite: TeamInvite) -> TeamInvite:
        async with self._s.lock:
            self._require_team(invite.team_id)
            if invite.id in self._s.invites:
                raise _conflict("an invite", "id")
            if any(i.token_hash == invite.token_hash for i in self._s.invites.values()):
                raise _conflict("an invite", "token_hash")
            self._s.invites[invite.id] = _copy(invite)
            return _copy(invite)

    async def get_invite(self, invite_id: str) -> TeamInvite | None:
        async with self._s.lock:
            invite = self._s.invites.get(invite_id)
            return _copy(invite) if invite else None

    async def get_invite_by_token_hash(self, token_hash: str) -> TeamInvite | None:
        async with self._s.lock:
            for invite in self._s.invites.values():
                if invite.token_hash == token_hash:
                    return _copy(invite)
            return None

    async def list_pending_invites(self, team_id: str, now: datetime) -> list[TeamInvite]:
        async with self._s.lock:
            invites = [
                i
                for i in self._s.invites.values()
                if i.team_id == team_id and i.accepted_at is None and i.expires_at > now
            ]
            invites.sort(key=lambda i: (i.created_at, i.id), reverse=True)
            return _copies(invites)

    async def mark_invite_accepted(self, invite_id: str, at: datetime) -> bool:
        async with self._s.lock:
            invite = self._s.invites.get(invite_id)
            if invite is None or invite.accepted_at is not None:
                return False
            invite.accepted_at = at
            return True

    async def delete_invite(self, invite_id: str) -> bool:
        async with self._s.lock:
            return self._s.invites.pop(invite_id, None) is not None

    async def create_installation(self, installation: TeamInstallation) -> TeamInstallation:
        async with self._s.lock:
            self._require_team(installation.team_id)
            if installation.id in self._s.installations:
                raise _conflict("an installation", "id")
            if any(
                i.team_id == installation.team_id
                and i.provider == installation.provider
                and i.installation_id == installation.installation_id
                for i in self._s.installations.values()
            ):
                raise _conflict("an installation", "installation_id")
            self._s.installations[installation.id] = _copy(installation)
            return _copy(installation)

    async def get_installation(
        self, team_id: str, provider: str, installation_id: str
    ) -> TeamInstallation | None:
        async with self._s.lock:
            for i in self._s.installations.values():
                if (i.team_id, i.provider, i.installation_id) == (
                    team_id,
                    provider,
                    installation_id,
                ):
                    return _copy(i)
            return None

    async def list_installations(self, team_id: str) -> list[TeamInstallation]:
        async with self._s.lock:
            found = [i for i in self._s.installations.values() if i.team_id == team_id]
            found.sort(key=lambda i: (i.created_at, i.id))
            return _copies(found)

    async def delete_installation(self, installation_id: str) -> bool:
        async with self._s.lock:
            return self._s.installations.pop(installation_id, None) is not None


# --- projects --------------------------------------------------------------------


def _env_var_key(var: ProjectEnvVar) -> tuple[str, int, str]:
    return (var.key, 0 if var.deployment_type is None else 1, var.deployment_type or "")


class _Projects(_Store, ProjectStore):
    def _require(self, project_id: str) -> Project:
        project = self._s.projects.get(project_id)
        if project is None:
            raise _not_found("project", "project_id", project_id)
        return project

    async def create(self, project: Project) -> Project:
        async with self._s.lock:
            if project.team_id not in self._s.teams:
                raise _not_found("team", "team_id", project.team_id)
            if project.id in self._s.projects:
                raise _conflict("a project", "id")
            if any(
                p.team_id == project.team_id and p.slug == project.slug
                for p in self._s.projects.values()
            ):
                raise _conflict("a project", "slug")
            self._s.projects[project.id] = _copy(project)
            return _copy(project)

    async def get(self, project_id: str) -> Project | None:
        async with self._s.lock:
            project = self._s.projects.get(project_id)
            return _copy(project) if project else None

    async def get_by_slug(self, team_id: str, slug: str) -> Project | None:
        async with self._s.lock:
            for project in self._s.projects.values():
                if project.team_id == team_id and project.slug == slug:
                    return _copy(project)
            return None

    async def update(self, project_id: str, patch: ProjectUpdate) -> Project:
        async with self._s.lock:
            updated = _apply(self._require(project_id), patch)
            self._s.projects[project_id] = updated
            return _copy(updated)

    async def delete(self, project_id: str) -> bool:
        async with self._s.lock:
            if project_id not in self._s.projects:
                return False
            self._s.delete_project(project_id)
            return True

    async def list_for_team(
        self, team_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[Project]:
        async with self._s.lock:
            projects = [p for p in self._s.projects.values() if p.team_id == team_id]
            projects.sort(key=lambda p: (p.name, p.id))
            return _page(projects, limit, offset)

    async def count_for_team(self, team_id: str) -> int:
        async with self._s.lock:
            return sum(1 for p in self._s.projects.values() if p.team_id == team_id)

    async def count(self) -> int:
        async with self._s.lock:
            return len(self._s.projects)

    async def find_by_source(self, source_type: str, key: str, value: str) -> list[Project]:
        async with self._s.lock:
            found = [
                p
                for p in self._s.projects.values()
                if p.source_type == source_type
                and isinstance(p.source_config.get(key), str)
                and p.source_config[key] == value
            ]
            found.sort(key=lambda p: (p.created_at, p.id))
            return _copies(found)

    def _find_env_var(
        self, project_id: str, key: str, deployment_type: str | None
    ) -> ProjectEnvVar | None:
        for var in self._s.env_vars.values():
            if (
                var.project_id == project_id
                and var.key == key
                and var.deployment_type == deployment_type
            ):
                return var
        return None

    async def set_env_var(self, env_var: ProjectEnvVar) -> ProjectEnvVar:
        async with self._s.lock:
            self._require(env_var.project_id)
            existing = self._find_env_var(env_var.project_id, env_var.key, env_var.deployment_type)
            stored = _copy(env_var)
            if existing is not None:
                del self._s.env_vars[existing.id]
                stored.id = existing.id
                stored.created_at = existing.created_at
                stored.updated_at = utcnow()
            self._s.env_vars[stored.id] = stored
            return _copy(stored)

    async def get_env_var(
        self, project_id: str, key: str, deployment_type: str | None
    ) -> ProjectEnvVar | None:
        async with self._s.lock:
            var = self._find_env_var(project_id, key, _deployment_type(deployment_type))
            return _copy(var) if var else None

    async def list_env_vars(self, project_id: str) -> list[ProjectEnvVar]:
        async with self._s.lock:
            found = [v for v in self._s.env_vars.values() if v.project_id == project_id]
            found.sort(key=_env_var_key)
            return _copies(found)

    async def delete_env_var(self, project_id: str, key: str, deployment_type: str | None) -> bool:
        async with self._s.lock:
            var = self._find_env_var(project_id, key, _deployment_type(deployment_type))
            if var is None:
                return False
            del self._s.env_vars[var.id]
            return True

    async def create_api_token(self, token: ProjectApiToken) -> ProjectApiToken:
        async with self._s.lock:
            self._require(token.project_id)
            if token.id in self._s.project_tokens:
                raise _conflict("a token", "id")
            if any(t.token_hash == token.token_hash for t in self._s.project_tokens.values()):
                raise _conflict("a token", "token_hash")
            self._s.project_tokens[token.id] = _copy(token)
            return _copy(token)

    async def get_api_token_by_hash(self, token_hash: str) -> ProjectApiToken | None:
        async with self._s.lock:
            for token in self._s.project_tokens.values():
                if token.token_hash == token_hash:
                    return _copy(token)
            return None

    async def list_api_tokens(self, project_id: str) -> list[ProjectApiToken]:
        async with self._s.lock:
            tokens = [t for t in self._s.project_tokens.values() if t.project_id == project_id]
            tokens.sort(key=lambda t: (t.created_at, t.id), reverse=True)
            return _copies(tokens)

    async def touch_api_token(self, token_id: str, at: datetime) -> None:
        async with self._s.lock:
            token = self._s.project_tokens.get(token_id)
            if token is not None:
                token.last_used_at = at

    async def delete_api_token(self, token_id: str) -> bool:
        async with self._s.lock:
            return self._s.project_tokens.pop(token_id, None) is not None


def _deployment_type(value: str | None) -> DeploymentType | None:
    """Normalise a deployment type given as text; unknown text matches nothing."""
    if value is None:
        return None
    try:
        return DeploymentType(value)
    except ValueError:
        return value  # type: ignore[return-value]


# --- deployments -----------------------------------------------------------------


class _Deployments(_Store, DeploymentStore):
    def _require(self, deployment_id: str) -> Deployment:
        deployment = self._s.deployments.get(deployment_id)
        if deployment is None:
            raise _not_found("deployment", "deployment_id", deployment_id)
        return deployment

    async def create(self, deployment: Deployment) -> Deployment:
        async with self._s.lock:
            if deployment.project_id not in self._s.projects:
                raise _not_found("project", "project_id", deployment.project_id)
            if deployment.id in self._s.deployments:
                raise _conflict("a deployment", "id")
            if any(
                (d.project_id, d.type, d.branch)
                == (deployment.project_id, deployment.type, deployment.branch)
                for d in self._s.deployments.values()
            ):
                raise Conflict(
                    f"the project already has a {deployment.type.value} deployment of this branch",
                    details={"field": "branch"},
                )
            self._s.deployments[deployment.id] = _copy(deployment)
            return _copy(deployment)

    async def get(self, deployment_id: str) -> Deployment | None:
        async with self._s.lock:
            deployment = self._s.deployments.get(deployment_id)
            return _copy(deployment) if deployment else None

    async def get_by_branch(self, project_id: str, type: str, branch: str) -> Deployment | None:
        async with self._s.lock:
            for d in self._s.deployments.values():
                if d.project_id == project_id and d.type == type and d.branch == branch:
                    return _copy(d)
            return None

    async def update(self, deployment_id: str, patch: DeploymentUpdate) -> Deployment:
        async with self._s.lock:
            updated = _apply(self._require(deployment_id), patch)
            self._s.deployments[deployment_id] = updated
            return _copy(updated)

    async def delete(self, deployment_id: str) -> bool:
        async with self._s.lock:
            if deployment_id not in self._s.deployments:
                return False
            self._s.delete_deployment(deployment_id)
            return True

    async def list_for_project(self, project_id: str) -> list[Deployment]:
        async with self._s.lock:
            found = [d for d in self._s.deployments.values() if d.project_id == project_id]
            found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
            return _copies(found)

    async def list_by_status(self, statuses: Collection[DeploymentStatus]) -> list[Deployment]:
        wanted = set(statuses)
        async with self._s.lock:
            found = [d for d in self._s.deployments.values() if d.status in wanted]
            found.sort(key=lambda d: (d.created_at, d.id))
            return _copies(found)

    async def list_expired_previews(self, now: datetime) -> list[Deployment]:
        async with self._s.lock:
            found = [
                d
                for d in self._s.deployments.values()
                if d.type is DeploymentType.PREVIEW
                and d.expires_at is not None
                and d.expires_at <= now
            ]
            found.sort(key=lambda d: (d.expires_at or now, d.id))
            return _copies(found)


# --- builds ----------------------------------------------------------------------


class _Builds(_Store, BuildStore):
    def _require(self, build_id: str) -> Build:
        build = self._s.builds.get(build_id)
        if build is None:
            raise _not_found("build", "build_id", build_id)
        return build

    def _queued(self) -> list[Build]:
        queued = [b for b in self._s.builds.values() if b.status is BuildStatus.QUEUED]
        queued.sort(key=_queue_key)
        return queued

    async def create(self, build: Build) -> Build:
        async with self._s.lock:
            if build.deployment_id not in self._s.deployments:
                raise _not_found("deployment", "deployment_id", build.deployment_id)
            if build.id in self._s.builds:
                raise _conflict("a build", "id")
            self._s.builds[build.id] = _copy(build)
            return _copy(build)

    async def get(self, build_id: str) -> Build | None:
        async with self._s.lock:
            build = self._s.builds.get(build_id)
            return _copy(build) if build else None

    async def update(self, build_id: str, patch: BuildUpdate) -> Build:
        async with self._s.lock:
            updated = _apply(self._require(build_id), patch)
            self._s.builds[build_id] = updated
            return _copy(updated)

    async def transition(
        self, build_id: str, from_statuses: Collection[BuildStatus], patch: BuildUpdate
    ) -> Build | None:
        async with self._s.lock:
            build = self._require(build_id)
            if build.status not in set(from_statuses):
                return None
            updated = _apply(build, patch)
            self._s.builds[build_id] = updated
            return _copy(updated)

    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[Build]:
        async with self._s.lock:
            found = [b for b in self._s.builds.values() if b.deployment_id == deployment_id]
            found.sort(key=_queue_key, reverse=True)
            return _page(found, limit, offset)

    async def count_for_deployment(self, deployment_id: str) -> int:
        async with self._s.lock:
            return sum(1 for b in self._s.builds.values() if b.deployment_id == deployment_id)

    async def list_by_status(self, statuses: Collection[BuildStatus]) -> list[Build]:
        wanted = set(statuses)
        async with self._s.lock:
            found = [b for b in self._s.builds.values() if b.status in wanted]
            found.sort(key=_queue_key)
            return _copies(found)

    async def dequeue(
        self, worker_id: str, lease_until: datetime, *, max_active: int | None = None
    ) -> Build | None:
        async with self._s.lock:
            active = [b for b in self._s.builds.values() if b.status in _ACTIVE]
            if max_active is not None and len(active) >= max_active:
                return None
            busy = {b.deployment_id for b in active}
            for build in self._queued():
                if build.deployment_id in busy:
                    continue
                build.status = BuildStatus.BUILDING
                build.started_at = utcnow()
                build.worker_id = worker_id
                build.lease_expires_at = lease_until
                return _copy(build)
            return None

    async def renew_lease(self, build_id: str, worker_id: str, lease_until: datetime) -> bool:
        async with self._s.lock:
            build = self._s.builds.get(build_id)
            if build is None or build.worker_id != worker_id or build.status not in _ACTIVE:
                return False
            build.lease_expires_at = lease_until
            return True

    async def queue_position(self, build_id: str) -> int | None:
        async with self._s.lock:
            for position, build in enumerate(self._queued(), start=1):
                if build.id == build_id:
                    return position
            return None

    async def queue_length(self) -> int:
        async with self._s.lock:
            return sum(1 for b in self._s.builds.values() if b.status is BuildStatus.QUEUED)

    async def cancel_queued(
        self, deployment_id: str, *, except_build_id: str | None = None, at: datetime
    ) -> list[str]:
        async with self._s.lock:
            cancelled: list[str] = []
            for build in self._queued():
                if build.deployment_id == deployment_id and build.id != except_build_id:
                    build.status = BuildStatus.CANCELLED
                    build.completed_at = at
                    cancelled.append(build.id)
            return cancelled

    async def count_by_status(self) -> dict[BuildStatus, int]:
        async with self._s.lock:
            counts: dict[BuildStatus, int] = {}
            for build in self._s.builds.values():
                counts[build.status] = counts.get(build.status, 0) + 1
            return counts


# --- running servers and routes --------------------------------------------------


class _Servers(_Store, RunningServerStore):
    async def create(self, server: RunningServer) -> RunningServer:
        async with self._s.lock:
            if server.deployment_id not in self._s.deployments:
                raise _not_found("deployment", "deployment_id", server.deployment_id)
            if server.build_id not in self._s.builds:
                raise _not_found("build", "build_id", server.build_id)
            if server.id in self._s.servers:
                raise _conflict("a server", "id")
            self._s.servers[server.id] = _copy(server)
            return _copy(server)

    async def get(self, server_id: str) -> RunningServer | None:
        async with self._s.lock:
            server = self._s.servers.get(server_id)
            return _copy(server) if server else None

    async def update(self, server_id: str, patch: RunningServerUpdate) -> RunningServer:
        async with self._s.lock:
            server = self._s.servers.get(server_id)
            if server is None:
                raise _not_found("server", "server_id", server_id)
            updated = _apply(server, patch)
            self._s.servers[server_id] = updated
            return _copy(updated)

    async def list_active(self, deployment_id: str | None = None) -> list[RunningServer]:
        async with self._s.lock:
            found = [
                s
                for s in self._s.servers.values()
                if s.stopped_at is None and deployment_id in (None, s.deployment_id)
            ]
            found.sort(key=lambda s: (s.started_at, s.id), reverse=True)
            return _copies(found)

    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50
    ) -> list[RunningServer]:
        async with self._s.lock:
            found = [s for s in self._s.servers.values() if s.deployment_id == deployment_id]
            found.sort(key=lambda s: (s.started_at, s.id), reverse=True)
            return _copies(found[:limit])

    async def list_unhealthy(self, stale_before: datetime) -> list[RunningServer]:
        async with self._s.lock:
            found = [
                s
                for s in self._s.servers.values()
                if s.stopped_at is None
                and (
                    s.health_status is HealthStatus.UNHEALTHY
                    or s.last_health_check is None
                    or s.last_health_check < stale_before
                )
            ]
            found.sort(key=lambda s: (s.started_at, s.id))
            return _copies(found)

    async def delete_stopped(self, before: datetime) -> int:
        async with self._s.lock:
            doomed = self._s.drop_where(
                self._s.servers, lambda s: s.stopped_at is not None and s.stopped_at < before
            )
            return len(doomed)


class _Routes(_Store, RouteStore):
    async def create(self, route: Route) -> Route:
        async with self._s.lock:
            if route.deployment_id not in self._s.deployments:
                raise _not_found("deployment", "deployment_id", route.deployment_id)
            if route.id in self._s.routes:
                raise _conflict("a route", "id")
            if any(r.subdomain == route.subdomain for r in self._s.routes.values()):
                raise _conflict("a route", "subdomain")
            if any(r.deployment_id == route.deployment_id for r in self._s.routes.values()):
                raise _conflict("a route", "deployment_id")
            self._s.routes[route.id] = _copy(route)
            return _copy(route)

    async def get(self, route_id: str) -> Route | None:
        async with self._s.lock:
            route = self._s.routes.get(route_id)
            return _copy(route) if route else None

    async def get_by_deployment(self, deployment_id: str) -> Route | None:
        async with self._s.lock:
            for route in self._s.routes.values():
                if route.deployment_id == deployment_id:
                    return _copy(route)
            return None

    async def get_by_subdomain(self, subdomain: str) -> Route | None:
        async with self._s.lock:
            for route in self._s.routes.values():
                if route.subdomain == subdomain:
                    return _copy(route)
            return None

    async def update(self, route_id: str, patch: RouteUpdate) -> Route:
        async with self._s.lock:
            route = self._s.routes.get(route_id)
            if route is None:
                raise _not_found("route", "route_id", route_id)
            deployment_id = patch.changes().get("deployment_id")
            if deployment_id is not None and deployment_id != route.deployment_id:
                if deployment_id not in self._s.deployments:
                    raise _not_found("deployment", "deployment_id", deployment_id)
                if any(r.deployment_id == deployment_id for r in self._s.routes.values()):
                    raise _conflict("a route", "deployment_id")
            updated = _apply(route, patch)
            self._s.routes[route_id] = updated
            return _copy(updated)

    async def delete(self, route_id: str) -> bool:
        async with self._s.lock:
            return self._s.routes.pop(route_id, None) is not None

    async def list_for_project(self, project_id: str) -> list[Route]:
        async with self._s.lock:
            found = [r for r in self._s.routes.values() if r.project_id == project_id]
            found.sort(key=lambda r: r.subdomain)
            return _copies(found)

    async def list_all(self, statuses: Collection[RouteStatus] | None = None) -> list[Route]:
        wanted = set(statuses) if statuses is not None else None
        async with self._s.lock:
            found = [r for r in self._s.routes.values() if wanted is None or r.status in wanted]
            found.sort(key=lambda r: r.subdomain)
            return _copies(found)


# --- RBAC ------------------------------------------------------------------------


class _Rbac(_Store, RbacStore):
    def _find_role(self, team_id: str | None, name: str) -> Role | None:
        for role in self._s.roles.values():
            if role.team_id == team_id and role.name == name:
                return role
        return None

    async def create_role(self, role: Role) -> Role:
        async with self._s.lock:
            if role.team_id is not None and role.team_id not in self._s.teams:
                raise _not_found("team", "team_id", role.team_id)
            if role.id in self._s.roles:
                raise _conflict("a role", "id")
            if self._find_role(role.team_id, role.name) is not None:
                raise _conflict("a role", "name")
            self._s.roles[role.id] = _copy(role)
            return _copy(role)

    async def get_role(self, role_id: str) -> Role | None:
        async with self._s.lock:
            role = self._s.roles.get(role_id)
            return _copy(role) if role else None

    async def get_role_by_name(self, team_id: str | None, name: str) -> Role | None:
        async with self._s.lock:
            role = self._find_role(team_id, name)
            return _copy(role) if role else None

    async def update_role(self, role_id: str, patch: RoleUpdate) -> Role:
        async with self._s.lock:
            role = self._s.roles.get(role_id)
            if role is None:
                raise _not_found("role", "role_id", role_id)
            updated = _apply(role, patch)
            self._s.roles[role_id] = updated
            return _copy(updated)

    async def delete_role(self, role_id: str) -> bool:
        async with self._s.lock:
            if role_id not in self._s.roles:
                return False
            self._s.delete_role(role_id)
            return True

    async def list_roles(self, team_id: str | None = None) -> list[Role]:
        async with self._s.lock:
            found = [
                r
                for r in self._s.roles.values()
                if r.team_id is None or (team_id is not None and r.team_id == team_id)
            ]
            found.sort(key=lambda r: (not r.is_system, r.name, r.id))
            return _copies(found)

    async def ensure_system_roles(self, roles: Sequence[Role]) -> None:
        async with self._s.lock:
            for wanted in roles:
                existing = self._find_role(None, wanted.name)
                if existing is None:
                    stored = _copy(wanted)
                    stored.team_id = None
                    stored.is_system = True
                    self._s.roles[stored.id] = stored
                elif (
                    list(existing.permissions) != list(wanted.permissions)
                    or existing.description != wanted.description
                    or not existing.is_system
                ):
                    existing.permissions = list(wanted.permissions)
                    existing.description = wanted.description
                    existing.is_system = True
                    existing.updated_at = utcnow()

    async def assign(self, assignment: RoleAssignment) -> RoleAssignment:
        async with self._s.lock:
            if assignment.role_id not in self._s.roles:
                raise _not_found("role", "role_id", assignment.role_id)
            if assignment.user_id not in self._s.users:
                raise _not_found("user", "user_id", assignment.user_id)
            key = _assignment_key(assignment)
            if any(_assignment_key(a) == key for a in self._s.assignments.values()):
                raise Conflict(
                    "the user already has this role on this resource",
                    details={"field": "role_id"},
                )
            self._s.assignments[assignment.id] = _copy(assignment)
            return _copy(assignment)

    async def unassign(
        self,
        role_id: str,
        user_id: str,
        resource_type: ResourceType | None,
        resource_id: str | None,
    ) -> bool:
        key = (role_id, user_id, resource_type, resource_id)
        async with self._s.lock:
            doomed = self._s.drop_where(self._s.assignments, lambda a: _assignment_key(a) == key)
            return bool(doomed)

    async def list_assignments_for_user(self, user_id: str) -> list[RoleAssignment]:
        async with self._s.lock:
            found = [a for a in self._s.assignments.values() if a.user_id == user_id]
            found.sort(key=lambda a: (a.created_at, a.id))
            return _copies(found)

    async def list_assignments_for_resource(
        self, resource_type: ResourceType, resource_id: str
    ) -> list[RoleAssignment]:
        async with self._s.lock:
            found = [
                a
                for a in self._s.assignments.values()
                if a.resource_type == resource_type and a.resource_id == resource_id
            ]
            found.sort(key=lambda a: (a.created_at, a.id))
            return _copies(found)


def _assignment_key(a: RoleAssignment) -> tuple[str, str, ResourceType | None, str | None]:
    return (a.role_id, a.user_id, a.resource_type, a.resource_id)


# --- webhook deliveries ----------------------------------------------------------


class _Webhooks(_Store, WebhookDeliveryStore):
    async def remember(self, source: str, delivery_id: str, received_at: datetime) -> bool:
        async with self._s.lock:
            key = (source, delivery_id)
            if key in self._s.webhook_deliveries:
                return False
            self._s.webhook_deliveries[key] = received_at
            return True

    async def forget_before(self, before: datetime) -> int:
        async with self._s.lock:
            doomed = [k for k, at in self._s.webhook_deliveries.items() if at < before]
            for key in doomed:
                del self._s.webhook_deliveries[key]
            return len(doomed)


# --- custom domains --------------------------------------------------------------


def _by_hostname(domains: Iterable[Domain]) -> list[Domain]:
    return _copies(sorted(domains, key=lambda d: (d.hostname, d.id)))


class _Domains(_Store, DomainStore):
    async def create(self, domain: Domain) -> Domain:
        async with self._s.lock:
            if domain.deployment_id not in self._s.deployments:
                raise _not_found("deployment", "deployment_id", domain.deployment_id)
            if domain.id in self._s.domains:
                raise _conflict("a domain", "id")
            wanted = domain.hostname.lower()
            if any(d.hostname.lower() == wanted for d in self._s.domains.values()):
                raise _conflict("a domain", "hostname")
            self._s.domains[domain.id] = _copy(domain)
            return _copy(domain)

    async def get(self, domain_id: str) -> Domain | None:
        async with self._s.lock:
            domain = self._s.domains.get(domain_id)
            return _copy(domain) if domain else None

    async def get_by_hostname(self, hostname: str) -> Domain | None:
        wanted = hostname.lower()
        async with self._s.lock:
            for domain in self._s.domains.values():
                if domain.hostname.lower() == wanted:
                    return _copy(domain)
            return None

    async def update(self, domain_id: str, patch: DomainUpdate) -> Domain:
        async with self._s.lock:
            domain = self._s.domains.get(domain_id)
            if domain is None:
                raise _not_found("domain", "domain_id", domain_id)
            updated = _apply(domain, patch)
            self._s.domains[domain_id] = updated
            return _copy(updated)

    async def delete(self, domain_id: str) -> bool:
        async with self._s.lock:
            return self._s.domains.pop(domain_id, None) is not None

    async def list_for_deployment(self, deployment_id: str) -> list[Domain]:
        async with self._s.lock:
            return _by_hostname(
                d for d in self._s.domains.values() if d.deployment_id == deployment_id
            )

    async def list_for_project(self, project_id: str) -> list[Domain]:
        async with self._s.lock:
            return _by_hostname(d for d in self._s.domains.values() if d.project_id == project_id)

    async def list_verified(self) -> list[Domain]:
        return await self.list_by_status([DomainStatus.VERIFIED])

    async def list_by_status(self, statuses: Collection[DomainStatus]) -> list[Domain]:
        wanted = set(statuses)
        async with self._s.lock:
            return _by_hostname(d for d in self._s.domains.values() if d.status in wanted)


class InMemoryAdminStorage(AdminStorage):
    """An ``AdminStorage`` in this process's memory; nothing survives ``close``-and-restart.

    ``await storage.init()`` seeds the system roles like any adapter does.
    """

    type: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._state = _State()
        self.users = _Users(self._state)
        self.teams = _Teams(self._state)
        self.projects = _Projects(self._state)
        self.deployments = _Deployments(self._state)
        self.builds = _Builds(self._state)
        self.servers = _Servers(self._state)
        self.routes = _Routes(self._state)
        self.rbac = _Rbac(self._state)
        self.webhooks = _Webhooks(self._state)
        self.domains = _Domains(self._state)
        self.closed = False

    async def _init(self) -> None:
        self.closed = False

    async def _close(self) -> None:
        self.closed = True

    async def ping(self) -> None:
        return None

    def __repr__(self) -> str:
        counts: dict[str, Any] = {
            "teams": len(self._state.teams),
            "projects": len(self._state.projects),
            "builds": len(self._state.builds),
        }
        return f"InMemoryAdminStorage({counts})"
