"""Running servers: the processes (or containers) serving deployments."""

from __future__ import annotations

from datetime import datetime

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import RunningServer
from mastra_admin.core.storage import RunningServerStore, RunningServerUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgRunningServerStore"]

SERVERS = Table(
    "admin_running_servers",
    RunningServer,
    "id deployment_id build_id process_id process_started_at container_id host port"
    " health_status last_health_check memory_usage_mb cpu_percent metadata started_at"
    " stopped_at",
    json_columns=["metadata"],
)


class PgRunningServerStore(RunningServerStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, server: RunningServer) -> RunningServer:
        row = await self._db.fetch_required(SERVERS.insert_sql, SERVERS.params(server))
        return SERVERS.decode(row)

    async def get(self, server_id: str) -> RunningServer | None:
        if not is_uuid(server_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_running_servers WHERE id = %s", (server_id,)
        )
        return SERVERS.decode(row) if row else None

    async def update(self, server_id: str, patch: RunningServerUpdate) -> RunningServer:
        changes = SERVERS.patch_params(patch)
        row = None
        if is_uuid(server_id):
            row = await self._db.fetch_one(
                SERVERS.update_sql(changes), {**changes, "id": server_id}
            )
        if row is None:
            raise NotFound("server not found", details={"server_id": server_id})
        return SERVERS.decode(row)

    async def list_active(self, deployment_id: str | None = None) -> list[RunningServer]:
        if deployment_id is None:
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_running_servers WHERE stopped_at IS NULL"
                " ORDER BY started_at DESC, id DESC"
            )
        elif not is_uuid(deployment_id):
            return []
        else:
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_running_servers"
                " WHERE stopped_at IS NULL AND deployment_id = %s"
                " ORDER BY started_at DESC, id DESC",
                (deployment_id,),
            )
        return SERVERS.decode_all(rows)

    async def list_for_deployment(
        self, deployment_id: str, *, limit: int = 50
    ) -> list[RunningServer]:
        if not is_uuid(deployment_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_running_servers WHERE deployment_id = %s"
            " ORDER BY started_at DESC, id DESC LIMIT %s",
            (deployment_id, limit),
        )
        return SERVERS.decode_all(rows)

    async def list_unhealthy(self, stale_before: datetime) -> list[RunningServer]:
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_running_servers"
            " WHERE stopped_at IS NULL AND (health_status = 'unhealthy'"
            "   OR last_health_check IS NULL OR last_health_check < %s)"
            " ORDER BY started_at, id",
            (stale_before,),
        )
        return SERVERS.decode_all(rows)

    async def delete_stopped(self, before: datetime) -> int:
        return await self._db.execute(
            "DELETE FROM {schema}.admin_running_servers"
            " WHERE stopped_at IS NOT NULL AND stopped_at < %s",
            (before,),
        )
