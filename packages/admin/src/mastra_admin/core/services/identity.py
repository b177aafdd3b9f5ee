"""Users, their API tokens, and who a token or an external identity is."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from mastra_admin.core.auth import ExternalIdentity
from mastra_admin.core.changes import Snapshot
from mastra_admin.core.errors import (
    Conflict,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from mastra_admin.core.inputs import (
    CreateApiToken,
    CreateUser,
)
from mastra_admin.core.models import (
    Page,
    Role,
    RoleAssignment,
    User,
    UserApiToken,
    utcnow,
)
from mastra_admin.core.rbac import (
    PLATFORM_ADMIN,
    check_custom_permissions,
)
from mastra_admin.core.services._service import (
    Service,
    check_expiry,
    validated,
)
from mastra_admin.core.storage import (
    UserUpdate,
)
from mastra_admin.core.tokens import (
    USER_TOKEN_PREFIX,
    generate_token,
    hash_token,
)

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext

__all__ = ["IdentityService"]

_log = structlog.get_logger("mastra_admin.core.services.identity")


TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
TOKEN_OWNERS_CACHED = 4096
"""How stale a token's ``last_used_at`` may get: recording every use would add a
durable write to every request."""


class IdentityService(Service):
    """Users, user API tokens and resolving a token or an external identity to a user."""

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self._token_owners: dict[str, tuple[Snapshot, UserApiToken, User]] = {}

    async def _system_role(self, name: str) -> Role:
        role = await self.storage.rbac.get_role_by_name(None, name)
        if role is None:
            raise Unavailable(
                f"the system role {name!r} is missing: MastraAdmin.init() seeds it",
                details={"role": name},
            )
        return role

    # --- users ------------------------------------------------------------------------

    async def bootstrap_admin(self, email: str, *, name: str | None = None) -> tuple[User, str]:
        """Create the first user, a platform administrator, with an API token.

        Only when the platform has no users yet (``Conflict`` otherwise). Returns
        the user and the raw token, which is shown this once.
        """
        data = validated(CreateUser, email=email, name=name)
        if await self.storage.users.count() > 0:
            raise Conflict(
                "the platform already has users: an administrator creates new accounts",
                details={"field": "users"},
            )
        user = await self.storage.users.create(User(email=str(data.email), name=data.name))
        role = await self._system_role(PLATFORM_ADMIN)
        await self.storage.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        _token, raw = await self._issue_user_token(user.id, CreateApiToken(name="bootstrap"))
        _log.info("user.bootstrapped", user_id=user.id)
        return user, raw

    async def system_create_user(
        self, email: str, *, name: str | None = None, platform_admin: bool = False
    ) -> tuple[User, str]:
        """Create a user with an API token, as the installation's operator (the CLI,
        with access to the data dir and database, acts with no user of its own).
        Returns the user and the raw token, shown this once."""
        data = validated(CreateUser, email=email, name=name)
        user = await self.storage.users.create(User(email=str(data.email), name=data.name))
        if platform_admin:
            role = await self._system_role(PLATFORM_ADMIN)
            await self.storage.rbac.assign(RoleAssignment(role_id=role.id, user_id=user.id))
        _token, raw = await self._issue_user_token(user.id, CreateApiToken(name="cli"))
        _log.info("user.created_by_operator", user_id=user.id, platform_admin=platform_admin)
        return user, raw

    async def create_user(self, actor_id: str, data: CreateUser) -> User:
        """Create an account (platform administrators only)."""
        await self.authorizer.ensure_platform_admin(actor_id)
        user = await self.storage.users.create(
            User(
                email=str(data.email),
                name=data.name,
                external_id=data.external_id,
                avatar_url=str(data.avatar_url) if data.avatar_url else None,
            )
        )
        _log.info("user.created", user_id=user.id, actor_id=actor_id)
        return user

    async def get_me(self, actor_id: str) -> User:
        return await self._user(actor_id)

    async def get_user(self, actor_id: str, user_id: str) -> User:
        """A user's account: yourself, anyone you share a team with, or anyone for a
        platform administrator; ``NotFound`` for everyone else."""
        if actor_id != user_id and not await self.authorizer.is_platform_admin(actor_id):
            mine = {team.id for team in await self.storage.teams.list_for_user(actor_id)}
            theirs = {team.id for team in await self.storage.teams.list_for_user(user_id)}
            if not mine & theirs:
                raise NotFound("user not found", details={"user_id": user_id})
        return await self._user(user_id)

    async def list_users(self, actor_id: str, *, limit: int = 100, offset: int = 0) -> Page[User]:
        await self.authorizer.ensure_platform_admin(actor_id)
        items = await self.storage.users.list_all(limit=limit, offset=offset)
        return Page(items=items, total=await self.storage.users.count(), limit=limit, offset=offset)

    async def grant_platform_admin(self, actor_id: str, user_id: str) -> RoleAssignment:
        await self.authorizer.ensure_platform_admin(actor_id)
        await self._user(user_id)
        role = await self._system_role(PLATFORM_ADMIN)
        assignment = await self.storage.rbac.assign(
            RoleAssignment(role_id=role.id, user_id=user_id)
        )
        _log.info("user.platform_admin_granted", user_id=user_id, actor_id=actor_id)
        return assignment

    async def revoke_platform_admin(self, actor_id: str, user_id: str) -> None:
        """Take the platform administrator role away; nobody revokes their own, so
        at least one administrator always remains."""
        await self.authorizer.ensure_platform_admin(actor_id)
        if actor_id == user_id:
            raise Conflict(
                "you cannot revoke your own platform administrator role",
                details={"field": "user_id"},
            )
        role = await self._system_role(PLATFORM_ADMIN)
        if not await self.storage.rbac.unassign(role.id, user_id, None, None):
            raise NotFound("the user is not a platform administrator", details={"user_id": user_id})
        _log.info("user.platform_admin_revoked", user_id=user_id, actor_id=actor_id)

    async def user_for_identity(self, identity: ExternalIdentity) -> User:
        """The user behind a verified external identity (an OIDC token's claims).

        Found by external id; else by email, linking the external id to that user
        (unless the provider says the email is unverified, or the user is linked to
        another identity already); else created.
        """
        user = await self.storage.users.get_by_external_id(identity.external_id)
        if user is not None:
            return user
        if not identity.email:
            raise Unauthenticated("the identity has no email address to match or create a user by")
        verified = identity.claims.get("email_verified", True) is not False
        user = await self.storage.users.get_by_email(identity.email)
        if user is not None:
            if user.external_id is not None or not verified:
                raise Unauthenticated(
                    "the identity's email belongs to a user linked to another identity"
                    if user.external_id is not None
                    else "the identity's email is not verified, so it cannot be linked to a user"
                )
            user = await self.storage.users.update(
                user.id, UserUpdate(external_id=identity.external_id)
            )
            _log.info("user.identity_linked", user_id=user.id)
            return user
        data = validated(CreateUser, email=identity.email, name=identity.name)
        try:
            user = await self.storage.users.create(
                User(email=str(data.email), name=data.name, external_id=identity.external_id)
            )
        except Conflict:
            # Another request created the same user a moment ago.
            found = await self.storage.users.get_by_external_id(identity.external_id)
            if found is None:
                raise
            return found
        _log.info("user.created_from_identity", user_id=user.id)
        return user

    # --- user API tokens ----------------------------------------------------------

    async def _issue_user_token(
        self, user_id: str, data: CreateApiToken
    ) -> tuple[UserApiToken, str]:
        check_expiry(data.expires_at)
        scopes = check_custom_permissions(data.scopes) if data.scopes else []
        generated = generate_token(USER_TOKEN_PREFIX)
        token = await self.storage.users.create_token(
            UserApiToken(
                user_id=user_id,
                name=data.name,
                token_hash=generated.token_hash,
                token_prefix=generated.display_prefix,
                scopes=scopes,
                expires_at=data.expires_at,
            )
        )
        _log.info("user_token.created", token_id=token.id, user_id=user_id)
        return token, generated.raw

    async def create_user_token(
        self, actor_id: str, data: CreateApiToken
    ) -> tuple[UserApiToken, str]:
        """A new API token for yourself; the raw token is returned this once."""
        await self._user(actor_id)
        return await self._issue_user_token(actor_id, data)

    async def list_user_tokens(self, actor_id: str) -> list[UserApiToken]:
        return await self.storage.users.list_tokens(actor_id)

    async def revoke_user_token(self, actor_id: str, token_id: str) -> None:
        if not any(t.id == token_id for t in await self.storage.users.list_tokens(actor_id)):
            raise NotFound("API token not found", details={"token_id": token_id})
        await self.storage.users.revoke_token(token_id, utcnow())
        _log.info("user_token.revoked", token_id=token_id, user_id=actor_id)

    async def authenticate_token(self, raw: str) -> User:
        """The user an API token belongs to; ``Unauthenticated`` when the token is
        unknown, revoked or expired. Records the use."""
        token, user = await self._token_owner(hash_token(raw))
        if token is None:
            raise Unauthenticated("invalid API token")
        now = utcnow()
        if token.revoked_at is not None:
            raise Unauthenticated("the API token was revoked", details={"token_id": token.id})
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the API token has expired", details={"token_id": token.id})
        if user is None:
            raise Unauthenticated("invalid API token")
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
            await self.storage.users.touch_token(token.id, now)
        return user

    async def _token_owner(self, token_hash: str) -> tuple[UserApiToken | None, User | None]:
        """The token with this hash and its user. While the storage's change tracking
        vouches that neither changed since (``storage.changes``), from memory: every
        request authenticates, and this is most of what it reads."""
        tracker = self.storage.changes
        if tracker is None or not tracker.live:
            return await self._load_token_owner(token_hash)
        cached = self._token_owners.get(token_hash)
        if cached is not None and tracker.valid(cached[0]):
            return cached[1], cached[2]
        with tracker.recording() as record:
            token, user = await self._load_token_owner(token_hash)
        if token is not None and user is not None and record.complete:
            owners = self._token_owners
            owners.pop(token_hash, None)
            if len(owners) >= TOKEN_OWNERS_CACHED:
                owners.pop(next(iter(owners)))
            owners[token_hash] = (tracker.snapshot_of(record), token, user)
        return token, user

    async def _load_token_owner(self, token_hash: str) -> tuple[UserApiToken | None, User | None]:
        token = await self.storage.users.get_token_by_hash(token_hash)
        if token is None:
            return None, None
        return token, await self.storage.users.get(token.user_id)
