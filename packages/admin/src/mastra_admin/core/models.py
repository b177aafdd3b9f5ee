"""Domain entities of MastraAdmin as pydantic v2 models.

These are what storage adapters persist and what ``MastraAdmin`` returns. Identifiers
are UUID strings; timestamps are timezone-aware UTC. JSON-shaped fields decode
defensively: a null or malformed value where a list or mapping belongs becomes empty
and is logged, never a crash.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import structlog
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

__all__ = [
    "SOURCE_SECRETS_KEY",
    "Build",
    "BuildStatus",
    "BuildTrigger",
    "Deployment",
    "DeploymentStatus",
    "DeploymentType",
    "Domain",
    "DomainStatus",
    "EnvVarOverride",
    "HealthStatus",
    "JsonList",
    "JsonMap",
    "Page",
    "Project",
    "ProjectApiToken",
    "ProjectEnvVar",
    "ProjectSettings",
    "ResourceType",
    "Role",
    "RoleAssignment",
    "Route",
    "RouteStatus",
    "RunningServer",
    "Team",
    "TeamInstallation",
    "TeamInvite",
    "TeamMember",
    "TeamRole",
    "TeamSettings",
    "User",
    "UserApiToken",
    "UtcDatetime",
    "new_id",
    "utcnow",
]

_log = structlog.get_logger("mastra_admin.core.models")


def new_id() -> str:
    """A new random identifier (UUID4 text)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _safe_list(value: Any) -> Any:
    """Decode a JSON column that should hold a list (the specification's lesson 4)."""
    if isinstance(value, list | tuple):
        return list(value)
    if value is None:
        return []
    if isinstance(value, str):
        import json

        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return decoded
    _log.warning("json.list_malformed", value_type=type(value).__name__)
    return []


def _safe_map(value: Any) -> Any:
    """Decode a JSON column that should hold an object; anything else becomes ``{}``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, BaseModel):
        return value
    if value is None:
        return {}
    if isinstance(value, str):
        import json

        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            return decoded
    _log.warning("json.map_malformed", value_type=type(value).__name__)
    return {}


JsonList = Annotated[list[Any], BeforeValidator(_safe_list)]
JsonMap = Annotated[dict[str, Any], BeforeValidator(_safe_map)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timestamp, made timezone-aware UTC whatever it was given as (naive means UTC)."""


class Entity(BaseModel):
    """Base of every stored entity: strict about unknown fields, timestamps
    (``UtcDatetime`` fields) in UTC."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True, from_attributes=True)


# --- enums -----------------------------------------------------------------------


class DeploymentType(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    PREVIEW = "preview"


class DeploymentStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    CRASH_LOOP = "crash_loop"
    """Its server crashed again and again: restarting stopped until the next deploy."""


class BuildTrigger(StrEnum):
    MANUAL = "manual"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    ROLLBACK = "rollback"


class BuildStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED}

    @property
    def is_active(self) -> bool:
        """Held by a worker right now."""
        return self in {BuildStatus.BUILDING, BuildStatus.DEPLOYING}


class HealthStatus(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    STOPPING = "stopping"
    STOPPED = "stopped"


class RouteStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNHEALTHY = "unhealthy"
    ERROR = "error"
    STOPPED = "stopped"


class TeamRole(StrEnum):
    """A member's role in a team; each maps onto a system role of the same rank."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def system_role(self) -> str:
        return f"team_{self.value}"


class ResourceType(StrEnum):
    TEAM = "team"
    PROJECT = "project"


# --- users and teams -------------------------------------------------------------


class User(Entity):
    id: str = Field(default_factory=new_id)
    external_id: str | None = None
    email: str
    name: str | None = None
    avatar_url: str | None = None
    metadata: JsonMap = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class UserApiToken(Entity):
    """A bearer token that authenticates a user against the API; only its hash is kept."""

    id: str = Field(default_factory=new_id)
    user_id: str
    name: str
    token_hash: str
    token_prefix: str
    scopes: JsonList = Field(default_factory=list)
    expires_at: UtcDatetime | None = None
    last_used_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)


class TeamSettings(BaseModel):
    """Per-team settings; unknown keys are kept so that plugins can store their own."""

    model_config = ConfigDict(extra="allow")

    max_concurrent_builds: int | None = Field(default=None, ge=1)
    preview_ttl_hours: int = Field(default=72, ge=1)


