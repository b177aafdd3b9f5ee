"""Input models: what callers pass to ``MastraAdmin``, validated before any work is done.

Slugs are lowercase letters, digits and ``-`` (1-63 characters, DNS-label safe) and
are derived from the name when absent. Env var keys match ``^[A-Za-z_][A-Za-z0-9_]*$``.
Branch names follow git's rules for ref names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    WithJsonSchema,
    model_validator,
)

from mastra_admin.core.models import (
    BuildTrigger,
    DeploymentType,
    ProjectSettings,
    ResourceType,
    TeamRole,
    TeamSettings,
)

__all__ = [
    "AcceptInvite",
    "AssignRole",
    "BranchName",
    "CreateApiToken",
    "CreateDeployment",
    "CreateInstallation",
    "CreateProject",
    "CreateRole",
    "CreateTeam",
    "CreateUser",
    "DeployRequest",
    "EnvVarKey",
    "EnvVarValue",
    "InviteMember",
    "Port",
    "ProjectSettingsInput",
    "RollbackRequest",
    "SetEnvVar",
    "Slug",
    "TeamSettingsInput",
    "UpdateDeployment",
    "UpdateMember",
    "UpdateProject",
    "UpdateRole",
    "UpdateTeam",
    "slugify",
]

_S = TypeVar("_S", bound=BaseModel)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PERMISSION_RE = re.compile(r"^(\*|[a-z_]+(:[a-z_*]+)*)$")
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def slugify(text: str, *, max_length: int = 63) -> str:
    """Turn a name into a slug: ``"Search Team ✨"`` becomes ``"search-team"``."""
    normalised = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", normalised.lower()).strip("-")
    slug = slug[:max_length].strip("-")
    return slug


def _check_slug(value: str) -> str:
    if not SLUG_RE.fullmatch(value):
        raise ValueError(
            "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"
        )
    return value


def _check_env_key(value: str) -> str:
    if not ENV_KEY_RE.fullmatch(value):
        raise ValueError("must match ^[A-Za-z_][A-Za-z0-9_]*$")
    return value


def _check_branch(value: str) -> str:
    """Git's ref-name rules (``git check-ref-format --branch``), enough to be safe."""
    problems = (
        not value
        or len(value) > 255
        or _BRANCH_FORBIDDEN.search(value) is not None
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or value == "@"
        or any(part.startswith(".") for part in value.split("/"))
    )
    if problems:
        raise ValueError("is not a valid git branch name")
    return value


def _check_permission(value: str) -> str:
    if not PERMISSION_RE.fullmatch(value):
        raise ValueError("must look like 'resource:action', 'resource:*' or '*'")
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
EnvVarKey = Annotated[str, Field(max_length=255), AfterValidator(_check_env_key)]
BranchName = Annotated[str, AfterValidator(_check_branch)]
Permission = Annotated[str, AfterValidator(_check_permission)]
Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
EnvVarValue = Annotated[str, Field(max_length=65536, pattern=r"^[^\x00]*$")]
"""An env var's value: no NUL (a process environment cannot hold one; it would be cut
there at build time)."""
CommandArg = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]
HealthPath = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^/[^\x00-\x20\x7f]*$")]
"""A request path: no spaces or control characters (CR/LF would split the health
check's request)."""


class ProjectSettingsInput(ProjectSettings):
    """``ProjectSettings`` as written: unknown keys are refused and every field is
    checked (stored settings read leniently, whatever an older version wrote)."""

    model_config = ConfigDict(extra="forbid")

    install_command: list[CommandArg] | None = Field(default=None, min_length=1, max_length=64)
    build_command: list[CommandArg] | None = Field(default=None, min_length=1, max_length=64)
    start_command: list[CommandArg] | None = Field(default=None, min_length=1, max_length=64)
    health_path: HealthPath = "/health"
    install_timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    build_timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    health_timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    node_options: str | None = Field(default=None, max_length=4096, pattern=r"^[^\x00]*$")


