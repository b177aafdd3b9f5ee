"""Credentials for reading a repository, and how each reaches git without touching argv,
the URL or the cache: an https token as an environment-only header, an ssh key as a
private temporary file."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["Credential", "HttpsToken", "SshKey"]

_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MAX_TOKEN = 4096
_MAX_KEY = 32 * 1024
_MAX_KNOWN_HOSTS = 64 * 1024


class HttpsToken(BaseModel):
    """A token for https repositories (a GitHub installation or personal token, a GitLab
    deploy token...), sent as ``Authorization: Basic base64(<username>:<token>)``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["https_token"] = "https_token"
    token: SecretStr = Field(description="The token; never logged, never in argv or the URL.")
    username: str = Field(
        default="x-access-token",
        description="The user name sent with the token (GitLab wants 'oauth2').",
    )

    @field_validator("token")
    @classmethod
    def _plain_token(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text or len(text) > _MAX_TOKEN:
            raise ValueError(f"the token must have 1 to {_MAX_TOKEN} characters")
        if any(ch.isspace() or not ch.isprintable() for ch in text):
            raise ValueError("the token contains whitespace or control characters")
        return value

    @field_validator("username")
    @classmethod
    def _plain_username(cls, value: str) -> str:
        if not _USERNAME.fullmatch(value):
            raise ValueError("the user name may hold only letters, digits, '.', '_' and '-'")
        return value

    def authorization(self) -> str:
        """The value of the ``Authorization`` header."""
        pair = f"{self.username}:{self.token.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """Every form of the secret that could show up in git's output."""
        header = self.authorization()
        return (self.token.get_secret_value(), header, header.removeprefix("Basic "))


class SshKey(BaseModel):
    """A private key (a deploy key, PEM or OpenSSH text, without passphrase) for ssh
    repositories."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["ssh_key"] = "ssh_key"
    private_key: SecretStr = Field(description="The private key text; never logged.")
    known_hosts: str | None = Field(
        default=None,
        description=(
            "known_hosts lines for the host (``host key-type base64-key``); when given, "
            "only these keys are accepted (StrictHostKeyChecking=yes). None = the key "
            "the host shows on each fetch is accepted (accept-new, empty known_hosts)."
        ),
    )

    @field_validator("private_key")
    @classmethod
    def _looks_like_a_key(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if len(text) > _MAX_KEY:
            raise ValueError(f"the private key is longer than {_MAX_KEY} characters")
        if "-----BEGIN " not in text or "PRIVATE KEY-----" not in text:
            raise ValueError("this is not a private key in PEM or OpenSSH form")
        return value

    @field_validator("known_hosts")
    @classmethod
    def _plain_known_hosts(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > _MAX_KNOWN_HOSTS:
            raise ValueError(f"known_hosts is longer than {_MAX_KNOWN_HOSTS} characters")
        lines = [line.strip() for line in value.replace("\r\n", "\n").split("\n")]
        if any(not line.isprintable() for line in lines):
            raise ValueError("known_hosts contains control characters")
        kept = [line for line in lines if line and not line.startswith("#")]
        if not kept:
            raise ValueError("known_hosts holds no host key")
        if any(len(line.split()) < 3 for line in kept):
            raise ValueError("each known_hosts line is 'host key-type base64-key'")
        return "\n".join(kept) + "\n"

    def key_file_text(self) -> str:
        """The key as ssh wants it on disk: Unix line ends and a final newline."""
        text = self.private_key.get_secret_value().replace("\r\n", "\n").strip()
        return text + "\n"

    def secrets(self) -> tuple[str, ...]:
        lines = self.key_file_text().splitlines()
        return (self.key_file_text().strip(), *(line for line in lines if len(line) >= 16))


Credential = Annotated[HttpsToken | SshKey, Field(discriminator="kind")]
"""How to read a repository: ``HttpsToken`` for https URLs, ``SshKey`` for ssh ones."""
