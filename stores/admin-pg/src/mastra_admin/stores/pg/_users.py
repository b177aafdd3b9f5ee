"""Users and their API tokens (``admin_users``, ``admin_user_tokens``)."""

from __future__ import annotations

from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import User, UserApiToken
from mastra_admin.core.storage import UserStore, UserUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgUserStore"]

USERS = Table(
    "admin_users",
    User,
    "id external_id email name avatar_url metadata created_at updated_at",
    json_columns=["metadata"],
)
TOKENS = Table(
    "admin_user_tokens",
    UserApiToken,
    "id user_id name token_hash token_prefix scopes expires_at last_used_at revoked_at created_at",
    json_columns=["scopes"],
)


class PgUserStore(UserStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user: User) -> User:
        return USERS.decode(await self._db.fetch_required(USERS.insert_sql, USERS.params(user)))

    async def get(self, user_id: str) -> User | None:
        if not is_uuid(user_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_users WHERE id = %s", (user_id,)
        )
        return USERS.decode(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_users WHERE lower(email) = lower(%s)", (email,)
        )
        return USERS.decode(row) if row else None

    async def get_by_external_id(self, external_id: str) -> User | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_users WHERE external_id = %s", (external_id,)
        )
        return USERS.decode(row) if row else None

    async def update(self, user_id: str, patch: UserUpdate) -> User:
        changes = USERS.patch_params(patch)
        row = None
        if is_uuid(user_id):
            row = await self._db.fetch_one(USERS.update_sql(changes), {**changes, "id": user_id})
        if row is None:
            raise NotFound("user not found", details={"user_id": user_id})
        return USERS.decode(row)

    async def delete(self, user_id: str) -> bool:
        if not is_uuid(user_id):
            return False
        return (
            await self._db.execute("DELETE FROM {schema}.admin_users WHERE id = %s", (user_id,)) > 0
        )

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_users ORDER BY created_at, id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return USERS.decode_all(rows)

    async def count(self) -> int:
        return int(await self._db.fetch_value("SELECT count(*) FROM {schema}.admin_users"))

    async def create_token(self, token: UserApiToken) -> UserApiToken:
        return TOKENS.decode(await self._db.fetch_required(TOKENS.insert_sql, TOKENS.params(token)))

    async def get_token_by_hash(self, token_hash: str) -> UserApiToken | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_user_tokens WHERE token_hash = %s", (token_hash,)
        )
        return TOKENS.decode(row) if row else None

    async def list_tokens(self, user_id: str) -> list[UserApiToken]:
        if not is_uuid(user_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_user_tokens WHERE user_id = %s"
            " ORDER BY created_at DESC, id DESC",
            (user_id,),
        )
        return TOKENS.decode_all(rows)

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        if not is_uuid(token_id):
            return False
        touched = await self._db.execute(
            "UPDATE {schema}.admin_user_tokens SET revoked_at = coalesce(revoked_at, %s)"
            " WHERE id = %s",
            (at, token_id),
        )
        return touched > 0

    async def touch_token(self, token_id: str, at: datetime) -> None:
        if is_uuid(token_id):
            await self._db.execute(
                "UPDATE {schema}.admin_user_tokens SET last_used_at = %s WHERE id = %s",
                (at, token_id),
            )
