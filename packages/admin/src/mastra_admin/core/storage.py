"""The admin storage interface: one ``AdminStorage`` made of domain stores.

Storage is persistence only: ``MastraAdmin`` builds complete entities (ids,
timestamps) and decides what is allowed; a store saves, finds and changes them,
atomically where the docstring says so. Errors are the core's: a unique violation is
``Conflict`` naming the field, a missing parent is ``NotFound``, a lost connection is
``Unavailable``. Every adapter runs ``mastra_admin.core.testing.StorageConformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mastra_admin.core.changes import ChangeTracker
from mastra_admin.core.errors import Conflict
from mastra_admin.core.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentStatus,
    Domain,
    DomainStatus,
    EnvVarOverride,
    HealthStatus,
    Project,
    ProjectApiToken,
    ProjectEnvVar,
    ProjectSettings,
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
    TeamSettings,
    User,
    UserApiToken,
)

__all__ = [
    "AdminStorage",
    "BuildStore",
    "BuildUpdate",
    "DeploymentStore",
    "DeploymentUpdate",
    "DomainStore",
    "DomainUpdate",
    "Patch",
    "ProjectStore",
    "ProjectUpdate",
    "RbacStore",
    "RoleUpdate",
    "RouteStore",
    "RouteUpdate",
    "RunningServerStore",
    "RunningServerUpdate",
    "TeamStore",
    "TeamUpdate",
    "UserStore",
    "UserUpdate",
    "WebhookDeliveryStore",
    "last_owner_conflict",
]


def last_owner_conflict(field: str, user_id: str) -> Conflict:
    """The error for a change that would leave a team without an owner (``field``:
    ``role`` for a demotion, ``user_id`` for a removal)."""
    what = "be demoted" if field == "role" else "leave"
    return Conflict(
        f"the team's last owner cannot {what}: make someone else owner first",
        details={"field": field, "user_id": user_id},
    )


class Patch(BaseModel):
    """A partial update: only the fields that were set are changed.

    ``changes()`` returns exactly those fields (``None`` included when set explicitly,
    which clears a nullable column). Stores also bump ``updated_at`` where the entity
    has one.
    """

    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class UserUpdate(Patch):
    email: str | None = None
    name: str | None = None
    avatar_url: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] | None = None


class TeamUpdate(Patch):
    name: str | None = None
    slug: str | None = None
    settings: TeamSettings | None = None


class ProjectUpdate(Patch):
    name: str | None = None
    default_branch: str | None = None
    source_config: dict[str, Any] | None = None
    settings: ProjectSettings | None = None


class DeploymentUpdate(Patch):
    status: DeploymentStatus | None = None
    current_build_id: str | None = None
    public_url: str | None = None
    internal_host: str | None = None
    internal_port: int | None = None
    env_var_overrides: list[EnvVarOverride] | None = None
    auto_shutdown: bool | None = None
    expires_at: datetime | None = None
    secrets_withheld: bool | None = None


class BuildUpdate(Patch):
    status: BuildStatus | None = None
    log_path: str | None = None
    error_message: str | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    commit_sha: str | None = None
    commit_message: str | None = None
    commit_author: str | None = None


class RunningServerUpdate(Patch):
    health_status: HealthStatus | None = None
    last_health_check: datetime | None = None
    memory_usage_mb: float | None = None
    cpu_percent: float | None = None
    process_id: int | None = None
    process_started_at: float | None = None
    stopped_at: datetime | None = None
    metadata: dict[str, Any] | None = None


class RouteUpdate(Patch):
    deployment_id: str | None = None
    target_host: str | None = None
    target_port: int | None = None
    public_url: str | None = None
    status: RouteStatus | None = None
    tls_enabled: bool | None = None
    provider_route_id: str | None = None
    metadata: dict[str, Any] | None = None
    last_health_check: datetime | None = None


class DomainUpdate(Patch):
    status: DomainStatus | None = None
    verified_at: datetime | None = None
    last_checked_at: datetime | None = None
    last_error: str | None = None


class RoleUpdate(Patch):
    description: str | None = None
    permissions: list[str] | None = None


# --- domain stores ---------------------------------------------------------------


class UserStore(ABC):
    """Users and their API tokens."""

    @abstractmethod
    async def create(self, user: User) -> User:
        """Insert; ``Conflict`` (field ``email`` or ``external_id``) when taken."""

    @abstractmethod
    async def get(self, user_id: str) -> User | None: ...

    @abstractmethod
    async def get_by_email(self, email: str) -> User | None:
        """Case-insensitive lookup."""

    @abstractmethod
    async def get_by_external_id(self, external_id: str) -> User | None: ...

    @abstractmethod
    async def update(self, user_id: str, patch: UserUpdate) -> User:
        """``NotFound`` when absent, ``Conflict`` when the new email is taken."""

    @abstractmethod
    async def delete(self, user_id: str) -> bool: ...

    @abstractmethod
    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Oldest first."""

    @abstractmethod
    async def count(self) -> int: ...

    @abstractmethod
    async def create_token(self, token: UserApiToken) -> UserApiToken:
        """``NotFound`` when the user is absent; ``Conflict`` when the hash is taken."""

    @abstractmethod
    async def get_token_by_hash(self, token_hash: str) -> UserApiToken | None:
        """Revoked tokens are returned too; the caller checks ``revoked_at``."""

    @abstractmethod
    async def list_tokens(self, user_id: str) -> list[UserApiToken]:
        """Newest first."""

    @abstractmethod
    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        """Set ``revoked_at``; ``False`` when no such token."""

    @abstractmethod
    async def touch_token(self, token_id: str, at: datetime) -> None:
        """Record a use (``last_used_at``)."""


