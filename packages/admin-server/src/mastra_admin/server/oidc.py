"""OIDC sign-in: JWTs from an identity provider (Supabase, Auth0, Keycloak ...) checked
against its JWKS with PyJWT and mapped to users by their ``sub`` (external id)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import jwt
import structlog
from pydantic import BaseModel, Field

from mastra_admin.core.auth import AuthProvider, ExternalIdentity
from mastra_admin.core.errors import Unauthenticated, Unavailable

__all__ = ["OidcAuthProvider", "OidcBrowserSignIn", "OidcSettings"]

_log = structlog.get_logger("mastra_admin.server.oidc")


class OidcSettings(BaseModel):
    jwks_url: str = Field(description="URL of the provider's JSON Web Key Set.")
    issuer: str | None = Field(default=None, description="Expected `iss`; unchecked when unset.")
    audience: str | None = Field(default=None, description="Expected `aud`; unchecked when unset.")
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    email_claim: str = "email"
    name_claim: str = "name"
    leeway_s: float = Field(default=30.0, ge=0, description="Clock skew allowed.")
    jwks_cache_s: float = Field(default=300.0, gt=0, description="How long keys are cached.")
    authorization_url: str | None = Field(
        default=None,
        description="The provider's authorization endpoint. With `token_url` and `client_id` "
        "the web UI offers sign-in through the provider (authorization code with PKCE).",
    )
    token_url: str | None = Field(
        default=None,
        description="The provider's token endpoint; the browser posts the code here, so it "
        "must allow CORS from the admin's origin.",
    )
    client_id: str | None = Field(
        default=None, description="Public client id the web UI is registered with."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "email", "profile"],
        description="Scopes the web UI asks for.",
    )
    display_name: str = Field(
        default="single sign-on", description="Names the provider on the sign-in button."
    )


class OidcBrowserSignIn(BaseModel):
    """What the web UI needs for the authorization-code flow with PKCE."""

    authorization_url: str
    token_url: str
    client_id: str
    scopes: list[str]
    display_name: str


class OidcAuthProvider(AuthProvider):
    type: ClassVar[str] = "oidc"

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(
            settings.jwks_url, cache_keys=True, lifespan=int(settings.jwks_cache_s), timeout=10
        )

    def browser_sign_in(self) -> OidcBrowserSignIn | None:
        """The sign-in flow the web UI offers, when the settings describe one."""
        s = self.settings
        if not (s.authorization_url and s.token_url and s.client_id):
            return None
        return OidcBrowserSignIn(
            authorization_url=s.authorization_url,
            token_url=s.token_url,
            client_id=s.client_id,
            scopes=s.scopes,
            display_name=s.display_name,
        )

    async def verify(self, credential: str) -> ExternalIdentity | None:
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.DecodeError:
            return None
        if header.get("alg") not in self.settings.algorithms:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted")
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, credential)
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable("the identity provider's keys cannot be fetched") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated("the token was not signed by a known key") from exc
        options: dict[str, Any] = {"require": ["exp", "sub"]}
        if self.settings.audience is None:
            options["verify_aud"] = False
        try:
            claims = jwt.decode(
                credential,
                key.key,
                algorithms=self.settings.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}") from exc
        email = claims.get(self.settings.email_claim)
        name = claims.get(self.settings.name_claim)
        return ExternalIdentity(
            external_id=str(claims["sub"]),
            email=str(email) if email else None,
            name=str(name) if name else None,
            claims=claims,
        )
