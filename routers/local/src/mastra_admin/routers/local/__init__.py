"""The local edge router: ``{project}-{branch}.{team}.{base_domain}`` on one port,
proxied (streaming, WebSocket included) to the deployments' local servers."""

from mastra_admin.routers.local._router import LocalEdgeRouter
from mastra_admin.routers.local._settings import LocalRouterSettings
from mastra_admin.routers.local._static import StaticRouteStore
from mastra_admin.routers.local.version import __version__

__all__ = ["LocalEdgeRouter", "LocalRouterSettings", "StaticRouteStore", "__version__"]