class Team(Entity):
    id: str = Field(default_factory=new_id)
    name: str
    slug: str
    settings: Annotated[TeamSettings, BeforeValidator(_safe_map)] = Field(
        default_factory=TeamSettings
    )
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class TeamMember(Entity):
    id: str = Field(default_factory=new_id)
    team_id: str
    user_id: str
    role: TeamRole = TeamRole.MEMBER
    joined_at: UtcDatetime = Field(default_factory=utcnow)


class TeamInvite(Entity):
    """An invitation by email; the token itself is sent once and only its hash is kept."""

    id: str = Field(default_factory=new_id)
    team_id: str
    email: str
    role: TeamRole = TeamRole.MEMBER
    invited_by: str
    token_hash: str
    expires_at: UtcDatetime
    accepted_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)


class TeamInstallation(Entity):
    """An external integration installed for a team (a GitHub App, say)."""

    id: str = Field(default_factory=new_id)
    team_id: str
    provider: str
    installation_id: str
    account_name: str | None = None
    account_type: str | None = None
    permissions: JsonMap = Field(default_factory=dict)
    metadata: JsonMap = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


# --- projects --------------------------------------------------------------------

SOURCE_SECRETS_KEY = "secrets"
"""The key of ``Project.source_config`` under which a source keeps what it encrypted
(a repository credential, a webhook secret); never shown by the API."""


class ProjectSettings(BaseModel):
    """How a project is built and run; every field overrides the runner's default."""

    model_config = ConfigDict(extra="allow")

    install_command: list[str] | None = None
    build_command: list[str] | None = None
    start_command: list[str] | None = None
    health_path: str = "/health"
    install_timeout_s: float | None = Field(default=None, gt=0)
    build_timeout_s: float | None = Field(default=None, gt=0)
    health_timeout_s: float | None = Field(default=None, gt=0)
    node_options: str | None = None
    memory_limit_mb: int | None = Field(default=None, gt=0)
    """Memory of each server of the project, where the runner can limit it (containers)."""
    cpu_limit: float | None = Field(default=None, gt=0)
    """CPUs of each server of the project, where the runner can limit them."""
    fork_previews_get_secrets: bool = False
    """Previews of pull requests from forks get the project's secret env vars too
    (off: they get only the env vars that are not secret, as GitHub Actions does)."""


class Project(Entity):
    id: str = Field(default_factory=new_id)
    team_id: str
    name: str
    slug: str
    source_type: str
    source_config: JsonMap = Field(default_factory=dict)
    default_branch: str = "main"
    settings: Annotated[ProjectSettings, BeforeValidator(_safe_map)] = Field(
        default_factory=ProjectSettings
    )
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def source_id(self) -> str | None:
        """The id of the project in its source (``source_config["source_id"]``)."""
        value = self.source_config.get("source_id")
        return str(value) if value is not None else None

    def without_secrets(self) -> Project:
        """This project without ``source_config["secrets"]`` (a source's encrypted
        credentials): what the API and embedding code are shown."""
        if SOURCE_SECRETS_KEY not in self.source_config:
            return self
        public = {k: v for k, v in self.source_config.items() if k != SOURCE_SECRETS_KEY}
        return self.model_copy(update={"source_config": public})


class ProjectEnvVar(Entity):
    """An environment variable of a project, encrypted at rest.

    ``deployment_type`` ``None`` applies to every deployment type; a value for a
    specific type wins over it.
    """

    id: str = Field(default_factory=new_id)
    project_id: str
    deployment_type: DeploymentType | None = None
    key: str
    encrypted_value: str
    is_secret: bool = True
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class ProjectApiToken(Entity):
    """A token scoped to one project (for CI webhooks, say); only its hash is kept."""

    id: str = Field(default_factory=new_id)
    project_id: str
    name: str
    token_hash: str
    token_prefix: str
    scopes: JsonList = Field(default_factory=list)
    last_used_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    created_by: str
    created_at: UtcDatetime = Field(default_factory=utcnow)


# --- deployments and builds ------------------------------------------------------


class EnvVarOverride(BaseModel):
    """A deployment-level override of a project env var, encrypted like the original."""

    key: str
    encrypted_value: str
    is_secret: bool = True


