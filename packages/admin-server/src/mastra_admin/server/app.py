"""The Starlette applications around one ``MastraAdmin``: the API (health and metrics,
OpenAPI, the collector, plugin routes and the web UI) and the collector alone, which
deployed servers are given so that they cannot reach the rest of the API.

Neither app starts or stops the admin: whoever owns the admin (the ``serve`` command,
embedding code, a test) calls ``init()`` and ``close()``.
"""

from __future__ import annotations

import hmac
import itertools
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mastra_admin.core.errors import MastraAdminError
from mastra_admin.server.auth import FailedAttemptLimiter, bearer_token
from mastra_admin.server.errors import error_response, exception_handlers
from mastra_admin.server.metrics import ServerMetrics
from mastra_admin.server.openapi import openapi_document
from mastra_admin.server.routes import all_endpoints, collector_endpoints
from mastra_admin.server.routes.collector import _ProjectCache
from mastra_admin.server.routing import Endpoint, IndexedRouter, to_routes
from mastra_admin.server.settings import ServerSettings

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.observability import IngestionWorker

__all__ = ["create_app", "create_collector_app"]

_log = structlog.get_logger("mastra_admin.server.app")


_REQUEST_IDS = itertools.count(1)
_REQUEST_ID_PREFIX = uuid.uuid4().hex[:16]


def _next_request_id() -> str:
    """Unique across processes and restarts (a random prefix per process) and cheap
    (a counter; ``uuid4`` costs a system call per request)."""
    return f"{_REQUEST_ID_PREFIX}{next(_REQUEST_IDS):016x}"


class RequestContextMiddleware:
    """Request ids (``X-Request-Id``, kept when the client sends one), latency metrics,
    and ``X-Content-Type-Options: nosniff`` on every response (no browser guesses an
    answer of ours, a build log say, to be HTML)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
                break
        request_id = request_id or _next_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if not any(name == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                scope.get("method", ""),
                template,
                str(status_holder["status"]),
                time.perf_counter() - started,
            )


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    admin: MastraAdmin = request.app.state.admin
    checks: dict[str, str] = {}
    ok = True
    retry_after = 5
    for name, ping in (
        ("storage", admin.storage.ping),
        ("observability", _observability_ping(admin)),
    ):
        if ping is None:
            continue
        try:
            await ping()
            checks[name] = "ok"
        except MastraAdminError as exc:
            ok = False
            checks[name] = exc.message
            hint = exc.details.get("retry_after")
            if isinstance(hint, int | float) and hint > 0:
                retry_after = min(retry_after, max(1, int(hint)))
        except Exception as exc:  # a readiness probe reports, it does not crash
            ok = False
            checks[name] = f"{type(exc).__name__}: {exc}"
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": str(retry_after)},
    )


def _observability_ping(admin: MastraAdmin) -> Any:
    return admin.observability.ping if admin.observability is not None else None


async def metrics(request: Request) -> Response:
    state = request.app.state
    wanted: SecretStr | None = state.settings.metrics_token
    if wanted is not None:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), wanted.get_secret_value().encode()):
            return error_response(
                401, "unauthenticated", "/metrics needs 'Authorization: Bearer <metrics_token>'"
            )
    body = await state.metrics.render(state.admin, state.ingestion)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def _plugin_routes(admin: MastraAdmin) -> list[BaseRoute]:
    if admin.plugins is None:
        return []
    routes: list[BaseRoute] = []
    for result in admin.plugins.hook.mastra_admin_routes(admin=admin):
        routes.extend(result or [])
    return routes


def create_app(
    admin: MastraAdmin,
    *,
    settings: ServerSettings | None = None,
    ingestion: IngestionWorker | None = None,
    extra_endpoints: Sequence[Endpoint] = (),
) -> Starlette:
    """The ASGI app for ``admin``. ``ingestion`` is the in-process ingestion worker,
    if any, for ``/metrics`` and the status endpoint."""
    settings = settings or ServerSettings()
    endpoints = [*all_endpoints(), *extra_endpoints]
    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        *to_routes(endpoints),
        *_plugin_routes(admin),
    ]
    if settings.ui:
        from mastra_admin.server.ui import ui_routes

        routes.extend(ui_routes())
    middleware: list[Middleware] = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-Id"],
                expose_headers=["X-Request-Id", "Retry-After"],
            )
        )
    app = _app(admin, settings, ingestion, ServerMetrics(), endpoints, routes, middleware)
    app.state.openapi = openapi_document(endpoints)
    return app


def create_collector_app(
    admin: MastraAdmin,
    *,
    settings: ServerSettings | None = None,
    ingestion: IngestionWorker | None = None,
    metrics: ServerMetrics | None = None,
) -> Starlette:
    """The collector alone, for the listener deployed servers are given: its endpoints
    (the API's own code, limits and errors) and ``GET /health`` for probes; anything
    else is 404 in the API's error format. Pass the API app's ``metrics``
    (``app.state.metrics``) so that its ``/metrics`` counts what arrives here too."""
    settings = settings or ServerSettings()
    endpoints = collector_endpoints()
    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"]), *to_routes(endpoints)]
    return _app(admin, settings, ingestion, metrics or ServerMetrics(), endpoints, routes, [])


def _app(
    admin: MastraAdmin,
    settings: ServerSettings,
    ingestion: IngestionWorker | None,
    server_metrics: ServerMetrics,
    endpoints: list[Endpoint],
    routes: list[BaseRoute],
    middleware: list[Middleware],
) -> Starlette:
    """What every app of ours shares: request ids and latency metrics around
    ``middleware``, the error format, the route index and the state handlers read."""
    app = Starlette(
        middleware=[Middleware(RequestContextMiddleware, metrics=server_metrics), *middleware],
        exception_handlers=exception_handlers(),
    )
    app.router = IndexedRouter(routes)
    app.state.admin = admin
    app.state.settings = settings
    app.state.ingestion = ingestion
    app.state.metrics = server_metrics
    app.state.endpoints = endpoints
    app.state.auth_limiter = FailedAttemptLimiter(
        limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
    )
    app.state.collector_max_bytes = settings.collector_max_bytes
    app.state.collector_projects = _ProjectCache()
    return app
