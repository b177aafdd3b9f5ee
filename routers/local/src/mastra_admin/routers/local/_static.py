"""``StaticRouteStore``: routes held in this process, for a router run on its own
(``python -m mastra_admin.routers.local``) or embedded without an admin storage."""

from __future__ import annotations

from collections.abc import Collection

from mastra_admin.core.errors import Conflict, NotFound
from mastra_admin.core.models import Route, RouteStatus, utcnow
from mastra_admin.core.storage import RouteStore, RouteUpdate

__all__ = ["StaticRouteStore"]


class StaticRouteStore(RouteStore):
    """A ``RouteStore`` in a dict: nothing survives the process."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    async def create(self, route: Route) -> Route:
        for other in self._routes.values():
            if other.subdomain == route.subdomain:
                raise Conflict("a route with this subdomain exists", details={"field": "subdomain"})
            if other.deployment_id == route.deployment_id:
                raise Conflict(
                    "a route for this deployment exists", details={"field": "deployment_id"}
                )
        self._routes[route.id] = route.model_copy(deep=True)
        return route.model_copy(deep=True)

    async def get(self, route_id: str) -> Route | None:
        route = self._routes.get(route_id)
        return route.model_copy(deep=True) if route else None

    async def get_by_deployment(self, deployment_id: str) -> Route | None:
        for route in self._routes.values():
            if route.deployment_id == deployment_id:
                return route.model_copy(deep=True)
        return None

    async def get_by_subdomain(self, subdomain: str) -> Route | None:
        for route in self._routes.values():
            if route.subdomain == subdomain:
                return route.model_copy(deep=True)
        return None

    async def update(self, route_id: str, patch: RouteUpdate) -> Route:
        route = self._routes.get(route_id)
        if route is None:
            raise NotFound(f"route {route_id} does not exist", details={"route_id": route_id})
        updated = route.model_copy(update={**patch.changes(), "updated_at": utcnow()}, deep=True)
        self._routes[route_id] = Route.model_validate(updated.model_dump())
        return updated

    async def delete(self, route_id: str) -> bool:
        return self._routes.pop(route_id, None) is not None

    async def list_for_project(self, project_id: str) -> list[Route]:
        found = [r for r in self._routes.values() if r.project_id == project_id]
        return sorted((r.model_copy(deep=True) for r in found), key=lambda r: r.subdomain)

    async def list_all(self, statuses: Collection[RouteStatus] | None = None) -> list[Route]:
        wanted = set(statuses) if statuses is not None else None
        found = [r for r in self._routes.values() if wanted is None or r.status in wanted]
        return sorted((r.model_copy(deep=True) for r in found), key=lambda r: r.subdomain)
