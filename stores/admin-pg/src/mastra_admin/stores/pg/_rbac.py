"""Roles (system and per-team) and their assignments to users."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import ResourceType, Role, RoleAssignment
from mastra_admin.core.storage import RbacStore, RoleUpdate

from ._db import Database, advisory_key, is_uuid
from ._tables import Table

__all__ = ["PgRbacStore"]

ROLES = Table(
    "admin_roles",
    Role,
    "id team_id name description permissions is_system created_at updated_at",
    json_columns=["permissions"],
)
ASSIGNMENTS = Table(
    "admin_role_assignments",
    RoleAssignment,
    "id role_id user_id resource_type resource_id created_at",
)

# One statement, rows in name order, under an advisory lock (see ensure_system_roles):
# concurrent runs in several processes never duplicate, never deadlock. Unchanged roles are
# left alone so that updated_at says when a role really changed.
_ENSURE_SYSTEM_ROLES = """
INSERT INTO {schema}.admin_roles
  (id, team_id, name, description, permissions, is_system, created_at, updated_at)
SELECT r.id, NULL, r.name, r.description, r.permissions, true, r.created_at, r.updated_at
  FROM jsonb_to_recordset(%s) AS r(
    id uuid, name text, description text, permissions jsonb,
    created_at timestamptz, updated_at timestamptz)
 ORDER BY r.name
ON CONFLICT ON CONSTRAINT admin_roles_name_key DO UPDATE
   SET permissions = EXCLUDED.permissions, description = EXCLUDED.description, is_system = true
 WHERE admin_roles.permissions IS DISTINCT FROM EXCLUDED.permissions
    OR admin_roles.description IS DISTINCT FROM EXCLUDED.description
    OR NOT admin_roles.is_system
"""


class PgRbacStore(RbacStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_role(self, role: Role) -> Role:
        return ROLES.decode(await self._db.fetch_required(ROLES.insert_sql, ROLES.params(role)))

    async def get_role(self, role_id: str) -> Role | None:
        if not is_uuid(role_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_roles WHERE id = %s", (role_id,)
        )
        return ROLES.decode(row) if row else None

    async def get_role_by_name(self, team_id: str | None, name: str) -> Role | None:
        if team_id is not None and not is_uuid(team_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_roles"
            " WHERE team_id IS NOT DISTINCT FROM %s AND name = %s",
            (team_id, name),
        )
        return ROLES.decode(row) if row else None

    async def update_role(self, role_id: str, patch: RoleUpdate) -> Role:
        changes = ROLES.patch_params(patch)
        row = None
        if is_uuid(role_id):
            row = await self._db.fetch_one(ROLES.update_sql(changes), {**changes, "id": role_id})
        if row is None:
            raise NotFound("role not found", details={"role_id": role_id})
        return ROLES.decode(row)

    async def delete_role(self, role_id: str) -> bool:
        if not is_uuid(role_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_roles WHERE id = %s", (role_id,)
        )
        return deleted > 0

    async def list_roles(self, team_id: str | None = None) -> list[Role]:
        if team_id is None or not is_uuid(team_id):
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_roles WHERE team_id IS NULL"
                " ORDER BY is_system DESC, name, id"
            )
        else:
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_roles WHERE team_id IS NULL OR team_id = %s"
                " ORDER BY is_system DESC, name, id",
                (team_id,),
            )
        return ROLES.decode_all(rows)

    async def ensure_system_roles(self, roles: Sequence[Role]) -> None:
        by_name = {role.name: role for role in roles}
        payload = [
            {
                "id": role.id,
                "name": role.name,
                "description": role.description,
                "permissions": list(role.permissions),
                "created_at": role.created_at.isoformat(),
                "updated_at": role.updated_at.isoformat(),
            }
            for role in sorted(by_name.values(), key=lambda r: r.name)
        ]
        if payload:
            # ON CONFLICT can only arbitrate one unique index, and a system role's
            # deterministic id is unique too: two processes inserting the same new role
            # at once would trip over the id. One at a time, under an advisory lock.
            key = advisory_key(f"mastra_admin.system_roles.{self._db.schema}")
            async with self._db.transaction() as tx:
                await tx.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
                await tx.execute(_ENSURE_SYSTEM_ROLES, (Jsonb(payload),))

    async def assign(self, assignment: RoleAssignment) -> RoleAssignment:
        row = await self._db.fetch_required(ASSIGNMENTS.insert_sql, ASSIGNMENTS.params(assignment))
        return ASSIGNMENTS.decode(row)

    async def unassign(
        self,
        role_id: str,
        user_id: str,
        resource_type: ResourceType | None,
        resource_id: str | None,
    ) -> bool:
        if not (is_uuid(role_id) and is_uuid(user_id)):
            return False
        if resource_id is not None and not is_uuid(resource_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_role_assignments"
            " WHERE role_id = %s AND user_id = %s"
            " AND resource_type IS NOT DISTINCT FROM %s"
            " AND resource_id IS NOT DISTINCT FROM %s",
            (
                role_id,
                user_id,
                None if resource_type is None else ResourceType(resource_type).value,
                resource_id,
            ),
        )
        return deleted > 0

    async def list_assignments_for_user(self, user_id: str) -> list[RoleAssignment]:
        if not is_uuid(user_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_role_assignments WHERE user_id = %s"
            " ORDER BY created_at, id",
            (user_id,),
        )
        return ASSIGNMENTS.decode_all(rows)

    async def list_assignments_for_resource(
        self, resource_type: ResourceType, resource_id: str
    ) -> list[RoleAssignment]:
        if not is_uuid(resource_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_role_assignments"
            " WHERE resource_type = %s AND resource_id = %s ORDER BY created_at, id",
            (ResourceType(resource_type).value, resource_id),
        )
        return ASSIGNMENTS.decode_all(rows)