class TeamSettingsInput(TeamSettings):
    """``TeamSettings`` as written: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_builds: int | None = Field(default=None, ge=1, le=1000)
    preview_ttl_hours: int = Field(default=72, ge=1, le=24 * 365)


def _checked_as(strict: type[BaseModel], stored: type[_S]) -> Callable[[Any], _S]:
    """Validate against the strict model (an instance as the dict it holds), keep the
    stored model: what a service saves compares equal to what it reads back."""

    def check(value: Any) -> _S:
        plain = value.model_dump() if isinstance(value, BaseModel) else value
        return stored.model_validate(strict.model_validate(plain).model_dump())

    return check


ProjectSettingsField = Annotated[
    ProjectSettings,
    BeforeValidator(_checked_as(ProjectSettingsInput, ProjectSettings)),
    WithJsonSchema(ProjectSettingsInput.model_json_schema()),
]
TeamSettingsField = Annotated[
    TeamSettings,
    BeforeValidator(_checked_as(TeamSettingsInput, TeamSettings)),
    WithJsonSchema(TeamSettingsInput.model_json_schema()),
]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Named(Input):
    """An input with a name and a slug derived from it when absent."""

    name: Name
    slug: Slug | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_slug(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("slug") and isinstance(data.get("name"), str):
            derived = slugify(data["name"])
            if not derived:
                raise ValueError("name has no letters or digits to make a slug from; give a slug")
            data = {**data, "slug": derived}
        return data

    @property
    def resolved_slug(self) -> str:
        assert self.slug is not None  # set by the validator
        return self.slug


class CreateUser(Input):
    email: EmailStr
    name: Name | None = None
    external_id: str | None = Field(default=None, max_length=255)
    avatar_url: HttpUrl | None = None


class CreateTeam(_Named):
    settings: TeamSettingsField = Field(default_factory=TeamSettings)


class UpdateTeam(Input):
    name: Name | None = None
    settings: TeamSettingsField | None = None


class InviteMember(Input):
    email: EmailStr
    role: TeamRole = TeamRole.MEMBER


class AcceptInvite(Input):
    token: str = Field(min_length=16, max_length=255)


class UpdateMember(Input):
    role: TeamRole


class CreateProject(_Named):
    source_type: str = Field(default="local", min_length=1, max_length=50)
    source_id: str = Field(min_length=1, max_length=1024)
    default_branch: BranchName = "main"
    settings: ProjectSettingsField = Field(default_factory=ProjectSettings)


class UpdateProject(Input):
    name: Name | None = None
    default_branch: BranchName | None = None
    settings: ProjectSettingsField | None = None


class SetEnvVar(Input):
    key: EnvVarKey
    value: EnvVarValue
    is_secret: bool = True
    deployment_type: DeploymentType | None = None


class CreateApiToken(Input):
    name: Name
    scopes: list[Permission] = Field(default_factory=list)
    expires_at: datetime | None = None


class CreateDeployment(Input):
    type: DeploymentType
    branch: BranchName | None = None
    env_var_overrides: dict[EnvVarKey, EnvVarValue] = Field(default_factory=dict)
    auto_shutdown: bool = False
    expires_at: datetime | None = None
    ttl_hours: int | None = Field(default=None, ge=1, le=24 * 365)

    @model_validator(mode="after")
    def _expiry_only_for_previews(self) -> Self:
        if self.type is not DeploymentType.PREVIEW and (self.expires_at or self.ttl_hours):
            raise ValueError("only preview deployments expire")
        return self


class UpdateDeployment(Input):
    env_var_overrides: dict[EnvVarKey, EnvVarValue] | None = None
    auto_shutdown: bool | None = None
    expires_at: datetime | None = None


class DeployRequest(Input):
    trigger: BuildTrigger = BuildTrigger.MANUAL
    commit_sha: str | None = Field(default=None, max_length=255)
    commit_message: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _not_rollback(self) -> Self:
        if self.trigger is BuildTrigger.ROLLBACK:
            raise ValueError("use rollback to roll back")
        return self


class RollbackRequest(Input):
    build_id: str = Field(min_length=1, max_length=64)


class CreateRole(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str | None = Field(default=None, max_length=1000)
    permissions: list[Permission] = Field(min_length=1)


class UpdateRole(Input):
    description: str | None = Field(default=None, max_length=1000)
    permissions: list[Permission] | None = Field(default=None, min_length=1)


class AssignRole(Input):
    role_id: str
    user_id: str
    resource_type: ResourceType
    resource_id: str


class CreateInstallation(Input):
    """An external integration installed for a team (a GitHub App installation, say)."""

    provider: str = Field(min_length=1, max_length=50)
    installation_id: str = Field(min_length=1, max_length=255)
    account_name: str | None = Field(default=None, max_length=255)
    account_type: str | None = Field(default=None, max_length=50)
    permissions: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
