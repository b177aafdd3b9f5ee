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
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from mastra_admin.core.inputs import (
    CreateApiToken,
    CreateUser,
)
from mastra_admin.core.models import (
    Page,
    ProjectApiToken,
    Role,
    RoleAssignment,
    User,
    UserApiToken,
    utcnow,
)
from mastra_admin.core.rbac import (
    PLATFORM_ADMIN,
    Actor,
    Principal,
    as_principal,
    check_custom_permissions,
    has_permission,
    scopes_cover,
    user_id_of,
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
    PROJECT_TOKEN_PREFIX,
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

    async def create_user(self, actor: Actor, data: CreateUser) -> User:
        """Create an account (platform administrators only)."""
        await self.authorizer.ensure_platform_admin(actor)
        user = await self.storage.users.create(
            User(
                email=str(data.email),
                name=data.name,
                external_id=data.external_id,
                avatar_url=str(data.avatar_url) if data.avatar_url else None,
            )
        )
        _log.info("user.created", user_id=user.id, actor_id=user_id_of(actor))
        return user

    async def get_me(self, actor: Actor) -> User:
        return await self._user(user_id_of(actor))

    async def get_user(self, actor: Actor, user_id: str) -> User:
        """A user's account: yourself, anyone you share a team with, or anyone for a
        platform administrator; ``NotFound`` for everyone else."""
        me = user_id_of(actor)
        if me != user_id and not await self.authorizer.is_platform_admin(actor):
            mine = {team.id for team in await self.storage.teams.list_for_user(me)}
            theirs = {team.id for team in await self.storage.teams.list_for_user(user_id)}
            if not mine & theirs:
                raise NotFound("user not found", details={"user_id": user_id})
        return await self._user(user_id)

    async def list_users(self, actor: Actor, *, limit: int = 100, offset: int = 0) -> Page[User]:
        await self.authorizer.ensure_platform_admin(actor)
        items = await self.storage.users.list_all(limit=limit, offset=offset)
        return Page(items=items, total=await self.storage.users.count(), limit=limit, offset=offset)

    async def grant_platform_admin(self, actor: Actor, user_id: str) -> RoleAssignment:
        await self.authorizer.ensure_platform_admin(actor)
        await self._user(user_id)
        role = await self._system_role(PLATFORM_ADMIN)
        assignment = await self.storage.rbac.assign(
            RoleAssignment(role_id=role.id, user_id=user_id)
        )
        _log.info("user.platform_admin_granted", user_id=user_id, actor_id=user_id_of(actor))
        return assignment

    async def revoke_platform_admin(self, actor: Actor, user_id: str) -> None:
        """Take the platform administrator role away; nobody revokes their own, so
        at least one administrator always remains."""
        await self.authorizer.ensure_platform_admin(actor)
        if user_id_of(actor) == user_id:
            raise Conflict(
                "you cannot revoke your own platform administrator role",
                details={"field": "user_id"},
            )
        role = await self._system_role(PLATFORM_ADMIN)
        if not await self.storage.rbac.unassign(role.id, user_id, None, None):
            raise NotFound("the user is not a platform administrator", details={"user_id": user_id})
        _log.info("user.platform_admin_revoked", user_id=user_id, actor_id=user_id_of(actor))

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
        self, actor: Actor, data: CreateApiToken
    ) -> tuple[UserApiToken, str]:
        """A new API token for yourself; the raw token is returned this once. A
        scoped token creates only tokens no wider than itself; a project token none."""
        principal = self._user_principal(actor, "create API tokens")
        if data.scopes:
            check_custom_permissions(data.scopes)
        if principal.scopes is not None:
            if not data.scopes:
                raise PermissionDenied(
                    "a scoped API token cannot create an unscoped one: name its scopes",
                    details={"field": "scopes", "scopes": sorted(principal.scopes)},
                )
            wider = scopes_cover(principal.scopes, data.scopes)
            if wider:
                raise PermissionDenied(
                    "an API token cannot create a token wider than itself: " + ", ".join(wider),
                    details={"field": "scopes", "permissions": wider},
                )
        await self._user(principal.user_id)
        return await self._issue_user_token(principal.user_id, data)

    async def list_user_tokens(self, actor: Actor) -> list[UserApiToken]:
        principal = self._user_principal(actor, "list API tokens")
        return await self.storage.users.list_tokens(principal.user_id)

    async def revoke_user_token(self, actor: Actor, token_id: str) -> None:
        """Revoke one of your tokens. A scoped token revokes itself and tokens no
        wider than itself, never a wider one (the token its user signs in with)."""
        principal = self._user_principal(actor, "revoke API tokens")
        tokens = await self.storage.users.list_tokens(principal.user_id)
        token = next((t for t in tokens if t.id == token_id), None)
        if token is None:
            raise NotFound("API token not found", details={"token_id": token_id})
        if principal.scopes is not None and token.id != principal.token_id:
            wider = (
                scopes_cover(principal.scopes, [str(s) for s in token.scopes])
                if token.scopes
                else ["*"]
            )
            if wider:
                raise PermissionDenied(
                    "an API token cannot revoke a token wider than itself",
                    details={"token_id": token_id, "permissions": wider},
                )
        await self.storage.users.revoke_token(token_id, utcnow())
        _log.info("user_token.revoked", token_id=token_id, user_id=principal.user_id)

    @staticmethod
    def _user_principal(actor: Actor, what: str) -> Principal:
        principal = as_principal(actor)
        if principal.project_id is not None:
            raise PermissionDenied(
                f"a project API token cannot {what}: it acts on its project only",
                details={"token_id": principal.token_id},
            )
        return principal

    async def authenticate(self, raw: str) -> Principal:
        """Who a bearer token is: a user's API token (``mat_``), limited to its scopes
        when it has any, or a project token (``mpt_``), acting for its creator within
        its scopes on its project. ``Unauthenticated`` when the token is unknown,
        revoked or expired, or its creator is gone. Records the use."""
        if raw.startswith(PROJECT_TOKEN_PREFIX + "_"):
            token = await self.authenticate_project_token(raw)
            return Principal(
                user_id=token.created_by,
                scopes=frozenset(str(s) for s in token.scopes),
                project_id=token.project_id,
                token_id=token.id,
            )
        user_token, user = await self._user_token(raw)
        scopes = frozenset(str(s) for s in user_token.scopes) if user_token.scopes else None
        return Principal(user_id=user.id, scopes=scopes, token_id=user_token.id)

    async def authenticate_token(self, raw: str) -> User:
        """The user an API token belongs to; ``Unauthenticated`` when the token is
        unknown, revoked or expired. Records the use."""
        _token, user = await self._user_token(raw)
        return user

    async def _user_token(self, raw: str) -> tuple[UserApiToken, User]:
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
        return token, user

    async def authenticate_project_token(
        self,
        raw: str,
        *,
        permission: str | None = None,
        project_id: str | None = None,
    ) -> ProjectApiToken:
        """The project token for ``raw``; ``Unauthenticated`` when unknown, expired,
        or its creator's account is gone.

        With ``project_id``, the token must belong to that project (``NotFound``
        otherwise); with ``permission``, its scopes must cover it
        (``PermissionDenied``). A caller then acts as the token's creator
        (``created_by``), so the creator's current permissions apply too.
        """
        token = await self.storage.projects.get_api_token_by_hash(hash_token(raw))
        if token is None:
            raise Unauthenticated("invalid project API token")
        now = utcnow()
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated(
                "the project API token has expired", details={"token_id": token.id}
            )
        if await self.storage.users.get(token.created_by) is None:
            raise Unauthenticated(
                "the project API token's creator no longer exists",
                details={"token_id": token.id},
            )
        if project_id is not None and token.project_id != project_id:
            raise NotFound("project not found", details={"project_id": project_id})
        if permission is not None and not has_permission(
            [str(s) for s in token.scopes], permission
        ):
            raise PermissionDenied(
                f"the token's scopes do not include {permission!r}",
                details={"permission": permission, "token_id": token.id},
            )
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
            await self.storage.projects.touch_api_token(token.id, now)
        return token

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
