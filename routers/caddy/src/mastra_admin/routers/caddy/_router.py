"""``CaddyEdgeRouter``: the routes of deployments, persisted in the admin storage and
served by Caddy, configured through its admin API.

The storage is the source of truth: every change is written there first, then Caddy
is given the whole configuration made from the storage's routes (one ``POST /load``,
changes arriving together coalesced into one), and the change returns once Caddy
serves it. A periodic check re-applies the storage when other processes changed it or
when Caddy lost the configuration (restarted, wiped by hand).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import structlog

from mastra_admin.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.hostnames import normalise_hostname
from mastra_admin.core.models import DomainStatus, Route, RouteStatus
from mastra_admin.core.observability_writer import ObservabilityWriter
from mastra_admin.core.router import CertificateState, EdgeRouterProvider, RouteConfig, RouteHealth
from mastra_admin.core.routing import (
    RouteProber,
    StoredRoutes,
    check_routes,
    dial_address,
    health_loop,
    public_url,
)
from mastra_admin.core.storage import DomainStore, RouteStore, RouteUpdate
from mastra_admin.routers.caddy._access_log import AccessLogTail, ship
from mastra_admin.routers.caddy._admin import CaddyAdmin, CaddyAdminError, CaddyConfigRefused
from mastra_admin.routers.caddy._binary import find_caddy
from mastra_admin.routers.caddy._certificates import certificate_in_file, stored_certificate
from mastra_admin.routers.caddy._config import EdgeLayout, build_config
from mastra_admin.routers.caddy._hosts import (
    HostTable,
    canonical_host,
    check_subdomain,
    check_target_host,
)
from mastra_admin.routers.caddy._ownership import EdgeLock
from mastra_admin.routers.caddy._permission import PermissionEndpoint
from mastra_admin.routers.caddy._process import ManagedCaddy
from mastra_admin.routers.caddy._settings import CaddyRouterSettings, parse_admin_address

__all__ = ["CaddyEdgeRouter"]

_log = structlog.get_logger("mastra_admin.routers.caddy")

_DEFAULT_STATE_DIR = Path(".mastra-admin") / "router" / "caddy"
_MAX_DOMAINS_PER_DEPLOYMENT = 100
_SHIP_INTERVAL_S = 0.5
_SOCKET_PATH_MAX = 100
"""Unix socket paths hold at most 107 bytes; deeper state dirs get a private temp dir
for the admin socket."""
_DRAIN_POLL_S = 0.1
_MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host or "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _warn_if_reloads_reset_connections() -> None:
    """Caddy binds a fresh SO_REUSEPORT listener on every reload and closes the old
    one: without ``net.ipv4.tcp_migrate_req`` (Linux 5.14+), connections waiting in the
    old listener's queue are reset. Only the operator can change a kernel setting."""
    try:
        value = _MIGRATE_REQ.read_text().strip()
    except OSError:
        return
    if value == "0":
        _log.warning(
            "kernel.tcp_migrate_req_off",
            note="every route change reloads Caddy; a few connections opened during a "
            "reload are reset unless net.ipv4.tcp_migrate_req=1 (sysctl)",
        )


