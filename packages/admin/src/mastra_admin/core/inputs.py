"""Input models: what callers pass to ``MastraAdmin``, validated before any work is done.

Slugs are lowercase letters, digits and ``-`` (1-63 characters, DNS-label safe) and
are derived from the name when absent. Env var keys match ``^[A-Za-z_][A-Za-z0-9_]*$``.
Branch names follow git's rules for ref names.

Every rule is in the JSON schema too (the API's OpenAPI document is generated from
these models): as a ``pattern`` pydantic enforces where its regex engine can, and
otherwise (git's branch rules need lookaheads) as a schema-only ``pattern`` matching
exactly the strings the validator accepts. Identifiers (slugs, env keys, branches,
permissions) are checked as sent, never stripped of whitespace, so that the pattern
is the whole rule. What no schema can say (an expiry in the future, a rule about the
stored state) is in the field's description.
"""

from __future__ import annotations

import functools
import json
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
    GetJsonSchemaHandler,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from mastra_admin.core.hostnames import HOSTNAME_MAX_LENGTH, HOSTNAME_PATTERN
from mastra_admin.core.models import (
    BuildTrigger,
    DeploymentType,
    ProjectSettings,
    ResourceType,
    TeamRole,
    TeamSettings,
)
from mastra_admin.core.rbac import PERMISSIONS