class TeamStore(ABC):
    """Teams with their members, invites and installations."""

    @abstractmethod
    async def create(self, team: Team) -> Team:
        """``Conflict`` (field ``slug``) when the slug is taken."""

    @abstractmethod
    async def get(self, team_id: str) -> Team | None: ...

    @abstractmethod
    async def get_by_slug(self, slug: str) -> Team | None: ...

    @abstractmethod
    async def update(self, team_id: str, patch: TeamUpdate) -> Team: ...

    @abstractmethod
    async def delete(self, team_id: str) -> bool:
        """Deletes members, invites, installations, projects and below with it."""

    @abstractmethod
    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[Team]:
        """Ordered by name."""

    @abstractmethod
    async def list_for_user(self, user_id: str) -> list[Team]:
        """Teams the user is a member of, ordered by name."""

    @abstractmethod
    async def count(self) -> int: ...

    @abstractmethod
    async def add_member(self, member: TeamMember) -> TeamMember:
        """``NotFound`` for a missing team or user; ``Conflict`` when already a member."""

    @abstractmethod
    async def get_member(self, team_id: str, user_id: str) -> TeamMember | None: ...

    @abstractmethod
    async def list_members(self, team_id: str) -> list[TeamMember]:
        """Ordered by ``joined_at``."""

    @abstractmethod
    async def count_members(self, team_id: str) -> int: ...

    @abstractmethod
    async def update_member_role(
        self, team_id: str, user_id: str, role: TeamRole, *, keep_owner: bool = False
    ) -> TeamMember:
        """``NotFound`` when not a member. With ``keep_owner``, ``Conflict`` (field
        ``role``) instead when this would leave the team without an owner, decided
        atomically: two owners demoting each other at once cannot both succeed."""

    @abstractmethod
    async def remove_member(self, team_id: str, user_id: str, *, keep_owner: bool = False) -> bool:
        """Whether a member was removed. With ``keep_owner``, ``Conflict`` (field
        ``user_id``) instead when they are the team's last owner (atomically)."""

    @abstractmethod
    async def create_invite(self, invite: TeamInvite) -> TeamInvite: ...

    @abstractmethod
    async def get_invite(self, invite_id: str) -> TeamInvite | None: ...

    @abstractmethod
    async def get_invite_by_token_hash(self, token_hash: str) -> TeamInvite | None: ...

    @abstractmethod
    async def list_pending_invites(self, team_id: str, now: datetime) -> list[TeamInvite]:
        """Not accepted and not expired at ``now``, newest first."""

    @abstractmethod
    async def mark_invite_accepted(self, invite_id: str, at: datetime) -> bool:
        """Atomically: ``True`` only for the one caller that accepted a pending invite."""

    @abstractmethod
    async def delete_invite(self, invite_id: str) -> bool: ...

    @abstractmethod
    async def create_installation(self, installation: TeamInstallation) -> TeamInstallation:
        """``Conflict`` on the same (team, provider, installation_id)."""

    @abstractmethod
    async def get_installation(
        self, team_id: str, provider: str, installation_id: str
    ) -> TeamInstallation | None: ...

    @abstractmethod
    async def list_installations(self, team_id: str) -> list[TeamInstallation]: ...

    @abstractmethod
    async def delete_installation(self, installation_id: str) -> bool: ...


