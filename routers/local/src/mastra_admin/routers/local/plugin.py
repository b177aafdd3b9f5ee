"""Registers the router ``local`` (entry point ``router-local`` in the ``mastra_admin`` group)."""

from __future__ import annotations

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.routers.local._router import LocalEdgeRouter
from mastra_admin.routers.local._settings import LocalRouterSettings

__all__ = ["create_router", "mastra_admin_providers"]


def create_router(settings: LocalRouterSettings, context: ProviderContext) -> LocalEdgeRouter:
    """The factory: routes live in the admin storage; the base domain defaults to the
    installation's and generated TLS material goes to ``{data_dir}/router/tls``."""
    if context.storage is None:
        raise Unavailable("the local router keeps its routes in the admin storage; none is set up")
    defaults: dict[str, object] = {}
    if settings.base_domain is None:
        defaults["base_domain"] = context.settings.base_domain
    if settings.tls_dir is None:
        defaults["tls_dir"] = context.data_dir / "router" / "tls"
    if defaults:
        settings = LocalRouterSettings.model_validate({**settings.model_dump(), **defaults})
    return LocalEdgeRouter(settings, context.storage.routes)


@hookimpl
def mastra_admin_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            kind="router",
            name="local",
            settings_model=LocalRouterSettings,
            factory=create_router,
            description="Subdomain reverse proxy on one local port (aiohttp; streaming, "
            "WebSocket, optional TLS with a local CA).",
        )
    ]