__all__ = [
    "AcceptInvite",
    "AddDomain",
    "AssignRole",
    "BranchName",
    "CreateApiToken",
    "CreateDeployment",
    "CreateInstallation",
    "CreateProject",
    "CreateRole",
    "CreateTeam",
    "CreateUser",
    "DateTime",
    "DeployRequest",
    "EnvVarKey",
    "EnvVarValue",
    "InviteMember",
    "JsonValue",
    "Permission",
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

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PERMISSION_PATTERN = r"^(?:\*|[a-z_]+(?::[a-z_*]+)*)$"
SLUG_RE = re.compile(SLUG_PATTERN)
ENV_KEY_RE = re.compile(ENV_KEY_PATTERN)
PERMISSION_RE = re.compile(PERMISSION_PATTERN)
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

BRANCH_PATTERN = (
    r"^(?!@$)"  # not "@" alone
    r"(?![\s\S]*(?:\.\.|//|@\{|/\.))"  # no "..", "//" or "@{"; no part starts with "."
    r"(?![\s\S]*(?:[/.]|\.lock)$)"  # does not end with "/", "." or ".lock"
    r"[^\x00-\x20\x7f~^:?*\[\\/.-]"  # does not start with "/", "." or "-"
    r"[^\x00-\x20\x7f~^:?*\[\\]*$"  # no space, control character, "~^:?*[" or "\"
)
"""Git's branch rules (``_check_branch``) as a regex both ECMA-262 and Python read alike,
for the JSON schema: a string matches exactly when the validator accepts it
(``maxLength`` holds the length). Pydantic's Rust engine has no lookaheads, so the
validator enforces them."""

_WHITESPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode's ``White_Space``: what ``str_strip_whitespace`` strips (pydantic-core trims
with Rust's ``str::trim``). Spelt out: ``\\s`` means something else in each engine."""

NO_NUL_PATTERN = r"^[^\x00]*$"
"""No NUL: PostgreSQL stores none in text or JSON, and a process environment holds none."""

TEXT_PATTERN = rf"^[^\x00]*[^\x00{_WHITESPACE}][^\x00]*$"
"""Free text as stored: no NUL, and more than whitespace (which is stripped, leaving
nothing)."""

_FUTURE = "Must be in the future when the request arrives"

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""A date-time as JSON Schema's ``date-time`` format has it (RFC 3339, with its offset).
Pydantic also reads numbers (``"0.5"`` as a Unix time) and dates without an offset,
which the format does not allow."""
RFC3339_RE = re.compile(RFC3339_PATTERN)
_DATETIME = TypeAdapter(datetime)


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not RFC3339_RE.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset: 2030-01-31T12:00:00Z")
    return _DATETIME.validate_python(value)  # strict validation reads no text after this


DateTime = Annotated[datetime, BeforeValidator(_rfc3339)]
"""A date-time from a request: RFC 3339 text (or a ``datetime``, from Python)."""


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
"""Domains no mail goes to (RFC 6761 and kin), which ``email-validator`` refuses."""

EMAIL_DOMAIN_PATTERN = (
    r"^(?![\s\S]*[@.](?:" + "|".join(_any_case(d) for d in SPECIAL_USE_DOMAINS) + r")$)"
)
"""An address not at a special-use domain: the one rule of ``EmailStr`` beyond the
``email`` format."""


def custom_permissions() -> list[str]:
    """Every permission a custom role or a scoped token may hold: ``*``, a permission
    of the catalogue, or a ``resource:*`` (``resource:sub:*``) wildcard covering some
    (exactly what ``rbac.check_custom_permissions`` accepts)."""
    wildcards: set[str] = set()
    for permission in PERMISSIONS:
        parts = permission.split(":")
        wildcards.update(":".join(parts[:end]) + ":*" for end in range(1, len(parts)))
    return ["*", *sorted(wildcards), *PERMISSIONS]


def slugify(text: str, *, max_length: int = 63) -> str:
    """Turn a name into a slug: ``"Search Team ✨"`` becomes ``"search-team"``."""
    normalised = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", normalised.lower()).strip("-")
    slug = slug[:max_length].strip("-")
    return slug


_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


@functools.cache
def slug_source_pattern() -> str:
    """A regex matching the names ``slugify`` makes a slug of: those with a character
    whose compatibility decomposition (NFKD) holds an ASCII letter or digit (no
    character past U+1FFFF has one). The characters are written as themselves, which
    every regex engine reads alike (none of them is special in a class)."""
    found = [
        code
        for code in range(0x20000)
        if (chr(code).isascii() and chr(code).isalnum())
        or (
            unicodedata.decomposition(chr(code))
            and _ASCII_ALNUM.search(unicodedata.normalize("NFKD", chr(code)))
        )
    ]
    ranges: list[list[int]] = []
    for code in found:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    spelt = "".join(
        chr(first) if first == last else f"{chr(first)}-{chr(last)}" for first, last in ranges
    )
    return f"[{spelt}]"


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


class _KeysMatch:
    """In the JSON schema, an object whose keys must all match the key type's
    ``pattern`` (``propertyNames``): pydantic writes ``patternProperties``, which lets
    any other key through."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        patterns = schema.pop("patternProperties", None)
        if patterns:
            ((pattern, values),) = patterns.items()
            schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
            schema["additionalProperties"] = values
        return schema


_AS_SENT = StringConstraints(strip_whitespace=False)
"""An identifier is checked as sent: surrounding whitespace makes it invalid."""

Slug = Annotated[
    str,
    _AS_SENT,
    Field(
        pattern=SLUG_PATTERN,
        description="1-63 lowercase letters, digits or '-', not starting or ending with '-'.",
    ),
]
EnvVarKey = Annotated[str, _AS_SENT, Field(max_length=255, pattern=ENV_KEY_PATTERN)]
BranchName = Annotated[
    str,
    _AS_SENT,
    Field(min_length=1, max_length=255, json_schema_extra={"pattern": BRANCH_PATTERN}),
    AfterValidator(_check_branch),
]
Permission = Annotated[
    str,
    _AS_SENT,
    Field(pattern=PERMISSION_PATTERN, json_schema_extra={"enum": custom_permissions()}),
]
"""A permission as written: its shape is checked here, the catalogue by the core
(``rbac.check_custom_permissions``); the schema lists the values that pass both."""
Email = Annotated[
    EmailStr,
    Field(
        json_schema_extra={
            "pattern": EMAIL_DOMAIN_PATTERN,
            "description": "Not at a special-use domain: " + ", ".join(SPECIAL_USE_DOMAINS),
        }
    ),
]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


_WHOLE = BeforeValidator(_whole)
"""An integer as JSON has it: ``3.0`` is 3 too (JSON has one kind of number, and JSON
Schema's ``integer`` takes it). Validated strictly, ``true`` and ``"3"`` are none. Put
after the bounds (``Annotated[int, Field(ge=...), _WHOLE]``), or pydantic's schema
loses them."""
Port = Annotated[int, Field(ge=1, le=65535), _WHOLE]
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=TEXT_PATTERN)]
NoNulText = Annotated[str, Field(pattern=NO_NUL_PATTERN)]
EnvVarValue = Annotated[str, Field(max_length=65536, pattern=NO_NUL_PATTERN)]
"""An env var's value: no NUL (a process environment cannot hold one; it would be cut
there at build time)."""
EnvVarOverrides = Annotated[dict[EnvVarKey, EnvVarValue], _KeysMatch()]
CommandArg = Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL_PATTERN)]
HealthPath = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^/[^\x00-\x20\x7f]*$")]
"""A request path: no spaces or control characters (CR/LF would split the health
check's request)."""

JsonValue = TypeAliasType(
    "JsonValue", "NoNulText | bool | int | float | list[JsonValue] | JsonObject | None"
)
"""Any JSON value PostgreSQL stores as given (no NUL in a string or a key)."""
JsonObject = TypeAliasType("JsonObject", "Annotated[dict[NoNulText, JsonValue], _KeysMatch()]")


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
    memory_limit_mb: Annotated[int, Field(ge=16, le=1_048_576), _WHOLE] | None = None
    cpu_limit: float | None = Field(default=None, gt=0, le=256)


