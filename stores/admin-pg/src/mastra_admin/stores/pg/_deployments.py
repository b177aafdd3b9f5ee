"""Deployments of projects (production, staging, previews)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Deployment, DeploymentStatus
from mastra_admin.core.storage import DeploymentStore, DeploymentUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgDeploymentStore"]

DEPLOYMENTS = Table(
    "admin_deployments",
    Deployment,
    "id project_id type branch slug status current_build_id public_url internal_host"
    " internal_port env_var_overrides auto_shutdown expires_at secrets_withheld created_at"
    " updated_at",
    json_columns=["env_var_overrides"],
)


class PgDeploymentStore(DeploymentStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, deployment: Deployment) -> Deployment:
        row = await self._db.fetch_required(DEPLOYMENTS.insert_sql, DEPLOYMENTS.params(deployment))
        return DEPLOYMENTS.decode(row)

    async def get(self, deployment_id: str) -> Deployment | None:
        if not is_uuid(deployment_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_deployments WHERE id = %s", (deployment_id,)
        )
        return DEPLOYMENTS.decode(row) if row else None

    async def get_by_branch(self, project_id: str, type: str, branch: str) -> Deployment | None:
        if not is_uuid(project_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_deployments"
            " WHERE project_id = %s AND type = %s AND branch = %s",
            (project_id, str(getattr(type, "value", type)), branch),
        )
        return DEPLOYMENTS.decode(row) if row else None

    async def update(self, deployment_id: str, patch: DeploymentUpdate) -> Deployment:
        changes = DEPLOYMENTS.patch_params(patch)
        row = None
        if is_uuid(deployment_id):
            row = await self._db.fetch_one(
                DEPLOYMENTS.update_sql(changes), {**changes, "id": deployment_id}
            )
        if row is None:
            raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        return DEPLOYMENTS.decode(row)

    async def delete(self, deployment_id: str) -> bool:
        if not is_uuid(deployment_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_deployments WHERE id = %s", (deployment_id,)
        )
        return deleted > 0

    async def list_for_project(self, project_id: str) -> list[Deployment]:
        if not is_uuid(project_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_deployments WHERE project_id = %s"
            " ORDER BY created_at DESC, id DESC",
            (project_id,),
        )
        return DEPLOYMENTS.decode_all(rows)

    async def list_by_status(self, statuses: Collection[DeploymentStatus]) -> list[Deployment]:
        wanted = [DeploymentStatus(s).value for s in statuses]
        if not wanted:
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_deployments WHERE status = ANY(%s)"
            " ORDER BY created_at, id",
            (wanted,),
        )
        return DEPLOYMENTS.decode_all(rows)

    async def list_expired_previews(self, now: datetime) -> list[Deployment]:
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_deployments"
            " WHERE type = 'preview' AND expires_at <= %s ORDER BY expires_at, id",
            (now,),
        )
        return DEPLOYMENTS.decode_all(rows)