class ProjectStore(ABC):
    """Projects with their env vars and API tokens."""

    @abstractmethod
    async def create(self, project: Project) -> Project:
        """``NotFound`` for a missing team; ``Conflict`` (field ``slug``) within a team."""

    @abstractmethod
    async def get(self, project_id: str) -> Project | None: ...

    @abstractmethod
    async def get_by_slug(self, team_id: str, slug: str) -> Project | None: ...

    @abstractmethod
    async def update(self, project_id: str, patch: ProjectUpdate) -> Project: ...

    @abstractmethod
    async def delete(self, project_id: str) -> bool:
        """Deletes env vars, tokens, deployments, builds, servers and routes with it."""

    @abstractmethod
    async def list_for_team(
        self, team_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[Project]:
        """Ordered by name."""

    @abstractmethod
    async def count_for_team(self, team_id: str) -> int: ...

    @abstractmethod
    async def count(self) -> int: ...

    @abstractmethod
    async def find_by_source(self, source_type: str, key: str, value: str) -> list[Project]:
        """Projects of ``source_type`` whose ``source_config[key]`` is the string
        ``value`` (the projects of one repository, say), oldest first, across teams."""

    @abstractmethod
    async def set_env_var(self, env_var: ProjectEnvVar) -> ProjectEnvVar:
        """Insert or replace the value for (project, deployment_type, key), atomically.

        ``deployment_type`` ``None`` is a key of its own (it applies to every type);
        replacing keeps the original ``id`` and ``created_at``.
        """

    @abstractmethod
    async def get_env_var(
        self, project_id: str, key: str, deployment_type: str | None
    ) -> ProjectEnvVar | None: ...

    @abstractmethod
    async def list_env_vars(self, project_id: str) -> list[ProjectEnvVar]:
        """Every type, ordered by key then deployment type (``None`` first)."""

    @abstractmethod
    async def delete_env_var(
        self, project_id: str, key: str, deployment_type: str | None
    ) -> bool: ...

    @abstractmethod
    async def create_api_token(self, token: ProjectApiToken) -> ProjectApiToken: ...

    @abstractmethod
    async def get_api_token_by_hash(self, token_hash: str) -> ProjectApiToken | None: ...

    @abstractmethod
    async def list_api_tokens(self, project_id: str) -> list[ProjectApiToken]:
        """Newest first."""

    @abstractmethod
    async def touch_api_token(self, token_id: str, at: datetime) -> None: ...

    @abstractmethod
    async def delete_api_token(self, token_id: str) -> bool: ...


class DeploymentStore(ABC):
    @abstractmethod
    async def create(self, deployment: Deployment) -> Deployment:
        """``NotFound`` for a missing project; ``Conflict`` (field ``branch``) on the same
        (project, type, branch)."""

    @abstractmethod
    async def get(self, deployment_id: str) -> Deployment | None: ...

    @abstractmethod
    async def get_by_branch(self, project_id: str, type: str, branch: str) -> Deployment | None: ...

    @abstractmethod
    async def update(self, deployment_id: str, patch: DeploymentUpdate) -> Deployment: ...

    @abstractmethod
    async def delete(self, deployment_id: str) -> bool: ...

    @abstractmethod
    async def list_for_project(self, project_id: str) -> list[Deployment]:
        """Newest first."""

    @abstractmethod
    async def list_by_status(self, statuses: Collection[DeploymentStatus]) -> list[Deployment]: ...

    @abstractmethod
    async def list_expired_previews(self, now: datetime) -> list[Deployment]:
        """Preview deployments whose ``expires_at`` is at or before ``now``."""


class BuildStore(ABC):
    """Build history and the build queue.

    The queue is the set of builds in status ``queued``, ordered by ``queued_at``
    then ``id``. ``dequeue`` must be safe under any number of concurrent callers in
    any number of processes: a build is handed out exactly once.
    """

    @abstractmethod
    async def create(self, build: Build) -> Build:
        """Insert (a queued build is enqueued). ``NotFound`` for a missing deployment."""

    @abstractmethod
    async def get(self, build_id: str) -> Build | None: ...

    @abstractmethod
    async def update(self, build_id: str, patch: BuildUpdate) -> Build: ...

    @abstractmethod
    async def transition(
        self, build_id: str, from_statuses: Collection[BuildStatus], patch: BuildUpdate
    ) -> Build | None:
        """Compare and set: apply ``patch`` only if the build's status is one of
        ``from_statuses``; return the updated build, or ``None`` when it was not
        (no change made). ``NotFound`` when the build does not exist."""

    @abstractmethod
    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50, offset: int = 0
    ) -> list[Build]:
        """Newest first (``queued_at`` descending)."""

    @abstractmethod
    async def count_for_deployment(self, deployment_id: str) -> int: ...

    @abstractmethod
    async def list_by_status(self, statuses: Collection[BuildStatus]) -> list[Build]:
        """Oldest first."""

    @abstractmethod
    async def dequeue(
        self, worker_id: str, lease_until: datetime, *, max_active: int | None = None
    ) -> Build | None:
        """Take the oldest queued build and mark it ``building`` for ``worker_id``.

        Atomically sets ``status=building``, ``started_at`` (now), ``worker_id`` and
        ``lease_expires_at=lease_until``. Skips builds whose deployment already has
        a build in ``building`` or ``deploying``. Returns ``None`` when nothing can be
        taken, including when ``max_active`` builds are already active in total.
        """

    @abstractmethod
    async def renew_lease(self, build_id: str, worker_id: str, lease_until: datetime) -> bool:
        """Extend the lease if ``worker_id`` still holds the build and it is active."""

    @abstractmethod
    async def queue_position(self, build_id: str) -> int | None:
        """1-based position in the queue, or ``None`` when not queued."""

    @abstractmethod
    async def queue_length(self) -> int: ...

    @abstractmethod
    async def cancel_queued(
        self, deployment_id: str, *, except_build_id: str | None = None, at: datetime
    ) -> list[str]:
        """Cancel every queued build of the deployment (but one); return their ids."""

    @abstractmethod
    async def count_by_status(self) -> dict[BuildStatus, int]:
        """For metrics: how many builds there are in each status (absent = 0)."""