class TeamSettingsInput(TeamSettings):
    """``TeamSettings`` as written: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_builds: Annotated[int, Field(ge=1, le=1000), _WHOLE] | None = None
    preview_ttl_hours: Annotated[int, Field(ge=1, le=24 * 365), _WHOLE] = 72


def _checked_as(strict: type[BaseModel], stored: type[_S]) -> Callable[[Any], _S]:
    """Validate against the strict model (an instance as the dict it holds), keep the
    stored model: what a service saves compares equal to what it reads back. Types are
    not converted (``"5"`` is no number, ``true`` no count), as the JSON schema says:
    the API validates bodies strictly, and this runs inside that validation."""

    def check(value: Any) -> _S:
        plain = value.model_dump() if isinstance(value, BaseModel) else value
        return stored.model_validate(strict.model_validate(plain, strict=True).model_dump())

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


def _slug_or_sluggable_name(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": ["slug"], "properties": {"slug": {"type": "string"}}},
        {"properties": {"name": {"pattern": slug_source_pattern()}}},
    ]


class _Named(Input):
    """An input with a name and a slug derived from it when absent (null): then the
    name needs a letter or digit (``é`` counts: it gives ``e``)."""

    model_config = ConfigDict(json_schema_extra=_slug_or_sluggable_name)

    name: Name
    slug: Slug | None = Field(default=None, description="Derived from the name when absent.")

    @model_validator(mode="before")
    @classmethod
    def _derive_slug(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("slug") is None
            and isinstance(data.get("name"), str)
        ):
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
    email: Email
    name: Name | None = None
    external_id: str | None = Field(default=None, max_length=255, pattern=NO_NUL_PATTERN)
    avatar_url: HttpUrl | None = None


class CreateTeam(_Named):
    settings: TeamSettingsField = Field(default_factory=TeamSettings)


class UpdateTeam(Input):
    name: Name | None = None
    settings: TeamSettingsField | None = None


class InviteMember(Input):
    email: Email
    role: TeamRole = TeamRole.MEMBER


class AcceptInvite(Input):
    token: str = Field(min_length=16, max_length=255, pattern=NO_NUL_PATTERN)


class UpdateMember(Input):
    role: TeamRole


def _one_of_fields(first: str, second: str) -> dict[str, Any]:
    """JSON Schema for "exactly one of ``first`` and ``second`` is given (not null)"."""
    return {
        "oneOf": [
            {
                "required": [name],
                "properties": {name: {"not": {"type": "null"}}, other: {"type": "null"}},
            }
            for name, other in ((first, second), (second, first))
        ]
    }


def _project_schema(schema: dict[str, Any]) -> None:
    _slug_or_sluggable_name(schema)
    schema.update(_one_of_fields("source_id", "source"))


class CreateProject(_Named):
    """From a project the source lists (``source_id``), or from settings the source
    connects to (``source``: a git repository's ``url``, ``subdirectory``,
    ``credential`` and ``webhook_secret``, say); exactly one of the two."""

    model_config = ConfigDict(json_schema_extra=_project_schema)

    source_type: str = Field(default="local", min_length=1, max_length=50, pattern=TEXT_PATTERN)
    source_id: str | None = Field(default=None, min_length=1, max_length=1024, pattern=TEXT_PATTERN)
    source: dict[str, Any] | None = Field(
        default=None,
        description="Settings the source connects with (its own schema); secrets in it are "
        "stored encrypted and never shown again.",
    )
    default_branch: BranchName = "main"
    settings: ProjectSettingsField = Field(default_factory=ProjectSettings)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.source_id is None) == (self.source is None):
            raise ValueError("give exactly one of source_id and source")
        if self.source is not None and len(json.dumps(self.source, default=str)) > 64_000:
            raise ValueError("source settings are at most 64 KB")
        return self


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
    scopes: list[Permission] = Field(
        default_factory=list, description="What the token may do (none: all its owner may)."
    )
    expires_at: DateTime | None = Field(default=None, description=f"{_FUTURE}; none: never.")


class CreateDeployment(Input):
    """A preview names its branch and may expire (``expires_at`` or ``ttl_hours``;
    neither: the team's ``preview_ttl_hours``); production and staging never expire."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "type": {"const": DeploymentType.PREVIEW.value},
                        "branch": {"type": "string"},
                    },
                    "required": ["branch"],
                },
                {
                    "properties": {
                        "type": {
                            "enum": [
                                t.value for t in DeploymentType if t is not DeploymentType.PREVIEW
                            ]
                        },
                        "expires_at": {"type": "null"},
                        "ttl_hours": {"type": "null"},
                    }
                },
            ]
        }
    )

    type: DeploymentType
    branch: BranchName | None = Field(
        default=None,
        description="Required for a preview; production defaults to the project's default"
        " branch, staging to 'staging'.",
    )
    env_var_overrides: EnvVarOverrides = Field(default_factory=dict)
    auto_shutdown: bool = False
    expires_at: DateTime | None = Field(default=None, description=f"Previews only. {_FUTURE}.")
    ttl_hours: Annotated[int, Field(ge=1, le=24 * 365), _WHOLE] | None = Field(
        default=None, description="Previews only."
    )

    @model_validator(mode="after")
    def _expiry_only_for_previews(self) -> Self:
        if self.type is not DeploymentType.PREVIEW and (self.expires_at or self.ttl_hours):
            raise ValueError("only preview deployments expire")
        return self


