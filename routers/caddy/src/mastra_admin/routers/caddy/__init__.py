"""The Caddy edge router: ``{project}-{branch}.{team}.{base_domain}`` and verified custom
domains served by Caddy, which the router runs (or an operator runs) and configures
through its admin API only."""

from mastra_admin.routers.caddy._router import CaddyEdgeRouter
from mastra_admin.routers.caddy._settings import CaddyRouterSettings
from mastra_admin.routers.caddy.version import __version__

__all__ = ["CaddyEdgeRouter", "CaddyRouterSettings", "__version__"]
