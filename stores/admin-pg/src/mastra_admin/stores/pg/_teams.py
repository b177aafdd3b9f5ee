"""Teams with their members, invites and installations."""

from __future__ import annotations

from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Team, TeamInstallation, TeamInvite, TeamMember, TeamRole
from mastra_admin.core.storage import TeamStore, TeamUpdate, last_owner_conflict

from ._db import Database, Transaction, is_uuid
from ._tables import Table

__all__ = ["PgTeamStore"]

_SET_ROLE = (
    "UPDATE {schema}.admin_team_members SET role = %s"
    " WHERE team_id = %s AND user_id = %s RETURNING *"
)
_REMOVE_MEMBER = "DELETE FROM {schema}.admin_team_members WHERE team_id = %s AND user_id = %s"
_LAST_OWNER = """
SELECT EXISTS (
         SELECT 1 FROM {schema}.admin_team_members
          WHERE team_id = %s AND user_id = %s AND role = 'owner')
       AND NOT EXISTS (
         SELECT 1 FROM {schema}.admin_team_members
          WHERE team_id = %s AND user_id <> %s AND role = 'owner') AS last_owner
"""

TEAMS = Table(
    "admin_teams", Team, "id name slug settings created_at updated_at", json_columns=["settings"]
)
MEMBERS = Table("admin_team_members", TeamMember, "id team_id user_id role joined_at")
INVITES = Table(
    "admin_team_invites",
    TeamInvite,
    "id team_id email role invited_by token_hash expires_at accepted_at created_at",
)
INSTALLATIONS = Table(
    "admin_team_installations",
    TeamInstallation,
    "id team_id provider installation_id account_name account_type permissions metadata"
    " created_at updated_at",
    json_columns=["permissions", "metadata"],
)

# Assignments name their resource without a foreign key; the team's go with it.
_DELETE_TEAM = """
WITH doomed AS (DELETE FROM {schema}.admin_teams WHERE id = %(id)s RETURNING id),
projects AS (SELECT p.id FROM {schema}.admin_projects p JOIN doomed d ON p.team_id = d.id),
gone AS (
  DELETE FROM {schema}.admin_role_assignments a
   WHERE (a.resource_type = 'team' AND a.resource_id IN (SELECT id FROM doomed))
      OR (a.resource_type = 'project' AND a.resource_id IN (SELECT id FROM projects))
)
SELECT count(*) AS n FROM doomed
"""


