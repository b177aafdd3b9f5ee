"""Registers the router ``caddy`` (entry point ``router-caddy`` in the ``mastra_admin`` group)."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.routers.caddy._router import CaddyEdgeRouter
from mastra_admin.routers.caddy._settings import CaddyRouterSettings

__all__ = ["create_router", "mastra_admin_providers"]


def create_router(settings: CaddyRouterSettings, context: ProviderContext) -> CaddyEdgeRouter:
    """The factory: routes and verified custom domains come from the admin storage,
    access logs go to the file storage, and Caddy's files (admin socket, certificates,
    its log) live in ``{data_dir}/router/caddy``; the base domain defaults to the
    installation's."""
    if context.storage is None:
        raise Unavailable("the Caddy router keeps its routes in the admin storage; none is set up")
    defaults: dict[str, object] = {}
    if settings.base_domain is None:
        defaults["base_domain"] = context.settings.base_domain
    if settings.state_dir is None:
        defaults["state_dir"] = context.data_dir / "router" / "caddy"
    if defaults:
        settings = CaddyRouterSettings.model_validate({**settings.model_dump(), **defaults})
    return CaddyEdgeRouter(
        settings,
        context.storage.routes,
        # The storage's domain store arrives with custom domains; older storages have none.
        domains=getattr(context.storage, "domains", None),
        file_storage=context.file_storage,
    )


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="router",
            name="caddy",
            settings_model=CaddyRouterSettings,
            factory=create_router,
            description="Caddy as the edge, configured through its admin API: HTTPS with "
            "on-demand certificates (internal CA or ACME), HTTP/2, compression, custom "
            "domains, access logs into the runtime logs.",
        )
    ]
