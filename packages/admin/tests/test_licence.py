"""Licences: signed keys, tiers, features, limits, expiry, and what happens without one."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mastra_admin.core.errors import LicenceLimit
from mastra_admin.core.licence import (
    TIER_DEFAULTS,
    LicenceLimits,
    LicencePayload,
    LicenceTier,
    LicenceValidator,
    generate_keypair,
    issue_licence,
)

Keys = tuple[str, str]


def test_no_key_is_the_community_tier(licence_keypair: Keys) -> None:
    for validator in (LicenceValidator(None, None), LicenceValidator("", licence_keypair[1])):
        info = validator.info()
        assert not info.valid
        assert info.tier is LicenceTier.COMMUNITY
        assert info.limits == LicenceLimits(max_teams=3, max_members_per_team=10, max_projects=10)
        assert info.features == ["local-runner"]
        assert "no licence key" in info.message


def test_a_team_licence_gives_its_tier(licence_keypair: Keys) -> None:
    private, public = licence_keypair
    key = issue_licence(
        private,
        {
            "tier": "team",
            "organisation": "Acme",
            "features": ["audit-logs"],
            "limits": {"max_projects": 500, "max_teams": None},
            "expires_at": datetime.now(UTC) + timedelta(days=30),
        },
    )
    info = LicenceValidator(key, public).info()
    assert info.valid
    assert info.tier is LicenceTier.TEAM
    assert info.organisation == "Acme"
    assert set(info.features) == {*TIER_DEFAULTS[LicenceTier.TEAM].features, "audit-logs"}
    # Given limits win (None is unlimited); a limit left out keeps the tier's default.
    assert info.limits.max_projects == 500
    assert info.limits.max_teams is None
    assert (
        info.limits.max_members_per_team
        == TIER_DEFAULTS[LicenceTier.TEAM].limits.max_members_per_team
    )
    assert "team licence of Acme until" in info.message


def test_enterprise_has_every_feature_and_no_limits(licence_keypair: Keys) -> None:
    key = issue_licence(
        licence_keypair[0], LicencePayload(tier=LicenceTier.ENTERPRISE, organisation="Big")
    )
    validator = LicenceValidator(key, licence_keypair[1])
    assert validator.has_feature("k8s-runner")
    assert validator.has_feature("advanced-rbac")
    validator.check_limit("max_teams", 10_000)
    assert validator.info().expires_at is None


def test_a_key_signed_by_someone_else_is_refused(licence_keypair: Keys) -> None:
    forger_private, _ = generate_keypair()
    key = issue_licence(forger_private, {"tier": "enterprise", "organisation": "Forger"})
    info = LicenceValidator(key, licence_keypair[1]).info()
    assert not info.valid
    assert info.tier is LicenceTier.COMMUNITY
    assert "signature does not match" in info.message


def test_a_changed_payload_is_refused(licence_keypair: Keys) -> None:
    key = issue_licence(licence_keypair[0], {"tier": "team", "organisation": "Acme"})
    body, signature = key.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["tier"] = "enterprise"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    info = LicenceValidator(f"{forged}.{signature}", licence_keypair[1]).info()
    assert not info.valid
    assert info.tier is LicenceTier.COMMUNITY


@pytest.mark.parametrize("key", ["garbage", "a.b.c", ".", "!!!.???", "e30.AAAA"])
def test_malformed_keys_never_crash(licence_keypair: Keys, key: str) -> None:
    info = LicenceValidator(key, licence_keypair[1]).info()
    assert not info.valid
    assert info.tier is LicenceTier.COMMUNITY
    assert "community tier" in info.message


def test_a_signed_but_invalid_payload_is_refused(licence_keypair: Keys) -> None:
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(licence_keypair[0]))
    body = json.dumps({"tier": "platinum", "organisation": "Acme"}).encode()
    key = (
        base64.urlsafe_b64encode(body).rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(private.sign(body)).rstrip(b"=").decode()
    )
    info = LicenceValidator(key, licence_keypair[1]).info()
    assert not info.valid
    assert "content is invalid (tier)" in info.message


def test_a_key_without_a_public_key_to_check_it(licence_keypair: Keys) -> None:
    key = issue_licence(licence_keypair[0], {"tier": "team", "organisation": "Acme"})
    assert "no licence public key" in LicenceValidator(key, None).info().message
    assert "cannot be read" in LicenceValidator(key, "not-a-key").info().message


def test_an_expired_key_degrades_to_community_and_names_the_date(licence_keypair: Keys) -> None:
    key = issue_licence(
        licence_keypair[0],
        {"tier": "team", "organisation": "Acme", "expires_at": "2026-03-01T00:00:00Z"},
    )
    validator = LicenceValidator(key, licence_keypair[1])
    info = validator.info()
    assert not info.valid
    assert info.tier is LicenceTier.COMMUNITY
    assert info.key_tier is LicenceTier.TEAM
    assert info.limits == TIER_DEFAULTS[LicenceTier.COMMUNITY].limits
    assert "expired on 2026-03-01" in info.message
    with pytest.raises(LicenceLimit, match="expired on 2026-03-01"):
        validator.require_feature("advanced-rbac")


def test_a_key_expires_while_the_platform_runs(licence_keypair: Keys) -> None:
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    now = [expiry - timedelta(minutes=1)]
    key = issue_licence(
        licence_keypair[0], {"tier": "team", "organisation": "Acme", "expires_at": expiry}
    )
    validator = LicenceValidator(key, licence_keypair[1], clock=lambda: now[0])
    assert validator.has_feature("advanced-rbac")
    now[0] = expiry
    assert not validator.has_feature("advanced-rbac")


def test_feature_and_limit_errors_say_what_and_how_much() -> None:
    validator = LicenceValidator(None, None)
    with pytest.raises(LicenceLimit) as feature:
        validator.require_feature("k8s-runner")
    assert feature.value.details == {"feature": "k8s-runner", "tier": "community"}
    validator.check_limit("max_projects", 9)
    with pytest.raises(LicenceLimit, match="at most 10 projects") as limit:
        validator.check_limit("max_projects", 10)
    assert limit.value.details == {
        "limit": "max_projects",
        "max": 10,
        "current": 10,
        "tier": "community",
    }


def test_public_keys_in_pem_and_url_safe_base64(licence_keypair: Keys) -> None:
    private = Ed25519PrivateKey.generate()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = issue_licence(private, {"tier": "team", "organisation": "Acme"})
    assert LicenceValidator(key, pem).info().valid
    assert LicenceValidator(key, base64.urlsafe_b64encode(raw).decode().rstrip("=")).info().valid