class RunningServerStore(ABC):
    @abstractmethod
    async def create(self, server: RunningServer) -> RunningServer:
        """``NotFound`` for a missing deployment or build."""

    @abstractmethod
    async def get(self, server_id: str) -> RunningServer | None: ...

    @abstractmethod
    async def update(self, server_id: str, patch: RunningServerUpdate) -> RunningServer: ...

    @abstractmethod
    async def list_active(self, deployment_id: str | None = None) -> list[RunningServer]:
        """Servers not stopped (``stopped_at`` unset), newest first."""

    @abstractmethod
    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50
    ) -> list[RunningServer]:
        """Every server of the deployment, stopped ones too, newest first."""

    @abstractmethod
    async def list_unhealthy(self, stale_before: datetime) -> list[RunningServer]:
        """Active servers that are unhealthy or not checked since ``stale_before``."""

    @abstractmethod
    async def delete_stopped(self, before: datetime) -> int:
        """Remove servers stopped before ``before``; return how many."""


class RouteStore(ABC):
    @abstractmethod
    async def create(self, route: Route) -> Route:
        """``Conflict`` (field ``subdomain``) when the subdomain is taken."""

    @abstractmethod
    async def get(self, route_id: str) -> Route | None: ...

    @abstractmethod
    async def get_by_deployment(self, deployment_id: str) -> Route | None: ...

    @abstractmethod
    async def get_by_subdomain(self, subdomain: str) -> Route | None: ...

    @abstractmethod
    async def update(self, route_id: str, patch: RouteUpdate) -> Route: ...

    @abstractmethod
    async def delete(self, route_id: str) -> bool: ...

    @abstractmethod
    async def list_for_project(self, project_id: str) -> list[Route]: ...

    @abstractmethod
    async def list_all(self, statuses: Collection[RouteStatus] | None = None) -> list[Route]:
        """Every route (optionally of some statuses), ordered by subdomain."""


