"""What a user gives to create a git project (``CreateProject.source``), checked without
ever echoing a secret, and the stored form of its credential."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from mastra_admin.core.errors import InvalidInput, MastraAdminError
from mastra_admin.sources.git._credentials import HttpsToken, SshKey
from mastra_admin.sources.git._git import check_subdirectory

__all__ = [
    "CredentialInput",
    "GitConnectConfig",
    "HttpsTokenInput",
    "SshKeyInput",
    "parse_connect_config",
    "parse_stored_credential",
]

_TAGS = ("https_token", "ssh_key")
_FIELDS = "url, subdirectory, credential and webhook_secret"


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    return str(error["msg"]).removeprefix("Value error, ")


class HttpsTokenInput(BaseModel):
    """``{"type": "https_token", "token": "...", "username": "x-access-token"}``."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    type: Literal["https_token"]
    token: SecretStr
    username: str | None = None

    @model_validator(mode="after")
    def _usable(self) -> HttpsTokenInput:
        try:
            self.credential()
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
        return self

    def credential(self) -> HttpsToken:
        if self.username is None:
            return HttpsToken(token=self.token)
        return HttpsToken(token=self.token, username=self.username)

    def stored(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "token": self.token.get_secret_value(),
            **({"username": self.username} if self.username is not None else {}),
        }


class SshKeyInput(BaseModel):
    """``{"type": "ssh_key", "private_key": "-----BEGIN ...", "known_hosts": "..."}``."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    type: Literal["ssh_key"]
    private_key: SecretStr
    known_hosts: str | None = None

    @model_validator(mode="after")
    def _usable(self) -> SshKeyInput:
        try:
            self.credential()
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
        return self

    def credential(self) -> SshKey:
        return SshKey(private_key=self.private_key, known_hosts=self.known_hosts)

    def stored(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "private_key": self.private_key.get_secret_value(),
            **({"known_hosts": self.known_hosts} if self.known_hosts is not None else {}),
        }


CredentialInput = Annotated[HttpsTokenInput | SshKeyInput, Field(discriminator="type")]
_CREDENTIAL: TypeAdapter[HttpsTokenInput | SshKeyInput] = TypeAdapter(CredentialInput)


class GitConnectConfig(BaseModel):
    """The settings of a git project: the repository, the app folder inside it, the
    credential that reads it and the secret its webhooks are signed with."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    url: str = Field(min_length=1, max_length=2048)
    subdirectory: str | None = None
    credential: CredentialInput | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("subdirectory")
    @classmethod
    def _relative_folder(cls, value: str | None) -> str | None:
        if value is None or value.strip("/") == "":
            return None
        try:
            return check_subdirectory(value)
        except MastraAdminError as exc:
            raise ValueError(exc.message) from None

    @field_validator("webhook_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if not 16 <= len(text) <= 256:
            raise ValueError("the webhook secret must have 16 to 256 characters")
        if not text.isprintable() or not text.isascii():
            raise ValueError("the webhook secret may hold printable ASCII characters only")
        return value


def _field_of(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location if part not in _TAGS]
    return ".".join(["source", *parts])[:120]


def parse_connect_config(config: Mapping[str, Any]) -> GitConnectConfig:
    """``config`` checked; ``InvalidInput`` naming the field (``source.url``...) and
    the reason, never a value that was given."""
    try:
        return GitConnectConfig.model_validate(
            dict(config) if isinstance(config, Mapping) else config
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        field = _field_of(tuple(error["loc"]))
        kind = error["type"]
        if kind == "extra_forbidden":
            reason = f"unknown setting (the git source takes {_FIELDS})"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            reason = "the credential's type must be 'https_token' or 'ssh_key'"
        else:
            reason = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{field}: {reason}", details={"field": field}) from None


def parse_stored_credential(plaintext: str) -> HttpsToken | SshKey:
    """The credential kept (encrypted) in a project's ``source_config``."""
    try:
        return _CREDENTIAL.validate_python(json.loads(plaintext)).credential()
    except (ValueError, ValidationError):
        raise InvalidInput("the project's stored git credential is unreadable") from None
