"""Projects with their env vars and API tokens."""

from __future__ import annotations

from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Project, ProjectApiToken, ProjectEnvVar
from mastra_admin.core.storage import ProjectStore, ProjectUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgProjectStore"]

PROJECTS = Table(
    "admin_projects",
    Project,
    "id team_id name slug source_type source_config default_branch settings created_at updated_at",
    json_columns=["source_config", "settings"],
)
ENV_VARS = Table(
    "admin_project_env_vars",
    ProjectEnvVar,
    "id project_id deployment_type key encrypted_value is_secret created_at updated_at",
)
API_TOKENS = Table(
    "admin_project_api_tokens",
    ProjectApiToken,
    "id project_id name token_hash token_prefix scopes last_used_at expires_at created_by"
    " created_at",
    json_columns=["scopes"],
)

_DELETE_PROJECT = """
WITH doomed AS (DELETE FROM {schema}.admin_projects WHERE id = %(id)s RETURNING id),
gone AS (
  DELETE FROM {schema}.admin_role_assignments
   WHERE resource_type = 'project' AND resource_id IN (SELECT id FROM doomed)
)
SELECT count(*) AS n FROM doomed
"""

# Replacing keeps the row (its id and created_at); the trigger moves updated_at.
_SET_ENV_VAR = (
    ENV_VARS.insert_sql.removesuffix(" RETURNING *")
    + " ON CONFLICT ON CONSTRAINT admin_project_env_vars_key_key DO UPDATE"
    " SET encrypted_value = EXCLUDED.encrypted_value, is_secret = EXCLUDED.is_secret"
    " RETURNING *"
)


class PgProjectStore(ProjectStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, project: Project) -> Project:
        row = await self._db.fetch_required(PROJECTS.insert_sql, PROJECTS.params(project))
        return PROJECTS.decode(row)

    async def get(self, project_id: str) -> Project | None:
        if not is_uuid(project_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_projects WHERE id = %s", (project_id,)
        )
        return PROJECTS.decode(row) if row else None

    async def get_by_slug(self, team_id: str, slug: str) -> Project | None:
        if not is_uuid(team_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_projects WHERE team_id = %s AND slug = %s",
            (team_id, slug),
        )
        return PROJECTS.decode(row) if row else None

    async def update(self, project_id: str, patch: ProjectUpdate) -> Project:
        changes = PROJECTS.patch_params(patch)
        row = None
        if is_uuid(project_id):
            row = await self._db.fetch_one(
                PROJECTS.update_sql(changes), {**changes, "id": project_id}
            )
        if row is None:
            raise NotFound("project not found", details={"project_id": project_id})
        return PROJECTS.decode(row)

    async def delete(self, project_id: str) -> bool:
        if not is_uuid(project_id):
            return False
        return bool(await self._db.fetch_value(_DELETE_PROJECT, {"id": project_id}))

    async def list_for_team(
        self, team_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[Project]:
        if not is_uuid(team_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_projects WHERE team_id = %s"
            " ORDER BY name, id LIMIT %s OFFSET %s",
            (team_id, limit, offset),
        )
        return PROJECTS.decode_all(rows)

    async def count_for_team(self, team_id: str) -> int:
        if not is_uuid(team_id):
            return 0
        return int(
            await self._db.fetch_value(
                "SELECT count(*) FROM {schema}.admin_projects WHERE team_id = %s", (team_id,)
            )
        )

    async def count(self) -> int:
        return int(await self._db.fetch_value("SELECT count(*) FROM {schema}.admin_projects"))

    async def find_by_source(self, source_type: str, key: str, value: str) -> list[Project]:
        # The key is a parameter like the value; migration 0300 indexes the keys the
        # sources look up ("repository_key", "source_id").
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_projects"
            " WHERE source_type = %s AND source_config ->> %s = %s"
            " AND jsonb_typeof(source_config -> %s) = 'string'"
            " ORDER BY created_at, id",
            (source_type, key, value, key),
        )
        return PROJECTS.decode_all(rows)

    # --- env vars ------------------------------------------------------------------

    async def set_env_var(self, env_var: ProjectEnvVar) -> ProjectEnvVar:
        row = await self._db.fetch_required(_SET_ENV_VAR, ENV_VARS.params(env_var))
        return ENV_VARS.decode(row)

    async def get_env_var(
        self, project_id: str, key: str, deployment_type: str | None
    ) -> ProjectEnvVar | None:
        if not is_uuid(project_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_project_env_vars"
            " WHERE project_id = %s AND key = %s AND deployment_type IS NOT DISTINCT FROM %s",
            (project_id, key, _text(deployment_type)),
        )
        return ENV_VARS.decode(row) if row else None

    async def list_env_vars(self, project_id: str) -> list[ProjectEnvVar]:
        if not is_uuid(project_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_project_env_vars WHERE project_id = %s"
            " ORDER BY key, deployment_type NULLS FIRST",
            (project_id,),
        )
        return ENV_VARS.decode_all(rows)

    async def delete_env_var(self, project_id: str, key: str, deployment_type: str | None) -> bool:
        if not is_uuid(project_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_project_env_vars"
            " WHERE project_id = %s AND key = %s AND deployment_type IS NOT DISTINCT FROM %s",
            (project_id, key, _text(deployment_type)),
        )
        return deleted > 0

    # --- API tokens ----------------------------------------------------------------

    async def create_api_token(self, token: ProjectApiToken) -> ProjectApiToken:
        row = await self._db.fetch_required(API_TOKENS.insert_sql, API_TOKENS.params(token))
        return API_TOKENS.decode(row)

    async def get_api_token_by_hash(self, token_hash: str) -> ProjectApiToken | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_project_api_tokens WHERE token_hash = %s",
            (token_hash,),
        )
        return API_TOKENS.decode(row) if row else None

    async def list_api_tokens(self, project_id: str) -> list[ProjectApiToken]:
        if not is_uuid(project_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_project_api_tokens WHERE project_id = %s"
            " ORDER BY created_at DESC, id DESC",
            (project_id,),
        )
        return API_TOKENS.decode_all(rows)

    async def touch_api_token(self, token_id: str, at: datetime) -> None:
        if is_uuid(token_id):
            await self._db.execute(
                "UPDATE {schema}.admin_project_api_tokens SET last_used_at = %s WHERE id = %s",
                (at, token_id),
            )

    async def delete_api_token(self, token_id: str) -> bool:
        if not is_uuid(token_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_project_api_tokens WHERE id = %s", (token_id,)
        )
        return deleted > 0


def _text(value: str | None) -> str | None:
    """A deployment type as the text stored (an enum member or plain text)."""
    return None if value is None else str(getattr(value, "value", value))
