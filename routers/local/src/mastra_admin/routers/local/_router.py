"""``LocalEdgeRouter``: the routes of deployments, persisted in the admin storage and
served by a reverse proxy listening on one port.

The storage's route store is the source of truth; the proxy serves an in-memory
copy (``HostTable``) that every change updates at once, that ``start`` restores, and
that a periodic reload keeps in step with routes changed by other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
from pathlib import Path
from typing import ClassVar

import structlog

from mastra_admin.core.errors import NotFound, Unavailable
from mastra_admin.core.models import Route, RouteStatus
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig, RouteHealth
from mastra_admin.core.routing import (
    RouteProber,
    StoredRoutes,
    check_routes,
    check_subdomain,
    health_loop,
    public_url,
)
from mastra_admin.core.storage import RouteStore, RouteUpdate
from mastra_admin.routers.local._engine import ProxyEngine
from mastra_admin.routers.local._hosts import HostTable
from mastra_admin.routers.local._settings import LocalRouterSettings
from mastra_admin.routers.local._tls import LocalCertificateAuthority, server_context

__all__ = ["LocalEdgeRouter"]

_log = structlog.get_logger("mastra_admin.routers.local")

_DEFAULT_TLS_DIR = Path(".mastra-admin") / "router" / "tls"
_SHUTDOWN_GRACE_S = 2.0


class LocalEdgeRouter(EdgeRouterProvider):
    """Routes ``{subdomain}.{base_domain}`` to local servers through one proxy port.

    ::

        router = LocalEdgeRouter(LocalRouterSettings(port=8080), storage.routes)
        await router.start()
        route = await router.register_route(RouteConfig(
            deployment_id=d.id, project_id=p.id, subdomain="shop-main.search",
            target_host="127.0.0.1", target_port=4101))
        route.public_url  # 'http://shop-main.search.localhost:8080'
    """

    type: ClassVar[str] = "local"

    def __init__(self, settings: LocalRouterSettings, routes: RouteStore) -> None:
        self.settings = settings
        self.base_domain = settings.base_domain or "localhost"
        self._routes = routes
        self._stored = StoredRoutes(routes, self.base_domain, _log)
        # The session of health probes (the proxy has its own upstream pool).
        self._prober = RouteProber(
            health_path=settings.health_path,
            timeout_s=settings.health_timeout_s,
            keepalive_s=settings.upstream_keepalive_s,
        )
        self._table = HostTable(self.base_domain)
        self._engine: ProxyEngine | None = None
        self._listener: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bound_port: int | None = None
        self._ca: LocalCertificateAuthority | None = None
        # Bumped by every change made here, so that a reload that read the store
        # before the change does not put the old target back.
        self._version = 0
        self._started = False

    # --- addresses -----------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return self.settings.scheme or ("https" if self.settings.tls else "http")

    @property
    def port(self) -> int:
        """The port the proxy listens on (the chosen one once started with port 0)."""
        return self._bound_port if self._bound_port is not None else self.settings.port

    @property
    def ca_file(self) -> Path | None:
        """The local CA certificate to trust, when TLS uses generated certificates."""
        return self._ca.ca_file if self._ca is not None else None

    def public_url(self, subdomain: str) -> str:
        port = self.settings.public_port or self.port
        return public_url(self.scheme, subdomain, self.base_domain, port)

    # --- lifecycle -----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls:
            return None
        if s.tls_cert_file is not None:
            return server_context(s.tls_cert_file, s.tls_key_file)
        self._ca = LocalCertificateAuthority(s.tls_dir or _DEFAULT_TLS_DIR, self.base_domain)
        return self._ca.ssl_context()

    async def start(self) -> None:
        if self._listener is not None or self._started:
            return
        s = self.settings
        routes = await self._routes.list_all()
        self._table.replace_all(routes)
        self._started = True
        if s.listen == "never":
            self._log_routes_only("listen is 'never'")
            return
        engine = ProxyEngine(
            self._table,
            scheme="https" if s.tls else "http",
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            upstream_keepalive_s=s.upstream_keepalive_s,
            client_keepalive_s=s.keepalive_timeout_s,
            header_timeout_s=s.header_timeout_s,
            body_idle_timeout_s=s.body_idle_timeout_s,
            max_connections_per_client=s.max_connections_per_client,
            max_upstream_connections=s.max_upstream_connections,
        )
        try:
            # Reading or making certificates is file work and key generation: off the loop.
            context = await asyncio.to_thread(self._ssl_context)
        except (OSError, ValueError, ssl.SSLError) as exc:
            self._started = False
            raise Unavailable(f"the router cannot set up TLS: {exc}") from exc
        try:
            listener = await asyncio.get_running_loop().create_server(
                engine,
                s.host,
                s.port,
                ssl=context,
                # A TLS handshake comes before any request head: the same bound (the
                # engine sees a connection, and counts it per client, only after it).
                ssl_handshake_timeout=s.header_timeout_s if context is not None else None,
                reuse_address=True,
                backlog=1024,
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and s.listen == "auto":
                self._log_routes_only(f"{s.host}:{s.port} is in use")
                return
            self._started = False
            raise Unavailable(
                f"the router cannot listen on {s.host}:{s.port}: {exc.strerror or exc}",
                details={"host": s.host, "port": s.port},
            ) from exc
        self._engine, self._listener = engine, listener
        self._bound_port = listener.sockets[0].getsockname()[1]
        await self._refresh_public_urls(routes)
        self._tasks.append(asyncio.create_task(self._sweep_loop(), name="router-sweep"))
        if s.health_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._health_loop(), name="router-health"))
        if s.sync_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._sync_loop(), name="router-sync"))
        _log.info(
            "router.started",
            host=s.host,
            port=self._bound_port,
            base_domain=self.base_domain,
            scheme=self.scheme,
            routes=len(self._table),
            ca_file=str(self.ca_file) if self.ca_file else None,
        )

    @property
    def serving(self) -> bool:
        """Whether this process's router listens (others only keep routes in storage)."""
        return self._listener is not None

    def _log_routes_only(self, reason: str) -> None:
        _log.warning(
            "router.not_listening",
            reason=reason,
            note="routes are kept in storage; the process listening on the port serves them",
        )

    async def _hand_over(self) -> None:
        """Without a listener of our own, a re-point reaches the serving process with
        its next reload; wait for it, so that a caller stopping the previous server
        next (a deploy) fails no request."""
        if self._started and self._listener is None and self.settings.sync_interval_s > 0:
            await asyncio.sleep(self.settings.sync_interval_s * 1.25 + 0.25)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._listener is not None:
            self._listener.close()
        if self._engine is not None:
            await self._engine.shutdown(_SHUTDOWN_GRACE_S)
        if self._listener is not None:
            await self._listener.wait_closed()
            _log.info("router.stopped", port=self._bound_port)
        self._listener = None
        self._engine = None
        self._started = False
        await self._prober.close()

    async def _sweep_loop(self) -> None:
        while self._engine is not None:
            await asyncio.sleep(self._engine.sweep_interval_s)
            self._engine.sweep()

    async def _refresh_public_urls(self, routes: list[Route]) -> None:
        """Routes saved while the router had another port or domain get today's URL."""
        for route in routes:
            url = self.public_url(route.subdomain)
            if route.public_url != url:
                with contextlib.suppress(NotFound):
                    await self._routes.update(route.id, RouteUpdate(public_url=url))

    # --- routes --------------------------------------------------------------------

    def _publish(self, route: Route) -> Route:
        self._version += 1
        self._table.put(route)
        return route

    async def register_route(self, config: RouteConfig) -> Route:
        subdomain = check_subdomain(config.subdomain, self.base_domain)
        route, event = await self._stored.save(
            config,
            subdomain=subdomain,
            target_host=config.target_host,
            public_url=self.public_url(subdomain),
            tls=self.scheme == "https",
            remove=self.remove_route,
        )
        self._publish(route)
        if event == "route.repointed":
            await self._hand_over()
        _log.info(
            event,
            route_id=route.id,
            deployment_id=route.deployment_id,
            host=f"{subdomain}.{self.base_domain}",
            target=f"{route.target_host}:{route.target_port}",
        )
        return route

    async def update_route(self, route_id: str, *, target_host: str, target_port: int) -> Route:
        route = await self._stored.repoint(route_id, target_host, target_port)
        self._publish(route)
        await self._hand_over()
        _log.info(
            "route.repointed",
            route_id=route.id,
            deployment_id=route.deployment_id,
            target=f"{target_host}:{target_port}",
        )
        return route

    async def set_route_status(self, route_id: str, status: RouteStatus) -> Route:
        _, route = await self._stored.set_status(route_id, status)
        return self._publish(route)

    async def remove_route(self, route_id: str) -> None:
        removed = await self._stored.delete(route_id)
        self._version += 1
        self._table.remove(route_id)
        if removed:
            _log.info("route.removed", route_id=route_id)

    async def get_route(self, deployment_id: str) -> Route | None:
        return await self._stored.for_deployment(deployment_id)

    async def list_routes(self, project_id: str | None = None) -> list[Route]:
        return await self._stored.list(project_id)

    # --- health --------------------------------------------------------------------

    async def probe(self, target_host: str, target_port: int) -> RouteHealth:
        """``GET {health_path}`` on a target: healthy on 2xx/3xx within the timeout."""
        return await self._prober.probe(target_host, target_port)

    async def check_route_health(self, route_id: str) -> RouteHealth:
        health, updated = await self._stored.check_health(route_id, self.probe)
        self._publish(updated)
        return health

    async def check_all(self) -> dict[str, RouteHealth]:
        """Check every route that is not stopped, a few at a time."""
        targets = [t.route_id for t in self._table.targets() if not t.stopped]
        return await check_routes(targets, self.check_route_health)

    async def _health_loop(self) -> None:
        await health_loop(self.settings.health_interval_s, self.check_all, _log)

    async def _sync_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.sync_interval_s)
            version = self._version
            try:
                routes = await self._routes.list_all()
            except Exception as exc:  # storage down: keep serving the routes we have
                if not failing:
                    _log.warning("router.reload_failed", error=str(exc))
                failing = True
                continue
            if failing:
                _log.info("router.reload_recovered")
                failing = False
            if version == self._version:
                self._table.replace_all(routes)

    def __repr__(self) -> str:
        return (
            f"LocalEdgeRouter({self.settings.host}:{self.port}, "
            f"base_domain={self.base_domain!r}, routes={len(self._table)})"
        )
