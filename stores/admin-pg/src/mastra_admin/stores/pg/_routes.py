"""Routes: public host names pointing at running servers."""

from __future__ import annotations

from collections.abc import Collection

from mastra_admin.core.errors import NotFound
from mastra_admin.core.models import Route, RouteStatus
from mastra_admin.core.storage import RouteStore, RouteUpdate

from ._db import Database, is_uuid
from ._tables import Table

__all__ = ["PgRouteStore"]

ROUTES = Table(
    "admin_routes",
    Route,
    "id deployment_id project_id subdomain target_host target_port public_url status"
    " tls_enabled provider_route_id metadata created_at updated_at last_health_check",
    json_columns=["metadata"],
)


class PgRouteStore(RouteStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, route: Route) -> Route:
        return ROUTES.decode(await self._db.fetch_required(ROUTES.insert_sql, ROUTES.params(route)))

    async def get(self, route_id: str) -> Route | None:
        if not is_uuid(route_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_routes WHERE id = %s", (route_id,)
        )
        return ROUTES.decode(row) if row else None

    async def get_by_deployment(self, deployment_id: str) -> Route | None:
        if not is_uuid(deployment_id):
            return None
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_routes WHERE deployment_id = %s", (deployment_id,)
        )
        return ROUTES.decode(row) if row else None

    async def get_by_subdomain(self, subdomain: str) -> Route | None:
        row = await self._db.fetch_one(
            "SELECT * FROM {schema}.admin_routes WHERE subdomain = %s", (subdomain,)
        )
        return ROUTES.decode(row) if row else None

    async def update(self, route_id: str, patch: RouteUpdate) -> Route:
        changes = ROUTES.patch_params(patch)
        row = None
        if is_uuid(route_id):
            row = await self._db.fetch_one(ROUTES.update_sql(changes), {**changes, "id": route_id})
        if row is None:
            raise NotFound("route not found", details={"route_id": route_id})
        return ROUTES.decode(row)

    async def delete(self, route_id: str) -> bool:
        if not is_uuid(route_id):
            return False
        deleted = await self._db.execute(
            "DELETE FROM {schema}.admin_routes WHERE id = %s", (route_id,)
        )
        return deleted > 0

    async def list_for_project(self, project_id: str) -> list[Route]:
        if not is_uuid(project_id):
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM {schema}.admin_routes WHERE project_id = %s ORDER BY subdomain",
            (project_id,),
        )
        return ROUTES.decode_all(rows)

    async def list_all(self, statuses: Collection[RouteStatus] | None = None) -> list[Route]:
        if statuses is None:
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_routes ORDER BY subdomain"
            )
        else:
            wanted = [RouteStatus(s).value for s in statuses]
            if not wanted:
                return []
            rows = await self._db.fetch_all(
                "SELECT * FROM {schema}.admin_routes WHERE status = ANY(%s) ORDER BY subdomain",
                (wanted,),
            )
        return ROUTES.decode_all(rows)
