"""What every edge router over the storage's route store does the same way.

``StoredRoutes`` keeps the routes of deployments in the ``RouteStore`` (the source of
truth): registration with ``Conflict`` on a taken subdomain, re-pointing, status,
removal and the health result of a probe. ``RouteProber`` probes a target over HTTP.
``check_routes`` and ``health_loop`` run the periodic checks, and ``error_page`` is
the HTML page a router answers itself with (404, 503, upstream errors). What a router
does with a change (its host table, its proxy, its configuration loads) stays in the
router.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from mastra_admin.core.errors import Conflict, InvalidInput, NotFound
from mastra_admin.core.models import Route, RouteStatus
from mastra_admin.core.router import RouteConfig, RouteHealth
from mastra_admin.core.storage import RouteStore, RouteUpdate

if TYPE_CHECKING:
    from aiohttp import ClientSession

__all__ = [
    "HEALTH_CONCURRENCY",
    "MAX_HOST_LENGTH",
    "RouteProber",
    "StoredRoutes",
    "check_routes",
    "check_subdomain",
    "dial_address",
    "error_page",
    "health_loop",
    "public_url",
    "status_reason",
]

# Route subdomains: dot-separated labels (``_`` allowed, as team slugs may have it).
_SUBDOMAIN = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
MAX_HOST_LENGTH = 253
HEALTH_CONCURRENCY = 8
"""How many routes ``check_routes`` probes at a time."""


def check_subdomain(value: str, base_domain: str) -> str:
    """The route subdomain in its stored form (trimmed, lowercase), or ``InvalidInput``."""
    subdomain = value.strip().strip(".").lower()
    if not _SUBDOMAIN.match(subdomain) or len(subdomain) + len(base_domain) + 1 > MAX_HOST_LENGTH:
        raise InvalidInput(
            f"{value!r} is not a valid subdomain (letters, digits, '-' and '_' in "
            "dot-separated labels of at most 63 characters)",
            details={"field": "subdomain"},
        )
    return subdomain


def public_url(scheme: str, subdomain: str, base_domain: str, port: int) -> str:
    """``{scheme}://{subdomain}.{base_domain}``, with the port unless it is the
    scheme's default."""
    default = 443 if scheme == "https" else 80
    suffix = "" if port == default else f":{port}"
    return f"{scheme}://{subdomain.lower()}.{base_domain}{suffix}"


def dial_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class StoredRoutes:
    """The routes of a router's deployments, kept in the storage's route store.

    Every operation writes the store and returns what it holds; the router then
    serves the change its own way. ``log`` is the router's logger: the events
    (``route.status_changed``, ``route.health_changed``) name the router that made them.
    """

    def __init__(self, store: RouteStore, base_domain: str, log: Any) -> None:
        self.store = store
        self.base_domain = base_domain
        self._log = log

    async def get(self, route_id: str) -> Route:
        """The route, or ``NotFound``."""
        route = await self.store.get(route_id)
        if route is None:
            raise NotFound(f"route {route_id} does not exist", details={"route_id": route_id})
        return route

    async def save(
        self,
        config: RouteConfig,
        *,
        subdomain: str,
        target_host: str,
        public_url: str,
        tls: bool,
        remove: Callable[[str], Awaitable[object]] | None = None,
    ) -> tuple[Route, str]:
        """Create the deployment's route, or re-point the one it has; the route and
        its event (``route.registered`` or ``route.repointed``). ``Conflict`` when
        another deployment holds the subdomain. A deployment moved to another
        subdomain loses its old route first, through ``remove`` (the store's delete
        unless given)."""
        if config.tls and not tls:
            self._log.warning("route.tls_unavailable", subdomain=subdomain)
        holder = await self.store.get_by_subdomain(subdomain)
        if holder is not None and holder.deployment_id != config.deployment_id:
            raise Conflict(
                f"{subdomain}.{self.base_domain} is already routed to another deployment",
                details={"field": "subdomain"},
            )
        existing = await self.store.get_by_deployment(config.deployment_id)
        if existing is not None and existing.subdomain != subdomain:
            # The deployment moved to another host name: the old one stops answering.
            await (remove or self.store.delete)(existing.id)
            existing = None
        if existing is None:
            route = await self.store.create(
                Route(
                    deployment_id=config.deployment_id,
                    project_id=config.project_id,
                    subdomain=subdomain,
                    target_host=target_host,
                    target_port=config.target_port,
                    public_url=public_url,
                    status=RouteStatus.ACTIVE,
                    tls_enabled=tls,
                )
            )
            return route, "route.registered"
        route = await self.store.update(
            existing.id,
            RouteUpdate(
                target_host=target_host,
                target_port=config.target_port,
                public_url=public_url,
                status=RouteStatus.ACTIVE,
                tls_enabled=tls,
            ),
        )
        return route, "route.repointed"

    async def repoint(self, route_id: str, target_host: str, target_port: int) -> Route:
        """Point an existing route at another target (``InvalidInput`` for a port out
        of range, ``NotFound`` for an unknown route)."""
        if not 0 < target_port < 65536:
            raise InvalidInput(
                f"target port {target_port} is out of range", details={"field": "target_port"}
            )
        await self.get(route_id)
        return await self.store.update(
            route_id, RouteUpdate(target_host=target_host, target_port=target_port)
        )

    async def set_status(self, route_id: str, status: RouteStatus) -> tuple[Route, Route]:
        """Mark a route; the route before and after."""
        previous = await self.get(route_id)
        route = await self.store.update(route_id, RouteUpdate(status=status))
        if previous.status != status:
            self._log.info("route.status_changed", route_id=route_id, status=str(status))
        return previous, route

    async def delete(self, route_id: str) -> bool:
        return await self.store.delete(route_id)

    async def for_deployment(self, deployment_id: str) -> Route | None:
        return await self.store.get_by_deployment(deployment_id)

    async def list(self, project_id: str | None = None) -> list[Route]:
        if project_id is None:
            return await self.store.list_all()
        return await self.store.list_for_project(project_id)

    async def check_health(
        self, route_id: str, probe: Callable[[str, int], Awaitable[RouteHealth]]
    ) -> tuple[RouteHealth, Route]:
        """Probe the route's target and record the result (status and
        ``last_health_check``; a stopped route stays stopped); the health and the
        updated route."""
        route = await self.get(route_id)
        health = await probe(route.target_host, route.target_port)
        if route.status is RouteStatus.STOPPED:
            status = RouteStatus.STOPPED  # a stopped deployment stays stopped
        else:
            status = RouteStatus.ACTIVE if health.healthy else RouteStatus.UNHEALTHY
        updated = await self.store.update(
            route_id, RouteUpdate(status=status, last_health_check=health.checked_at)
        )
        if route.status != status:
            self._log.info(
                "route.health_changed", route_id=route_id, status=str(status), error=health.error
            )
        return health, updated