class RbacStore(ABC):
    @abstractmethod
    async def create_role(self, role: Role) -> Role:
        """``Conflict`` (field ``name``) on the same (team, name)."""

    @abstractmethod
    async def get_role(self, role_id: str) -> Role | None: ...

    @abstractmethod
    async def get_role_by_name(self, team_id: str | None, name: str) -> Role | None: ...

    @abstractmethod
    async def update_role(self, role_id: str, patch: RoleUpdate) -> Role: ...

    @abstractmethod
    async def delete_role(self, role_id: str) -> bool: ...

    @abstractmethod
    async def list_roles(self, team_id: str | None = None) -> list[Role]:
        """System roles plus, when ``team_id`` is given, that team's custom roles;
        system roles first, then by name."""

    @abstractmethod
    async def ensure_system_roles(self, roles: Sequence[Role]) -> None:
        """Create the missing system roles and bring existing ones' permissions up to
        date; safe when several processes run it at once."""

    @abstractmethod
    async def assign(self, assignment: RoleAssignment) -> RoleAssignment:
        """``NotFound`` for a missing role or user; ``Conflict`` when already assigned."""

    @abstractmethod
    async def unassign(
        self,
        role_id: str,
        user_id: str,
        resource_type: ResourceType | None,
        resource_id: str | None,
    ) -> bool: ...

    @abstractmethod
    async def list_assignments_for_user(self, user_id: str) -> list[RoleAssignment]: ...

    @abstractmethod
    async def list_assignments_for_resource(
        self, resource_type: ResourceType, resource_id: str
    ) -> list[RoleAssignment]: ...


class WebhookDeliveryStore(ABC):
    """The delivery ids of webhooks already acted on, so that a replay is refused."""

    @abstractmethod
    async def remember(self, source: str, delivery_id: str, received_at: datetime) -> bool:
        """Record the delivery; ``True`` when it is new, ``False`` when ``source``
        already had a delivery with this id (atomically: of two racing calls one wins)."""

    @abstractmethod
    async def forget_before(self, before: datetime) -> int:
        """Drop deliveries received before ``before``; how many were dropped."""


class DomainStore(ABC):
    """Custom domains; a host name belongs to one deployment in the installation
    (compared without regard to case), and goes when its deployment is deleted."""

    @abstractmethod
    async def create(self, domain: Domain) -> Domain:
        """``Conflict`` (field ``hostname``) when the host name is taken."""

    @abstractmethod
    async def get(self, domain_id: str) -> Domain | None: ...

    @abstractmethod
    async def get_by_hostname(self, hostname: str) -> Domain | None: ...

    @abstractmethod
    async def update(self, domain_id: str, patch: DomainUpdate) -> Domain:
        """``NotFound`` when there is no such domain."""

    @abstractmethod
    async def delete(self, domain_id: str) -> bool: ...

    @abstractmethod
    async def list_for_deployment(self, deployment_id: str) -> list[Domain]:
        """The deployment's domains, ordered by host name."""

    @abstractmethod
    async def list_for_project(self, project_id: str) -> list[Domain]:
        """The project's domains, ordered by host name."""

    @abstractmethod
    async def list_verified(self) -> list[Domain]:
        """Every verified domain of the installation (what the router serves), ordered
        by host name."""

    @abstractmethod
    async def list_by_status(self, statuses: Collection[DomainStatus]) -> list[Domain]:
        """The installation's domains in these statuses (the pending ones, for their
        periodic check), ordered by host name."""


class AdminStorage(ABC):
    """The whole admin storage. Adapters set the domain stores in ``__init__`` and
    implement ``_init``/``_close``; ``init`` also creates the system roles."""

    type: ClassVar[str]

    changes: ChangeTracker | None = None
    """Set by storages that announce every committed change to every process; caches
    above the storage (the API's response cache) use it. ``None``: nothing caches."""

    users: UserStore
    teams: TeamStore
    projects: ProjectStore
    deployments: DeploymentStore
    builds: BuildStore
    servers: RunningServerStore
    routes: RouteStore
    rbac: RbacStore
    webhooks: WebhookDeliveryStore
    domains: DomainStore

    async def init(self) -> None:
        """Create or migrate the schema and seed system roles. Idempotent, and safe
        when several processes call it at once."""
        from mastra_admin.core.rbac import system_roles

        await self._init()
        await self.rbac.ensure_system_roles(system_roles())

    async def close(self) -> None:
        await self._close()

    @abstractmethod
    async def _init(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Return when the storage answers; ``Unavailable`` when it does not."""