class UpdateDeployment(Input):
    env_var_overrides: EnvVarOverrides | None = None
    auto_shutdown: bool | None = None
    expires_at: DateTime | None = Field(
        default=None,
        description=f"A preview's new expiry ({_FUTURE[0].lower()}{_FUTURE[1:]}; a preview"
        " always expires, so not null); production and staging never expire.",
    )


class DeployRequest(Input):
    trigger: Annotated[
        BuildTrigger,
        WithJsonSchema(
            {
                "type": "string",
                "enum": [t.value for t in BuildTrigger if t is not BuildTrigger.ROLLBACK],
            }
        ),
    ] = Field(default=BuildTrigger.MANUAL, description="Roll back with the rollback route.")
    ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        pattern=TEXT_PATTERN,
        description="A branch, tag or commit id to build, where the source has revisions "
        "(git); default: the deployment's branch.",
    )
    commit_sha: str | None = Field(default=None, max_length=255, pattern=NO_NUL_PATTERN)
    commit_message: str | None = Field(default=None, max_length=10_000, pattern=NO_NUL_PATTERN)

    @model_validator(mode="after")
    def _not_rollback(self) -> Self:
        if self.trigger is BuildTrigger.ROLLBACK:
            raise ValueError("use rollback to roll back")
        return self


class RollbackRequest(Input):
    """Back to a succeeded build, named by its id or by the commit it built (the
    newest succeeded build of that commit; 7 to 40 hex digits); with neither, back to
    the newest succeeded build before the current one whose output is still kept (the
    previous healthy build)."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["build_id", "commit_sha"],
                "properties": {
                    "build_id": {"not": {"type": "null"}},
                    "commit_sha": {"not": {"type": "null"}},
                },
            }
        }
    )

    build_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL_PATTERN)
    commit_sha: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,40}$")

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.build_id is not None and self.commit_sha is not None:
            raise ValueError("give at most one of build_id and commit_sha")
        return self


class CreateRole(Input):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN)]
    description: str | None = Field(default=None, max_length=1000, pattern=NO_NUL_PATTERN)
    permissions: list[Permission] = Field(min_length=1)


class UpdateRole(Input):
    description: str | None = Field(default=None, max_length=1000, pattern=NO_NUL_PATTERN)
    permissions: list[Permission] | None = Field(default=None, min_length=1)


class AssignRole(Input):
    role_id: NoNulText
    user_id: NoNulText
    resource_type: ResourceType
    resource_id: NoNulText = Field(
        description="The team's id (this team's, for a team-wide role) or a project's id."
    )


class CreateInstallation(Input):
    """An external integration installed for a team (a GitHub App installation, say)."""

    provider: str = Field(min_length=1, max_length=50, pattern=TEXT_PATTERN)
    installation_id: str = Field(min_length=1, max_length=255, pattern=TEXT_PATTERN)
    account_name: str | None = Field(default=None, max_length=255, pattern=NO_NUL_PATTERN)
    account_type: str | None = Field(default=None, max_length=50, pattern=NO_NUL_PATTERN)
    permissions: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)


class AddDomain(Input):
    """A custom domain for a deployment. The host name is checked and normalised by the
    core (``mastra_admin.core.hostnames``): any case, an optional trailing dot and
    international names are accepted and kept lowercase, in A-label (``xn--``) form."""

    hostname: Annotated[str, _AS_SENT] = Field(
        description="A host name such as shop.example.com, not under a reserved domain or"
        " the platform's own; at most 63 characters per label and"
        f" {HOSTNAME_MAX_LENGTH} in all, international labels counted in their xn-- form"
        " (IDNA 2008).",
        json_schema_extra={
            "pattern": HOSTNAME_PATTERN,
            "minLength": 3,
            "maxLength": HOSTNAME_MAX_LENGTH + 1,
        },
    )