class PgTeamStore(TeamStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, team: Team) -> Team:
        return TEAMS.decode(await self._db.fetch_required(TEAMS.insert_sql, TEAMS.params(team)))

    async def get(self, team_id: str) -> Team | None:
        if not is_uuid(team_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_teams WHERE id = %s", (team_id,)
        )
        return TEAMS.decode(row) if row else None

    async def get_by_slug(self, slug: str) -> Team | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_teams WHERE slug = %s", (slug,)
        )
        return TEAMS.decode(row) if row else None

    async def update(self, team_id: str, patch: TeamUpdate) -> Team:
        changes = TEAMS.patch_params(patch)
        row = None
        if is_uuid(team_id):
            row = await self._db.fetch_one(TEAMS.update_sql(changes), {**changes, "id": team_id})
        if row is None:
            raise NotFound("team not found", details={"team_id": team_id})
        return TEAMS.decode(row)

    async def delete(self, team_id: str) -> bool:
        if not is_uuid(team_id):
            return False
        return bool(await self._db.fetch_value(_DELETE_TEAM, {"id": team_id}))

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[Team]:
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_teams ORDER BY name, id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return TEAMS.decode_all(rows)

    async def list_for_user(self, user_id: str) -> list[Team]:
        if not is_uuid(user_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT t.* FROM {schema}.admin_teams t"
            " JOIN {schema}.admin_team_members m ON m.team_id = t.id"
            " WHERE m.user_id = %s ORDER BY t.name, t.id",
            (user_id,),
        )
        return TEAMS.decode_all(rows)

    async def count(self) -> int:
        return int(await self._db.fetch_value("SELECT count(*) FROM {schema}.admin_teams"))

    # --- members -------------------------------------------------------------------

    async def add_member(self, member: TeamMember) -> TeamMember:
        row = await self._db.fetch_required(MEMBERS.insert_sql, MEMBERS.params(member))
        return MEMBERS.decode(row)

    async def get_member(self, team_id: str, user_id: str) -> TeamMember | None:
        if not (is_uuid(team_id) and is_uuid(user_id)):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_team_members WHERE team_id = %s AND user_id = %s",
            (team_id, user_id),
        )
        return MEMBERS.decode(row) if row else None

    async def list_members(self, team_id: str) -> list[TeamMember]:
        if not is_uuid(team_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_team_members WHERE team_id = %s ORDER BY joined_at, id",
            (team_id,),
        )
        return MEMBERS.decode_all(rows)

    async def count_members(self, team_id: str) -> int:
        if not is_uuid(team_id):
            return 0
        return int(
            await self._db.fetch_value(
                "SELECT count(*) FROM {schema}.admin_team_members WHERE team_id = %s",
                (team_id,),
            )
        )

    async def update_member_role(
        self, team_id: str, user_id: str, role: TeamRole, *, keep_owner: bool = False
    ) -> TeamMember:
        row = None
        if is_uuid(team_id) and is_uuid(user_id):
            role = TeamRole(role)
            if keep_owner and role is not TeamRole.OWNER:
                async with self._db.transaction() as tx:
                    await self._ensure_not_last_owner(tx, team_id, user_id, "role")
                    row = await tx.fetch_one(_SET_ROLE, (role.value, team_id, user_id))
            else:
                row = await self._db.fetch_one(_SET_ROLE, (role.value, team_id, user_id))
        if row is None:
            raise NotFound(
                "the user is not a member of this team",
                details={"team_id": team_id, "user_id": user_id},
            )
        return MEMBERS.decode(row)

    async def remove_member(self, team_id: str, user_id: str, *, keep_owner: bool = False) -> bool:
        if not (is_uuid(team_id) and is_uuid(user_id)):
            return False
        if not keep_owner:
            return await self._db.execute(_REMOVE_MEMBER, (team_id, user_id)) > 0
        async with self._db.transaction() as tx:
            await self._ensure_not_last_owner(tx, team_id, user_id, "user_id")
            removed = await tx.fetch_one(_REMOVE_MEMBER + " RETURNING id", (team_id, user_id))
        return removed is not None

    @staticmethod
    async def _ensure_not_last_owner(
        tx: Transaction, team_id: str, user_id: str, field: str
    ) -> None:
        """Inside the transaction: lock the team (so that owner changes of one team
        happen one after another), then refuse if the user is its only owner."""
        await tx.fetch_one(
            "SELECT id FROM {schema}.admin_teams WHERE id = %s FOR UPDATE", (team_id,)
        )
        row = await tx.fetch_one(_LAST_OWNER, (team_id, user_id, team_id, user_id))
        if row is not None and row["last_owner"]:
            raise last_owner_conflict(field, user_id)

    # --- invites -------------------------------------------------------------------

    async def create_invite(self, invite: TeamInvite) -> TeamInvite:
        row = await self._db.fetch_required(INVITES.insert_sql, INVITES.params(invite))
        return INVITES.decode(row)

    async def get_invite(self, invite_id: str) -> TeamInvite | None:
        if not is_uuid(invite_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_team_invites WHERE id = %s", (invite_id,)
        )
        return INVITES.decode(row) if row else None

    async def get_invite_by_token_hash(self, token_hash: str) -> TeamInvite | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_team_invites WHERE token_hash = %s", (token_hash,)
        )
        return INVITES.decode(row) if row else None

    async def list_pending_invites(self, team_id: str, now: datetime) -> list[TeamInvite]:
        if not is_uuid(team_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_team_invites"
            " WHERE team_id = %s AND accepted_at IS NULL AND expires_at > %s"
            " ORDER BY created_at DESC, id DESC",
            (team_id, now),
        )
        return INVITES.decode_all(rows)

    async def mark_invite_accepted(self, invite_id: str, at: datetime) -> bool:
        if not is_uuid(invite_id):
            return False
        accepted = await self._db.execute(
            "UPDATE {schema}.admin_team_invites SET accepted_at = %s"
            " WHERE id = %s AND accepted_at IS NULL",
            (at, invite_id),
        )
        return accepted > 0

    async def delete_invite(self, invite_id: str) -> bool:
        if not is_uuid(invite_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_team_invites WHERE id = %s", (invite_id,)
        )
        return deleted > 0

    # --- installations -------------------------------------------------------------

    async def create_installation(self, installation: TeamInstallation) -> TeamInstallation:
        row = await self._db.fetch_required(
            INSTALLATIONS.insert_sql, INSTALLATIONS.params(installation)
        )
        return INSTALLATIONS.decode(row)

    async def get_installation(
        self, team_id: str, provider: str, installation_id: str
    ) -> TeamInstallation | None:
        if not is_uuid(team_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_team_installations"
            " WHERE team_id = %s AND provider = %s AND installation_id = %s",
            (team_id, provider, installation_id),
        )
        return INSTALLATIONS.decode(row) if row else None

    async def list_installations(self, team_id: str) -> list[TeamInstallation]:
        if not is_uuid(team_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_team_installations WHERE team_id = %s"
            " ORDER BY created_at, id",
            (team_id,),
        )
        return INSTALLATIONS.decode_all(rows)

    async def delete_installation(self, installation_id: str) -> bool:
        if not is_uuid(installation_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_team_installations WHERE id = %s", (installation_id,)
        )
        return deleted > 0
