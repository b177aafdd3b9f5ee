"""Authentication: who is calling. ``MastraAdmin`` decides what they may do (RBAC)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field

__all__ = ["AuthProvider", "ExternalIdentity"]


class ExternalIdentity(BaseModel):
    """A verified identity from an identity provider (the claims of an OIDC JWT)."""

    external_id: str
    email: str | None = None
    name: str | None = None
    claims: dict[str, object] = Field(default_factory=dict)


class AuthProvider(ABC):
    """Verifies credentials that are not MastraAdmin's own API tokens (e.g. OIDC JWTs).

    Returns ``None`` when the credential is not for this provider, raises
    ``Unauthenticated`` when it is but is invalid (bad signature, expired).
    """

    type: ClassVar[str]

    @abstractmethod
    async def verify(self, credential: str) -> ExternalIdentity | None: ...

    async def close(self) -> None:
        """Release resources (HTTP clients, key caches)."""
