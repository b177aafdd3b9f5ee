"""Licences: Ed25519-signed keys that set the tier, the features and the limits.

A licence key is ``base64url(payload JSON) + "." + base64url(signature)``, the
signature made with the vendor's Ed25519 private key over the payload JSON bytes,
checked with the public key in the settings (``licence_public_key``). The payload::

    {"tier": "team", "features": ["sso"], "organisation": "Acme",
     "limits": {"max_teams": 20, "max_members_per_team": null, "max_projects": 100},
     "issued_at": "2026-01-01T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z"}

``null`` means unlimited; a limit the payload leaves out takes the tier's default,
and a tier's default features are always included. A missing, malformed or
forged key never stops the platform: it runs on the community tier and says why.
An expired key does the same and names the date it expired.

Limits are counted across the installation: ``max_teams`` teams,
``max_projects`` projects (in all teams together), and ``max_members_per_team``
members (pending invites included) in any one team.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mastra_admin.core.errors import InvalidInput, LicenceLimit
from mastra_admin.core.models import utcnow

__all__ = [
    "FEATURES",
    "TIER_DEFAULTS",
    "LicenceInfo",
    "LicenceLimits",
    "LicencePayload",
    "LicenceTier",
    "LicenceValidator",
    "LimitName",
    "TierDefaults",
    "generate_keypair",
    "issue_licence",
    "load_public_key",
]

_log = structlog.get_logger("mastra_admin.core.licence")


class LicenceTier(StrEnum):
    COMMUNITY = "community"
    TEAM = "team"
    ENTERPRISE = "enterprise"


FEATURES: Final[dict[str, str]] = {
    "local-runner": "Build and run servers as local processes",
    "k8s-runner": "Run servers on Kubernetes",
    "cloudflare-router": "Route through Cloudflare tunnels",
    "github-source": "Projects from GitHub repositories",
    "sso": "Sign-in with an OIDC identity provider",
    "audit-logs": "Audit log of every change",
    "advanced-rbac": "Custom roles and role assignments per team and project",
}
"""The features a licence can grant. Plugins may gate on names of their own."""

LimitName = Literal["max_teams", "max_members_per_team", "max_projects"]


class LicenceLimits(BaseModel):
    """Resource limits; ``None`` is unlimited."""

    model_config = ConfigDict(extra="ignore")

    max_teams: int | None = Field(default=None, ge=0)
    max_members_per_team: int | None = Field(default=None, ge=0)
    max_projects: int | None = Field(default=None, ge=0)


class TierDefaults(BaseModel):
    features: tuple[str, ...]
    limits: LicenceLimits


TIER_DEFAULTS: Final[dict[LicenceTier, TierDefaults]] = {
    LicenceTier.COMMUNITY: TierDefaults(
        features=("local-runner",),
        limits=LicenceLimits(max_teams=3, max_members_per_team=10, max_projects=10),
    ),
    LicenceTier.TEAM: TierDefaults(
        features=("local-runner", "github-source", "sso", "advanced-rbac"),
        limits=LicenceLimits(max_teams=20, max_members_per_team=100, max_projects=200),
    ),
    LicenceTier.ENTERPRISE: TierDefaults(
        features=tuple(FEATURES),
        limits=LicenceLimits(max_teams=None, max_members_per_team=None, max_projects=None),
    ),
}
"""What each tier gives when the key says no more: community is what runs without
a key (three teams of up to ten people, ten projects)."""


class LicencePayload(BaseModel):
    """The signed content of a licence key."""

    model_config = ConfigDict(extra="ignore")

    tier: LicenceTier
    organisation: str = Field(min_length=1, max_length=255)
    features: list[str] = Field(default_factory=list)
    limits: LicenceLimits = Field(default_factory=LicenceLimits)
    issued_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    licence_id: str | None = None

    @field_validator("issued_at", "expires_at", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LicenceInfo(BaseModel):
    """The licence in force now.

    ``valid`` is whether a genuine, unexpired key is in force; when it is not,
    ``tier``, ``features`` and ``limits`` are the community tier's and ``message``
    says why (``key_tier`` then keeps the tier the key claimed, when it was readable).
    """

    valid: bool
    tier: LicenceTier
    features: list[str]
    limits: LicenceLimits
    expires_at: datetime | None = None
    organisation: str | None = None
    issued_at: datetime | None = None
    key_tier: LicenceTier | None = None
    message: str


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decode_key_bytes(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    cleaned = text.strip()
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return _b64url_decode(cleaned)


def load_public_key(public_key: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes, PEM, or the key object."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key
    text = public_key.decode() if isinstance(public_key, bytes) else public_key
    try:
        if "BEGIN PUBLIC KEY" in text:
            loaded = serialization.load_pem_public_key(text.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return loaded
        return Ed25519PublicKey.from_public_bytes(_decode_key_bytes(text))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InvalidInput(f"the licence public key cannot be read: {exc}") from None


def _load_private_key(private_key: str | bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key
    text = private_key.decode() if isinstance(private_key, bytes) else private_key
    try:
        if "BEGIN PRIVATE KEY" in text:
            loaded = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return loaded
        return Ed25519PrivateKey.from_private_bytes(_decode_key_bytes(text))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InvalidInput(f"the licence private key cannot be read: {exc}") from None


def generate_keypair() -> tuple[str, str]:
    """A new Ed25519 key pair as ``(private, public)``, each base64 of the raw 32 bytes.

    The vendor keeps the private key to issue licences; installations configure
    the public key (``MASTRA_ADMIN_LICENCE_PUBLIC_KEY``).
    """
    private = Ed25519PrivateKey.generate()
    private_raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(private_raw).decode(), base64.b64encode(public_raw).decode()


def issue_licence(
    private_key: str | bytes | Ed25519PrivateKey,
    payload: LicencePayload | Mapping[str, Any],
) -> str:
    """Sign a licence payload; returns the key to give to the customer."""
    model = (
        payload if isinstance(payload, LicencePayload) else LicencePayload.model_validate(payload)
    )
    document = model.model_dump(mode="json", exclude_unset=False)
    # Limits left unset by the issuer must stay absent, so that the tier's defaults apply.
    document["limits"] = model.limits.model_dump(mode="json", exclude_unset=True)
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    signature = _load_private_key(private_key).sign(body)
    return f"{_b64url_encode(body)}.{_b64url_encode(signature)}"


class LicenceValidator:
    """Checks a licence key once and answers what the installation may do.

    ``info()`` re-checks the expiry on every call, so a key that expires while the
    platform runs degrades to the community tier without a restart.
    """

    def __init__(
        self,
        key: str | None,
        public_key: str | bytes | Ed25519PublicKey | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._clock = clock
        self._payload: LicencePayload | None = None
        self._problem: str | None = None
        self._load(key, public_key)

    def _load(self, key: str | None, public_key: str | bytes | Ed25519PublicKey | None) -> None:
        if key is None or not key.strip():
            self._problem = "no licence key is configured: running on the community tier"
            return
        if public_key is None:
            self._problem = (
                "a licence key is configured but no licence public key to check it with: "
                "running on the community tier"
            )
            _log.warning("licence.invalid", reason="no_public_key")
            return
        try:
            verifier = load_public_key(public_key)
        except InvalidInput as exc:
            self._problem = f"{exc.message}: running on the community tier"
            _log.warning("licence.invalid", reason="bad_public_key")
            return
        self._payload, self._problem = _verify(key.strip(), verifier)
        if self._payload is None:
            _log.warning("licence.invalid", reason=self._problem)
        else:
            expires = self._payload.expires_at
            _log.info(
                "licence.loaded",
                tier=self._payload.tier.value,
                organisation=self._payload.organisation,
                expires_at=expires.isoformat() if expires else None,
            )

    def info(self) -> LicenceInfo:
        community = TIER_DEFAULTS[LicenceTier.COMMUNITY]
        payload = self._payload
        if payload is None:
            return LicenceInfo(
                valid=False,
                tier=LicenceTier.COMMUNITY,
                features=list(community.features),
                limits=community.limits.model_copy(),
                message=self._problem or "running on the community tier",
            )
        if payload.expires_at is not None and payload.expires_at <= self._clock():
            return LicenceInfo(
                valid=False,
                tier=LicenceTier.COMMUNITY,
                features=list(community.features),
                limits=community.limits.model_copy(),
                expires_at=payload.expires_at,
                organisation=payload.organisation,
                issued_at=payload.issued_at,
                key_tier=payload.tier,
                message=(
                    f"the {payload.tier.value} licence of {payload.organisation} expired on "
                    f"{payload.expires_at.date().isoformat()}: running on the community tier "
                    "until it is renewed"
                ),
            )
        defaults = TIER_DEFAULTS[payload.tier]
        limits = defaults.limits.model_copy(
            update={name: getattr(payload.limits, name) for name in payload.limits.model_fields_set}
        )
        features = list(dict.fromkeys([*defaults.features, *payload.features]))
        until = f" until {payload.expires_at.date().isoformat()}" if payload.expires_at else ""
        return LicenceInfo(
            valid=True,
            tier=payload.tier,
            features=features,
            limits=limits,
            expires_at=payload.expires_at,
            organisation=payload.organisation,
            issued_at=payload.issued_at,
            key_tier=payload.tier,
            message=f"{payload.tier.value} licence of {payload.organisation}{until}",
        )

    def has_feature(self, feature: str) -> bool:
        return feature in self.info().features

    def require_feature(self, feature: str) -> None:
        """``LicenceLimit`` when the licence in force lacks ``feature``."""
        info = self.info()
        if feature not in info.features:
            raise LicenceLimit(
                f"the {info.tier.value} tier does not include the feature {feature!r}"
                + ("" if info.valid else f" ({info.message})"),
                details={"feature": feature, "tier": info.tier.value},
            )

    def check_limit(self, name: LimitName, current: int) -> None:
        """``LicenceLimit`` when ``current`` (the count before adding one more) has
        reached the limit ``name``."""
        info = self.info()
        limit: int | None = getattr(info.limits, name)
        if limit is not None and current >= limit:
            what = name.removeprefix("max_").replace("_", " ")
            raise LicenceLimit(
                f"the {info.tier.value} tier allows at most {limit} {what}"
                + ("" if info.valid else f" ({info.message})"),
                details={"limit": name, "max": limit, "current": current, "tier": info.tier.value},
            )


def _verify(key: str, verifier: Ed25519PublicKey) -> tuple[LicencePayload | None, str | None]:
    parts = key.split(".")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, "the licence key is malformed: running on the community tier"
    try:
        body = _b64url_decode(parts[0])
        signature = _b64url_decode(parts[1])
    except (binascii.Error, ValueError):
        return None, "the licence key is malformed (bad base64): running on the community tier"
    try:
        verifier.verify(signature, body)
    except InvalidSignature:
        return None, (
            "the licence key's signature does not match the licence public key: "
            "running on the community tier"
        )
    try:
        payload = LicencePayload.model_validate_json(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        return None, (
            f"the licence key's content is invalid ({fields}): running on the community tier"
        )
    return payload, None
