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
import re
import ssl
import time
from pathlib import Path
from typing import ClassVar

import structlog
from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector

from mastra_admin.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from mastra_admin.core.models import Route, RouteStatus
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig, RouteHealth
from mastra_admin.core.storage import RouteStore, RouteUpdate
from mastra_admin.routers.local._engine import ProxyEngine
from mastra_admin.routers.local._hosts import HostTable
from mastra_admin.routers.local._settings import LocalRouterSettings
from mastra_admin.routers.local._tls import LocalCertificateAuthority, server_context

__all__ = ["LocalEdgeRouter"]

_log = structlog.get_logger("mastra_admin.routers.local")

_SUBDOMAIN = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_DEFAULT_TLS_DIR = Path(".mastra-admin") / "router" / "tls"
_HEALTH_CONCURRENCY = 8
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
        self._table = HostTable(self.base_domain)
        self._session: ClientSession | None = None
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
        default = 443 if self.scheme == "https" else 80
        suffix = "" if port == default else f":{port}"
        return f"{self.scheme}://{subdomain.lower()}.{self.base_domain}{suffix}"

    # --- lifecycle -----------------------------------------------------------------

    def _client(self) -> ClientSession:
        """The session of health probes (the proxy has its own upstream pool)."""
        if self._session is None or self._session.closed:
            self._session = ClientSession(
                connector=TCPConnector(
                    limit=32, keepalive_timeout=self.settings.upstream_keepalive_s
                ),
                cookie_jar=DummyCookieJar(),
                trust_env=False,
            )
        return self._session

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
        if self._session is not None:
            await self._session.close()
            self._session = None

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

    def _subdomain(self, value: str) -> str:
        subdomain = value.strip().strip(".").lower()
        if not _SUBDOMAIN.match(subdomain) or len(subdomain) + len(self.base_domain) > 252:
            raise InvalidInput(
                f"{value!r} is not a valid subdomain (letters, digits, '-' and '_' in "
                "dot-separated labels of at most 63 characters)",
                details={"field": "subdomain"},
            )
        return subdomain

    def _publish(self, route: Route) -> Route:
        self._version += 1
        self._table.put(route)
        return route

    async def _get(self, route_id: str) -> Route:
        route = await self._routes.get(route_id)
        if route is None:
            raise NotFound(f"route {route_id} does not exist", details={"route_id": route_id})
        return route

    async def register_route(self, config: RouteConfig) -> Route:
        subdomain = self._subdomain(config.subdomain)
        tls = self.scheme == "https"
        if config.tls and not tls:
            _log.warning("route.tls_unavailable", subdomain=subdomain)
        holder = await self._routes.get_by_subdomain(subdomain)
        if holder is not None and holder.deployment_id != config.deployment_id:
            raise Conflict(
                f"{subdomain}.{self.base_domain} is already routed to another deployment",
                details={"field": "subdomain"},
            )
        existing = await self._routes.get_by_deployment(config.deployment_id)
        if existing is not None and existing.subdomain != subdomain:
            # The deployment moved to another host name: the old one stops answering.
            await self.remove_route(existing.id)
            existing = None
        if existing is None:
            route = await self._routes.create(
                Route(
                    deployment_id=config.deployment_id,
                    project_id=config.project_id,
                    subdomain=subdomain,
                    target_host=config.target_host,
                    target_port=config.target_port,
                    public_url=self.public_url(subdomain),
                    status=RouteStatus.ACTIVE,
                    tls_enabled=tls,
                )
            )
            event = "route.registered"
        else:
            route = await self._routes.update(
                existing.id,
                RouteUpdate(
                    target_host=config.target_host,
                    target_port=config.target_port,
                    public_url=self.public_url(subdomain),
                    status=RouteStatus.ACTIVE,
                    tls_enabled=tls,
                ),
            )
            event = "route.repointed"
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
        if not 0 < target_port < 65536:
            raise InvalidInput(
                f"target port {target_port} is out of range", details={"field": "target_port"}
            )
        await self._get(route_id)
        route = await self._routes.update(
            route_id, RouteUpdate(target_host=target_host, target_port=target_port)
        )
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
        previous = await self._get(route_id)
        route = await self._routes.update(route_id, RouteUpdate(status=status))
        self._publish(route)
        if previous.status != status:
            _log.info("route.status_changed", route_id=route_id, status=str(status))
        return route

    async def remove_route(self, route_id: str) -> None:
        removed = await self._routes.delete(route_id)
        self._version += 1
        self._table.remove(route_id)
        if removed:
            _log.info("route.removed", route_id=route_id)

    async def get_route(self, deployment_id: str) -> Route | None:
        return await self._routes.get_by_deployment(deployment_id)

    async def list_routes(self, project_id: str | None = None) -> list[Route]:
        if project_id is None:
            return await self._routes.list_all()
        return await self._routes.list_for_project(project_id)

    # --- health --------------------------------------------------------------------

    async def probe(self, target_host: str, target_port: int) -> RouteHealth:
        """``GET {health_path}`` on a target: healthy on 2xx/3xx within the timeout."""
        netloc = f"[{target_host}]" if ":" in target_host else target_host
        url = f"http://{netloc}:{target_port}{self.settings.health_path}"
        started = time.perf_counter()
        try:
            async with self._client().get(
                url,
                allow_redirects=False,
                timeout=ClientTimeout(total=self.settings.health_timeout_s),
            ) as response:
                await response.read()
                latency = (time.perf_counter() - started) * 1000
                return RouteHealth(
                    healthy=200 <= response.status < 400,
                    latency_ms=latency,
                    status_code=response.status,
                    error=None if response.status < 400 else f"status {response.status}",
                )
        except (ClientError, TimeoutError) as exc:
            message = (
                "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
            )
            return RouteHealth(
                healthy=False, latency_ms=(time.perf_counter() - started) * 1000, error=message
            )

    async def check_route_health(self, route_id: str) -> RouteHealth:
        route = await self._get(route_id)
        health = await self.probe(route.target_host, route.target_port)
        if route.status is RouteStatus.STOPPED:
            status = RouteStatus.STOPPED  # a stopped deployment stays stopped
        else:
            status = RouteStatus.ACTIVE if health.healthy else RouteStatus.UNHEALTHY
        updated = await self._routes.update(
            route_id, RouteUpdate(status=status, last_health_check=health.checked_at)
        )
        self._publish(updated)
        if route.status != status:
            _log.info(
                "route.health_changed",
                route_id=route_id,
                status=str(status),
                error=health.error,
            )
        return health

    async def check_all(self) -> dict[str, RouteHealth]:
        """Check every route that is not stopped, a few at a time."""
        gate = asyncio.Semaphore(_HEALTH_CONCURRENCY)
        results: dict[str, RouteHealth] = {}

        async def one(route_id: str) -> None:
            async with gate:
                try:
                    results[route_id] = await self.check_route_health(route_id)
                except NotFound:
                    pass  # removed meanwhile

        targets = [t for t in self._table.targets() if not t.stopped]
        await asyncio.gather(*(one(t.route_id) for t in targets))
        return results

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                await self.check_all()
            except Exception as exc:  # storage down: try again next round
                _log.warning("router.health_round_failed", error=str(exc))

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