class CaddyEdgeRouter(EdgeRouterProvider):
    """Routes ``{subdomain}.{base_domain}`` (and verified custom domains) through Caddy.

    ::

        router = CaddyEdgeRouter(CaddyRouterSettings(tls="internal"), storage.routes,
                                 domains=storage.domains, file_storage=files)
        await router.start()             # starts and configures its own Caddy
        route = await router.register_route(RouteConfig(
            deployment_id=d.id, project_id=p.id, subdomain="shop-main.search",
            target_host="127.0.0.1", target_port=4101))
        route.public_url  # 'https://shop-main.search.localhost:8443'
    """

    type: ClassVar[str] = "caddy"
    serves_custom_domains: ClassVar[bool] = True

    def __init__(
        self,
        settings: CaddyRouterSettings,
        routes: RouteStore,
        *,
        domains: DomainStore | None = None,
        file_storage: FileStorageProvider | None = None,
    ) -> None:
        self.settings = settings
        self.base_domain = settings.base_domain or "localhost"
        self.state_dir = (settings.state_dir or _DEFAULT_STATE_DIR).absolute()
        self._routes = routes
        self._stored = StoredRoutes(routes, self.base_domain, _log)
        self._prober = RouteProber(
            health_path=settings.health_path,
            timeout_s=settings.health_timeout_s,
            keepalive_s=settings.upstream_keepalive_s,
        )
        self._domain_store = domains
        self._file_storage = file_storage
        self._table = HostTable(self.base_domain)
        self._domains: dict[str, tuple[str, ...]] = {}
        self._lock = EdgeLock(self.state_dir / "edge.lock")
        self._http_port = settings.http_port
        self._https_port = settings.https_port
        self._socket_dir: Path | None = None
        self._own_socket_dir = False
        self._admin: CaddyAdmin | None = None
        self._caddy: ManagedCaddy | None = None
        self._permission: PermissionEndpoint | None = None
        self._tail: AccessLogTail | None = None
        self._writer: ObservabilityWriter | None = None
        self._layout: EdgeLayout | None = None
        self._marker: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._owner_tasks: list[asyncio.Task[None]] = []
        # Applying: requests get increasing tickets; one task loads what the storage
        # holds when it starts, and answers every ticket up to the one it started at.
        self._requested = 0
        self._force = False
        self._wake = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._started = False

    # --- addresses -----------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return self.settings.scheme

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def https_port(self) -> int:
        return self._https_port

    @property
    def port(self) -> int:
        """The port requests are served on (HTTPS when TLS is on)."""
        return self._https_port if self.settings.tls != "off" else self._http_port

    @property
    def managed(self) -> bool:
        """Whether this router runs its own Caddy (no ``admin_address`` given)."""
        return self.settings.admin_address is None

    @property
    def admin_address(self) -> str:
        if self.settings.admin_address is not None:
            return self.settings.admin_address
        return f"unix/{self._sockets() / 'admin.sock'}"

    @property
    def storage_root(self) -> Path:
        """Caddy's storage (certificates, the internal CA)."""
        return self.state_dir / "data"

    @property
    def ca_file(self) -> Path | None:
        """The internal CA's root certificate, for clients to trust (``tls = "internal"``)."""
        if self.settings.tls != "internal":
            return None
        return self.storage_root / "pki" / "authorities" / "local" / "root.crt"

    @property
    def caddy_pid(self) -> int | None:
        return self._caddy.pid if self._caddy is not None else None

    @property
    def serving(self) -> bool:
        """Whether this process drives Caddy (others keep routes in storage only)."""
        return self._lock.held and self._layout is not None

    def public_url(self, subdomain: str) -> str:
        port = self.settings.public_port or self.port
        return public_url(self.scheme, subdomain, self.base_domain, port)

    def _sockets(self) -> Path:
        if self._socket_dir is None:
            if len(str(self.state_dir / "admin.sock")) <= _SOCKET_PATH_MAX:
                self._socket_dir = self.state_dir
            else:
                self._socket_dir = Path(tempfile.mkdtemp(prefix="mastra-caddy-"))
                self._own_socket_dir = True
        return self._socket_dir

    # --- lifecycle -----------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        """The state dir is private (0700): it holds the admin socket and the CA's key.
        An operator's Caddy may run as another user sharing it, so only a dir this
        router created, or its own Caddy's, is made private."""
        for folder in (self.state_dir, self.storage_root):
            existed = folder.is_dir()
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.managed or not existed:
                folder.chmod(0o700)
        if self._own_socket_dir or self.managed:
            self._sockets().chmod(0o700)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await asyncio.to_thread(self._prepare_dirs)
            s = self.settings
            if self._http_port == 0:
                self._http_port = _free_port(s.listen_host)
            if s.tls != "off" and self._https_port == 0:
                self._https_port = _free_port(s.listen_host)
            self._admin = CaddyAdmin(self.admin_address)
            await self._reload_domains()
            routes = await self._routes.list_all()
            self._table.replace(routes, self._domains)
            await self._refresh_public_urls(routes)
            if s.drive == "never":
                _log.info("router.not_driving_caddy", reason="drive is 'never'")
            elif self._lock.try_acquire():
                await self._become_owner()
            else:
                _log.warning(
                    "router.not_driving_caddy",
                    reason="another process of this installation drives Caddy",
                    note="routes are kept in storage; that process applies them",
                )
        except BaseException:
            await self.close()
            raise
        if s.sync_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._sync_loop(), name="caddy-router-sync"))
        if s.health_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._health_loop(), name="caddy-router-health"))
        _log.info(
            "router.started",
            provider="caddy",
            managed=self.managed,
            driving=self.serving,
            base_domain=self.base_domain,
            scheme=self.scheme,
            http_port=self._http_port,
            https_port=self._https_port if s.tls != "off" else None,
            routes=len(routes),
            ca_file=str(self.ca_file) if self.ca_file else None,
        )

    def _admin_origins(self) -> tuple[str, ...]:
        network, host, port = parse_admin_address(self.admin_address)
        if network == "unix":
            return ("localhost",)
        names = {host, "localhost", "127.0.0.1", "::1"}
        return tuple(sorted(dial_address(name, port) for name in names))

    def _admin_listen(self) -> str:
        address = self.admin_address
        if self.managed:
            return f"{address}|0600"
        return address

    async def _become_owner(self) -> None:
        """Take up the edge: permission endpoint, access-log socket, Caddy itself, and
        the first load of the configuration."""
        s = self.settings
        assert self._admin is not None
        await asyncio.to_thread(_warn_if_reloads_reset_connections)
        if s.tls in ("internal", "acme"):
            self._permission = PermissionEndpoint(self._table.__contains__)
            await self._permission.start()
        log_file: Path | None = None
        if s.access_logs and self._file_storage is not None:
            log_file = s.access_log_file or self.state_dir / "access.log"
            self._tail = AccessLogTail(log_file, self.state_dir / "access.offset")
            self._writer = ObservabilityWriter(self._file_storage)
            await self._writer.start()
            self._owner_tasks.append(
                asyncio.create_task(self._ship_loop(), name="caddy-router-access-log")
            )
        elif s.access_logs:
            _log.info("router.access_logs_off", reason="no file storage is set up")
        self._layout = EdgeLayout(
            settings=s,
            base_domain=self.base_domain,
            admin_listen=self._admin_listen(),
            admin_origins=self._admin_origins(),
            http_port=self._http_port,
            https_port=self._https_port,
            storage_root=self.storage_root,
            permission_url=self._permission.url if self._permission is not None else None,
            access_log_file=log_file,
            caddy_log_file=self.state_dir / "caddy.log" if self.managed else None,
        )
        self._owner_tasks.append(asyncio.create_task(self._apply_loop(), name="caddy-router-apply"))
        if self.managed:
            self._caddy = ManagedCaddy(
                find_caddy(s.caddy_binary),
                self.state_dir,
                self._admin,
                self._admin_listen(),
                self._admin_origins(),
                on_ready=self._configure_fresh_caddy,
            )
            await self._caddy.start()
        else:
            try:
                await self._request(force=True)
            except CaddyConfigRefused:
                raise
            except CaddyAdminError as exc:
                # The operator's Caddy may come up later: the periodic check loads it then.
                _log.warning("caddy.unreachable", admin=self.admin_address, error=str(exc))

    async def _configure_fresh_caddy(self) -> None:
        self._marker = None
        await self._request(force=True)

    async def _resign(self) -> None:
        """Give up the edge: stop what ``_become_owner`` started (its own Caddy too) and
        release the lock, so that this or another process can take it up again."""
        tasks = self._owner_tasks
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._owner_tasks = []
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(Unavailable("the router is not driving Caddy"))
        self._waiters.clear()
        if self._tail is not None and self._writer is not None:
            with contextlib.suppress(Exception):
                await ship(self._tail, self._writer, self._table.get)
        if self._writer is not None:
            try:
                await self._writer.shutdown()
            except Exception as exc:  # the files wait for the next start; nothing to undo
                _log.warning("router.access_log_flush_failed", error=str(exc))
            self._writer = None
        if self._tail is not None:
            await asyncio.to_thread(self._tail.close)
            self._tail = None
        if self._permission is not None:
            await self._permission.close()
            self._permission = None
        if self._caddy is not None:
            await self._caddy.stop()
            self._caddy = None
        self._layout = None
        self._marker = None
        self._lock.release()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._resign()
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        await self._prober.close()
        if self._own_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
            self._own_socket_dir = False
        if self._started:
            _log.info("router.stopped", provider="caddy")
        self._started = False

    async def _refresh_public_urls(self, routes: list[Route]) -> None:
        """Routes saved while the router had another port or domain get today's URL."""
        tls = self.settings.tls != "off"
        for route in routes:
            url = self.public_url(route.subdomain)
            if route.public_url != url or route.tls_enabled != tls:
                with contextlib.suppress(NotFound):
                    await self._routes.update(
                        route.id, RouteUpdate(public_url=url, tls_enabled=tls)
                    )

    # --- applying the storage to Caddy ---------------------------------------------

    async def _reload_domains(self) -> None:
        """The verified custom domains of the storage (when it has a domain store)."""
        if self._domain_store is None:
            return
        found: dict[str, list[str]] = {}
        for domain in await self._domain_store.list_verified():
            name = canonical_host(domain.hostname)
            if name is None or domain.status != DomainStatus.VERIFIED:
                continue
            found.setdefault(domain.deployment_id, []).append(name)
        self._domains = {d: tuple(sorted(set(names))) for d, names in found.items()}

    async def _load_current(self, force: bool) -> None:
        assert self._admin is not None
        assert self._layout is not None
        routes = await self._routes.list_all()
        domains = dict(self._domains)
        self._table.replace(routes, domains)
        config, marker = build_config(routes, domains, self._layout)
        if not force and marker == self._marker:
            return
        started = time.perf_counter()
        await self._admin.load(config)
        self._marker = marker
        _log.debug(
            "caddy.loaded",
            routes=len(routes),
            hosts=len(self._table),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _apply_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ticket, force = self._requested, self._force
            self._force = False
            error: BaseException | None = None
            try:
                await self._load_current(force)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            remaining: list[tuple[int, asyncio.Future[None]]] = []
            for number, waiter in self._waiters:
                if number > ticket:
                    remaining.append((number, waiter))
                elif not waiter.done():
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)
            self._waiters = remaining

    async def _request(self, *, force: bool = False) -> None:
        """Have Caddy run what the storage holds now; return once it does."""
        self._requested += 1
        if force:
            self._force = True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._requested, waiter))
        self._wake.set()
        await waiter

    async def _apply(self) -> None:
        """After a change to storage: return once Caddy serves it. While Caddy is
        restarting the change is retried, up to ``apply_timeout_s``; a process that
        does not drive Caddy waits for the one that does."""
        if not self.serving:
            await self._hand_over()
            return
        deadline = time.monotonic() + self.settings.apply_timeout_s
        while True:
            try:
                await self._request()
                return
            except CaddyConfigRefused:
                raise
            except CaddyAdminError as exc:
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        "Caddy did not take the change in time; it is kept in storage and "
                        "applied when Caddy answers again",
                        details={"admin_address": self.admin_address, "error": str(exc)},
                    ) from exc
                await asyncio.sleep(0.2)

    async def _hand_over(self) -> None:
        if self._started and self.settings.sync_interval_s > 0:
            await asyncio.sleep(self.settings.sync_interval_s * 1.25 + 0.25)

    async def _sync_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.sync_interval_s)
            try:
                if not self._lock.held:
                    if self.settings.drive == "never" or not self._lock.try_acquire():
                        await self._reload_domains()
                        self._table.replace(await self._routes.list_all(), self._domains)
                        continue
                    _log.info("router.taking_over_caddy")
                    try:
                        await self._become_owner()
                    except BaseException:
                        await self._resign()  # the next round tries again
                        raise
                await self._reload_domains()
                assert self._admin is not None
                lost = self._marker is not None and not await self._admin.has_id(self._marker)
                if lost:
                    _log.warning(
                        "caddy.config_lost",
                        note="Caddy runs another configuration (restarted or replaced by "
                        "hand); loading the routes from storage again",
                    )
                await self._request(force=lost or self._marker is None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage or Caddy down: keep what Caddy serves
                if not failing:
                    _log.warning("router.sync_failed", error=str(exc))
                failing = True
                continue
            if failing:
                _log.info("router.sync_recovered")
                failing = False

    # --- routes --------------------------------------------------------------------

    async def register_route(self, config: RouteConfig) -> Route:
        subdomain = check_subdomain(config.subdomain, self.base_domain)
        route, event = await self._stored.save(
            config,
            subdomain=subdomain,
            target_host=check_target_host(config.target_host),
            public_url=self.public_url(subdomain),
            tls=self.settings.tls != "off",
        )
        await self._apply()
        _log.info(
            event,
            route_id=route.id,
            deployment_id=route.deployment_id,
            host=f"{subdomain}.{self.base_domain}",
            target=dial_address(route.target_host, route.target_port),
        )
        return route

    async def update_route(self, route_id: str, *, target_host: str, target_port: int) -> Route:
        if not 0 < target_port < 65536:
            raise InvalidInput(
                f"target port {target_port} is out of range", details={"field": "target_port"}
            )
        host = check_target_host(target_host)
        route = await self._stored.repoint(route_id, host, target_port)
        await self._apply()
        _log.info(
            "route.repointed",
            route_id=route.id,
            deployment_id=route.deployment_id,
            target=dial_address(host, target_port),
        )
        return route

    async def set_route_status(self, route_id: str, status: RouteStatus) -> Route:
        previous, route = await self._stored.set_status(route_id, status)
        if (previous.status is RouteStatus.STOPPED) != (status is RouteStatus.STOPPED):
            await self._apply()
        return route

    async def remove_route(self, route_id: str) -> None:
        removed = await self._stored.delete(route_id)
        if removed:
            await self._apply()
            _log.info("route.removed", route_id=route_id)

    async def get_route(self, deployment_id: str) -> Route | None:
        return await self._stored.for_deployment(deployment_id)

    async def list_routes(self, project_id: str | None = None) -> list[Route]:
        return await self._stored.list(project_id)

    # --- custom domains ------------------------------------------------------------

    async def set_domains(self, deployment_id: str, hostnames: Sequence[str]) -> None:
        names = sorted(
            {normalise_hostname(h, platform_domains=[self.base_domain]) for h in hostnames}
        )
        if len(names) > _MAX_DOMAINS_PER_DEPLOYMENT:
            raise InvalidInput(
                f"a deployment is served at {_MAX_DOMAINS_PER_DEPLOYMENT} custom domains at most",
                details={"field": "hostnames"},
            )
        for name in names:
            for other, held in self._domains.items():
                if other != deployment_id and name in held:
                    raise Conflict(
                        f"{name} is served for another deployment", details={"field": "hostname"}
                    )
        if names:
            self._domains[deployment_id] = tuple(names)
        else:
            self._domains.pop(deployment_id, None)
        await self._apply()
        _log.info("router.domains_set", deployment_id=deployment_id, hostnames=names)

    async def certificate_state(self, hostname: str) -> CertificateState | None:
        name = canonical_host(hostname.strip().rstrip(".").lower()) if hostname else None
        s = self.settings
        if name is None or s.tls == "off":
            return None
        if s.tls == "files":
            assert s.tls_cert_file is not None
            return await asyncio.to_thread(certificate_in_file, s.tls_cert_file, name)
        state = await asyncio.to_thread(stored_certificate, self.storage_root, name)
        if state is not None:
            return state
        # Served but not visited over HTTPS yet: on demand, it is made at the first visit.
        return CertificateState(state="pending" if name in self._table else "none")

    # --- draining ------------------------------------------------------------------

    async def drain(self, target_host: str, target_port: int) -> None:
        """Wait until Caddy holds no request to the target (counted across replaced
        configurations by ``/reverse_proxy/upstreams``), at most ``stream_close_delay_s``.
        When Caddy cannot be asked, return at once: a deploy must not hang on it."""
        if self._admin is None:
            return
        address = dial_address(check_target_host(target_host), target_port)
        deadline = time.monotonic() + self.settings.stream_close_delay_s
        started = time.monotonic()
        while True:
            try:
                upstreams = await self._admin.upstreams()
            except CaddyAdminError as exc:
                _log.warning("router.drain_unknown", target=address, error=str(exc))
                return
            open_requests = sum(u.num_requests for u in upstreams if u.address == address)
            if open_requests == 0:
                _log.debug("router.drained", target=address, s=round(time.monotonic() - started, 2))
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _log.info(
                    "router.drain_timeout",
                    target=address,
                    open_requests=open_requests,
                    note="the stream close delay ran out; the old server may now be stopped",
                )
                return
            await asyncio.sleep(min(_DRAIN_POLL_S, remaining))

    # --- access logs ---------------------------------------------------------------

    async def _ship_loop(self) -> None:
        assert self._tail is not None
        assert self._writer is not None
        while True:
            await asyncio.sleep(_SHIP_INTERVAL_S)
            try:
                await ship(self._tail, self._writer, self._table.get)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the writer keeps what it could not write
                _log.warning("router.access_log_failed", error=str(exc))

    async def flush_access_logs(self) -> None:
        """Write every access-log line Caddy has written so far into file storage now."""
        if self._tail is None or self._writer is None:
            return
        await ship(self._tail, self._writer, self._table.get)
        await self._writer.flush()

    @property
    def access_log_counts(self) -> dict[str, int]:
        if self._tail is None:
            return {}
        return {"lines_read": self._tail.lines_read, "too_long": self._tail.too_long}

    # --- health --------------------------------------------------------------------

    async def probe(self, target_host: str, target_port: int) -> RouteHealth:
        """``GET {health_path}`` on a target: healthy on 2xx/3xx within the timeout."""
        return await self._prober.probe(target_host, target_port)

    async def check_route_health(self, route_id: str) -> RouteHealth:
        health, _ = await self._stored.check_health(route_id, self.probe)
        return health

    async def check_all(self) -> dict[str, RouteHealth]:
        """Check every route that is not stopped, a few at a time."""
        routes = await self._routes.list_all()
        targets = [r.id for r in routes if r.status is not RouteStatus.STOPPED]
        return await check_routes(targets, self.check_route_health)

    async def _health_loop(self) -> None:
        await health_loop(self.settings.health_interval_s, self.check_all, _log)

    def __repr__(self) -> str:
        return (
            f"CaddyEdgeRouter({self.scheme}://*.{self.base_domain}:{self.port}, "
            f"admin={self.admin_address!r}, managed={self.managed})"
        )