class Deployment(Entity):
    id: str = Field(default_factory=new_id)
    project_id: str
    type: DeploymentType
    branch: str
    slug: str
    status: DeploymentStatus = DeploymentStatus.PENDING
    current_build_id: str | None = None
    public_url: str | None = None
    internal_host: str | None = None
    internal_port: int | None = None
    env_var_overrides: list[EnvVarOverride] = Field(default_factory=list)
    auto_shutdown: bool = False
    expires_at: UtcDatetime | None = None
    secrets_withheld: bool = False
    """Its servers get only the env vars that are not secret (a preview of a pull
    request from a fork)."""
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)

    @field_validator("env_var_overrides", mode="before")
    @classmethod
    def _overrides(cls, value: Any) -> Any:
        items = _safe_list(value)
        good = [item for item in items if isinstance(item, dict | EnvVarOverride)]
        if len(good) != len(items):
            _log.warning("json.list_items_dropped", field="env_var_overrides")
        return good


class Build(Entity):
    """One attempt to build and deploy a deployment.

    A rollback is a build too: ``trigger`` is ``rollback`` and ``artifact_build_id``
    names the earlier successful build whose output is started again unbuilt.
    ``worker_id`` and ``lease_expires_at`` say which worker holds an active build
    and until when, so that a dead worker's builds can be recovered.
    """

    id: str = Field(default_factory=new_id)
    deployment_id: str
    trigger: BuildTrigger = BuildTrigger.MANUAL
    triggered_by: str
    ref: str | None = None
    """What was asked for: a branch, tag or commit id (``None``: the deployment's branch)."""
    commit_sha: str | None = None
    """The commit built: as asked, then as the source resolved it."""
    commit_message: str | None = None
    commit_author: str | None = None
    status: BuildStatus = BuildStatus.QUEUED
    artifact_build_id: str | None = None
    log_path: str | None = None
    error_message: str | None = None
    worker_id: str | None = None
    lease_expires_at: UtcDatetime | None = None
    queued_at: UtcDatetime = Field(default_factory=utcnow)
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)


class RunningServer(Entity):
    """A server process (or container) serving a deployment from one build."""

    id: str = Field(default_factory=new_id)
    deployment_id: str
    build_id: str
    process_id: int | None = None
    process_started_at: float | None = None
    container_id: str | None = None
    host: str
    port: int = Field(ge=1, le=65535)
    health_status: HealthStatus = HealthStatus.STARTING
    last_health_check: UtcDatetime | None = None
    memory_usage_mb: float | None = None
    cpu_percent: float | None = None
    metadata: JsonMap = Field(default_factory=dict)
    started_at: UtcDatetime = Field(default_factory=utcnow)
    stopped_at: UtcDatetime | None = None


class Route(Entity):
    """A public host name pointing at a running server."""

    id: str = Field(default_factory=new_id)
    deployment_id: str
    project_id: str
    subdomain: str
    target_host: str
    target_port: int = Field(ge=1, le=65535)
    public_url: str
    status: RouteStatus = RouteStatus.PENDING
    tls_enabled: bool = False
    provider_route_id: str | None = None
    metadata: JsonMap = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    last_health_check: UtcDatetime | None = None


class DomainStatus(StrEnum):
    PENDING = "pending"
    """Added; its TXT record has not been seen yet. It serves no traffic."""
    VERIFIED = "verified"
    """Its TXT record proved the team owns it; the router serves it."""
    FAILED = "failed"
    """The last check found a TXT record with another value; it serves no traffic."""


class Domain(Entity):
    """A custom host name of one deployment (``shop.example.com``), unique in the
    whole installation. It serves traffic only once ``status`` is ``verified``: the
    team proved ownership with a TXT record at ``_mastra-admin.{hostname}`` holding
    ``verification_token``."""

    id: str = Field(default_factory=new_id)
    team_id: str
    project_id: str
    deployment_id: str
    hostname: str
    verification_token: str
    status: DomainStatus = DomainStatus.PENDING
    verified_at: UtcDatetime | None = None
    last_checked_at: UtcDatetime | None = None
    last_error: str | None = None
    created_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


# --- RBAC ------------------------------------------------------------------------


class Role(Entity):
    """A named set of permissions; system roles have no team, custom roles belong to one."""

    id: str = Field(default_factory=new_id)
    team_id: str | None = None
    name: str
    description: str | None = None
    permissions: JsonList = Field(default_factory=list)
    is_system: bool = False
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class RoleAssignment(Entity):
    """A role given to a user, on one team or project, or platform-wide when unscoped."""

    id: str = Field(default_factory=new_id)
    role_id: str
    user_id: str
    resource_type: ResourceType | None = None
    resource_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)


# --- lists -----------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total so that a client can page on."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.items) < self.total
