"""Users: the bootstrap administrator, accounts, external identities and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.auth import ExternalIdentity
from mastra_admin.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mastra_admin.core.inputs import CreateApiToken, CreateUser
from mastra_admin.core.models import UserApiToken, utcnow
from mastra_admin.core.tokens import USER_TOKEN_PREFIX, generate_token, hash_token

from .conftest import AdminFactory, World


async def test_bootstrap_makes_the_first_user_a_platform_admin(make_admin: AdminFactory) -> None:
    admin = await make_admin()
    user, raw = await admin.bootstrap_admin("Root@Example.com", name="Root")
    assert raw.startswith("mat_")
    assert await admin.authorizer.is_platform_admin(user.id)
    assert (await admin.authenticate_token(raw)).id == user.id
    (token,) = await admin.list_user_tokens(user.id)
    assert token.token_hash == hash_token(raw)
    assert raw not in token.model_dump_json(), "the raw token is never stored"


async def test_bootstrap_only_once(make_admin: AdminFactory) -> None:
    admin = await make_admin()
    await admin.bootstrap_admin("root@example.com")
    with pytest.raises(Conflict, match="already has users"):
        await admin.bootstrap_admin("second@example.com")


async def test_bootstrap_validates_the_email(make_admin: AdminFactory) -> None:
    admin = await make_admin()
    with pytest.raises(InvalidInput) as caught:
        await admin.bootstrap_admin("not an email")
    assert caught.value.details == {"field": "email"}


async def test_only_platform_admins_create_users(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.admin.create_user(world.owner.id, CreateUser(email="new@example.com"))
    with pytest.raises(Conflict):
        await world.admin.create_user(world.root.id, CreateUser(email="OWNER@example.com"))


async def test_who_may_see_a_user(world: World) -> None:
    admin = world.admin
    assert (await admin.get_user(world.viewer.id, world.owner.id)).id == world.owner.id
    assert (
        await admin.get_user(world.outsider.id, world.outsider.id)
    ).email == "outsider@example.com"
    assert (await admin.get_user(world.root.id, world.outsider.id)).id == world.outsider.id
    with pytest.raises(NotFound):
        await admin.get_user(world.outsider.id, world.owner.id)
    assert (await admin.get_me(world.member.id)).name == "Member"
    page = await admin.list_users(world.root.id, limit=2)
    assert page.total == 6
    assert len(page.items) == 2
    assert page.has_more
    with pytest.raises(PermissionDenied):
        await admin.list_users(world.owner.id)


async def test_platform_admin_grant_and_revoke(world: World) -> None:
    admin = world.admin
    await admin.grant_platform_admin(world.root.id, world.viewer.id)
    assert await admin.authorizer.is_platform_admin(world.viewer.id)
    with pytest.raises(Conflict, match="your own"):
        await admin.revoke_platform_admin(world.viewer.id, world.viewer.id)
    await admin.revoke_platform_admin(world.root.id, world.viewer.id)
    assert not await admin.authorizer.is_platform_admin(world.viewer.id)
    with pytest.raises(NotFound):
        await admin.revoke_platform_admin(world.root.id, world.viewer.id)
    with pytest.raises(PermissionDenied):
        await admin.grant_platform_admin(world.owner.id, world.owner.id)


class TestIdentities:
    async def test_found_by_external_id(self, world: World) -> None:
        admin = world.admin
        first = await admin.user_for_identity(
            ExternalIdentity(external_id="oidc|1", email="fresh@example.com", name="Fresh")
        )
        assert first.external_id == "oidc|1"
        assert first.name == "Fresh"
        again = await admin.user_for_identity(
            ExternalIdentity(external_id="oidc|1", email="changed@example.com")
        )
        assert again.id == first.id

    async def test_linked_by_email(self, world: World) -> None:
        linked = await world.admin.user_for_identity(
            ExternalIdentity(external_id="oidc|owner", email="OWNER@example.com")
        )
        assert linked.id == world.owner.id
        assert linked.external_id == "oidc|owner"

    async def test_never_linked_to_a_user_of_another_identity(self, world: World) -> None:
        admin = world.admin
        await admin.user_for_identity(ExternalIdentity(external_id="a", email="owner@example.com"))
        with pytest.raises(Unauthenticated, match="another identity"):
            await admin.user_for_identity(
                ExternalIdentity(external_id="b", email="owner@example.com")
            )

    async def test_unverified_email_is_not_linked(self, world: World) -> None:
        with pytest.raises(Unauthenticated, match="not verified"):
            await world.admin.user_for_identity(
                ExternalIdentity(
                    external_id="x",
                    email="member@example.com",
                    claims={"email_verified": False},
                )
            )

    async def test_without_email_nobody_is_created(self, world: World) -> None:
        with pytest.raises(Unauthenticated, match="no email"):
            await world.admin.user_for_identity(ExternalIdentity(external_id="anon"))


class TestUserTokens:
    async def test_shown_once_and_usable(self, world: World) -> None:
        admin = world.admin
        token, raw = await admin.create_user_token(world.member.id, CreateApiToken(name="laptop"))
        assert token.token_prefix == raw[:12]
        assert token.last_used_at is None
        assert (await admin.authenticate_token(raw)).id == world.member.id
        (listed,) = await admin.list_user_tokens(world.member.id)
        assert listed.last_used_at is not None
        assert raw not in listed.model_dump_json()

    async def test_unknown_revoked_and_expired_tokens_are_refused(self, world: World) -> None:
        admin = world.admin
        with pytest.raises(Unauthenticated, match="invalid"):
            await admin.authenticate_token("mat_nope")
        token, raw = await admin.create_user_token(world.member.id, CreateApiToken(name="ci"))
        await admin.revoke_user_token(world.member.id, token.id)
        with pytest.raises(Unauthenticated, match="revoked"):
            await admin.authenticate_token(raw)
        # A token whose expiry has passed (stored directly: the API refuses past expiries).
        raw2, token_hash, prefix = generate_token(USER_TOKEN_PREFIX)
        await world.storage.users.create_token(
            UserApiToken(
                user_id=world.member.id,
                name="expired",
                token_hash=token_hash,
                token_prefix=prefix,
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
        with pytest.raises(Unauthenticated, match="expired"):
            await admin.authenticate_token(raw2)

    async def test_expiry_must_be_in_the_future(self, world: World) -> None:
        with pytest.raises(InvalidInput, match="future"):
            await world.admin.create_user_token(
                world.member.id,
                CreateApiToken(name="old", expires_at=utcnow() - timedelta(days=1)),
            )

    async def test_scopes_must_be_known_permissions(self, world: World) -> None:
        with pytest.raises(InvalidInput, match="unknown permissions"):
            await world.admin.create_user_token(
                world.member.id, CreateApiToken(name="x", scopes=["widget:read"])
            )

    async def test_nobody_revokes_another_users_token(self, world: World) -> None:
        admin = world.admin
        token, raw = await admin.create_user_token(world.member.id, CreateApiToken(name="mine"))
        with pytest.raises(NotFound):
            await admin.revoke_user_token(world.owner.id, token.id)
        assert (await admin.authenticate_token(raw)).id == world.member.id


def test_admin_repr_names_its_providers(world: World) -> None:
    assert isinstance(world.admin, MastraAdmin)
    assert f"storage={type(world.storage).__name__}" in repr(world.admin)