class RouteProber:
    """``GET {health_path}`` on route targets, over one private client session.

    It needs ``aiohttp``, which the core does not depend on: the routers using it do,
    and it is imported at the first probe."""

    def __init__(self, *, health_path: str, timeout_s: float, keepalive_s: float) -> None:
        self.health_path = health_path
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self._session: ClientSession | None = None

    def _client(self) -> ClientSession:
        from aiohttp import ClientSession, DummyCookieJar, TCPConnector

        if self._session is None or self._session.closed:
            self._session = ClientSession(
                connector=TCPConnector(limit=32, keepalive_timeout=self.keepalive_s),
                cookie_jar=DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def probe(self, target_host: str, target_port: int) -> RouteHealth:
        """Healthy on 2xx/3xx within the timeout."""
        from aiohttp import ClientError, ClientTimeout

        url = f"http://{dial_address(target_host, target_port)}{self.health_path}"
        started = time.perf_counter()
        try:
            async with self._client().get(
                url, allow_redirects=False, timeout=ClientTimeout(total=self.timeout_s)
            ) as response:
                await response.read()
                return RouteHealth(
                    healthy=200 <= response.status < 400,
                    latency_ms=(time.perf_counter() - started) * 1000,
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def check_routes(
    route_ids: Iterable[str], check: Callable[[str], Awaitable[RouteHealth]]
) -> dict[str, RouteHealth]:
    """Run ``check`` on every route, ``HEALTH_CONCURRENCY`` at a time; routes removed
    meanwhile are left out."""
    gate = asyncio.Semaphore(HEALTH_CONCURRENCY)
    results: dict[str, RouteHealth] = {}

    async def one(route_id: str) -> None:
        async with gate:
            with contextlib.suppress(NotFound):  # removed meanwhile
                results[route_id] = await check(route_id)

    await asyncio.gather(*(one(route_id) for route_id in route_ids))
    return results


async def health_loop(
    interval_s: float, check_all: Callable[[], Awaitable[object]], log: Any
) -> None:
    """Every ``interval_s``, one round of ``check_all``; a failing round (storage
    down) is logged and tried again next time."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await check_all()
        except Exception as exc:  # storage down: try again next round
            log.warning("router.health_round_failed", error=str(exc))


# --- the router's own answers ---------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{status} {title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; color: #1f2328; background: #f6f8fa;
       margin: 0; display: grid; place-items: center; min-height: 100vh; }}
main {{ background: #fff; border: 1px solid #d0d7de; border-radius: 8px;
        padding: 2rem 2.5rem; max-width: 36rem; }}
h1 {{ font-size: 1.25rem; margin: 0 0 .5rem; }}
p {{ margin: .5rem 0; }}
small {{ color: #656d76; }}
</style>
</head>
<body>
<main>
<h1>{status} &middot; {title}</h1>
<p>{message}</p>
<p><small>{footer}</small></p>
</main>
</body>
</html>
"""


def status_reason(status: int) -> str:
    """The reason phrase of an HTTP status (``"Error"`` for an unknown one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_page(status: int | str, title: str, message: str, footer: str) -> str:
    """The HTML page of an error the router answers itself. ``title`` and ``message``
    are escaped; ``footer`` is HTML, escaped by the caller."""
    return _PAGE.format(
        status=status, title=html.escape(title), message=html.escape(message), footer=footer
    )
