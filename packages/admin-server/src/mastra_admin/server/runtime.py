"""Running the platform in one process: the API, the collector's own listener, build
workers, the ingestion worker, the router and the periodic check of pending custom
domains, started in order and shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
import uvicorn
from starlette.types import ASGIApp

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.compose import build_admin, build_ingestion_worker
from mastra_admin.core.observability import IngestionWorker
from mastra_admin.core.plugins import ProviderKind
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.server.app import create_app, create_collector_app
from mastra_admin.server.settings import ServerSettings

__all__ = [
    "EmbeddedServer",
    "Platform",
    "run",
    "run_platform",
    "run_workers",
    "running_admin",
]

_log = structlog.get_logger("mastra_admin.server.runtime")

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to the end on uvloop where it is installed (``uvicorn[standard]``
    brings it, except on Windows), as uvicorn's own ``loop="auto"`` does; on asyncio's
    loop otherwise. The API serves about a tenth more requests on uvloop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns SIGINT/SIGTERM and
    shuts every part down in order (uvicorn would re-raise the signal and end the
    process before the build workers and ingestion had stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Platform:
    admin: MastraAdmin
    ingestion: IngestionWorker | None
    bootstrap_token: str | None


@contextlib.asynccontextmanager
async def running_admin(
    settings: MastraAdminSettings, *, only: Iterable[ProviderKind] | None = None
) -> AsyncIterator[MastraAdmin]:
    """A composed and initialised ``MastraAdmin``, closed on exit.

    :param only: compose only these kinds (see ``build_admin``), e.g.
        ``STORAGE_KINDS`` for a command that needs only the platform's records.
    """
    admin = await build_admin(settings, only=only)
    try:
        await admin.init()
        yield admin
    finally:
        await admin.close()


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _bootstrap(admin: MastraAdmin) -> str | None:
    """At first start (no users yet) create the admin user and return its token once."""
    if await admin.storage.users.count() > 0:
        return None
    _user, token = await admin.bootstrap_admin("admin@example.com")
    return token


def _embedded_server(
    app: ASGIApp, host: str, port: int, forwarded_allow_ips: list[str]
) -> EmbeddedServer:
    """uvicorn on ``host:port``. Forwarded headers are trusted from the configured
    proxies only: uvicorn's own default trusts them from any loopback peer, and a
    deployed server on this machine is one."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=list(forwarded_allow_ips) or None,
    )
    return EmbeddedServer(config)


class _CannotListen(Exception):
    """uvicorn could not bind its socket."""


async def _serve(server: EmbeddedServer) -> None:
    # uvicorn calls sys.exit(1) when it cannot bind; a SystemExit raised in a task
    # would end the event loop at once, so it is turned into an ordinary error here.
    try:
        await server.serve()
    except SystemExit as exc:
        reason = exc.__context__ if isinstance(exc.__context__, OSError) else exc
        raise _CannotListen(str(reason)) from exc


async def _listen(server: EmbeddedServer, what: str) -> asyncio.Task[None]:
    """Start ``server`` and return once it accepts connections; a ``SystemExit``
    naming ``what`` when it cannot listen (the port is taken, say)."""
    serving = asyncio.create_task(_serve(server))
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if serving.done():
        error = serving.exception()
        config = server.config
        where = f"{config.host}:{config.port}"
        raise SystemExit(f"{what} could not listen on {where}: {error or 'it ended'}") from error
    return serving


async def _shut(server: EmbeddedServer, serving: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serving, timeout=10)


async def run_platform(
    settings: MastraAdminSettings,
    server_settings: ServerSettings,
    *,
    on_ready: Callable[[Platform], Awaitable[None] | None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM: API + UI, the collector's listener (unless
    ``collector_port`` is 0 or the API port), build workers, ingestion, router."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with running_admin(settings) as admin:
        token = await _bootstrap(admin)
        ingestion: IngestionWorker | None = None
        if server_settings.ingestion:
            ingestion = build_ingestion_worker(admin)
            if ingestion is not None:
                await ingestion.start()
        orchestrator = admin.orchestrator
        if orchestrator is not None:
            await orchestrator.start()
        # Pending custom domains are checked again here; ``admin.close`` stops it.
        admin.domains.pending_checks.start()
        app = create_app(admin, settings=server_settings, ingestion=ingestion)
        server = _embedded_server(
            app, settings.host, settings.port, server_settings.forwarded_allow_ips
        )
        listeners: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []
        try:
            serving = await _listen(server, "the API")
            listeners.append((server, serving))
            _log.info("platform.ready", url=f"http://{settings.host}:{settings.port}")
            collector_port = settings.collector_listener_port
            if collector_port is not None:
                collector_app = create_collector_app(
                    admin, settings=server_settings, ingestion=ingestion, metrics=app.state.metrics
                )
                collector = _embedded_server(
                    collector_app,
                    settings.host,
                    collector_port,
                    server_settings.forwarded_allow_ips,
                )
                collector_serving = await _listen(
                    collector,
                    "the collector's own listener (setting collector_port, default port + 1; "
                    "0 turns it off)",
                )
                listeners.append((collector, collector_serving))
                _log.info(
                    "platform.collector_ready", url=f"http://{settings.host}:{collector_port}"
                )
            if on_ready is not None:
                result = on_ready(Platform(admin, ingestion, token))
                if asyncio.iscoroutine(result):
                    await result
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {stopper, *(task for _server, task in listeners)},
                return_when=asyncio.FIRST_COMPLETED,
            )
            stopper.cancel()
        finally:
            _log.info("platform.stopping")
            for listener, _task in listeners:
                listener.should_exit = True
            for listener, task in listeners:
                await _shut(listener, task)
            if orchestrator is not None:
                await orchestrator.stop()
            if ingestion is not None:
                await ingestion.stop(drain=True)


async def run_workers(settings: MastraAdminSettings, *, once: bool = False) -> int:
    """Build workers only (for more machines against one PostgreSQL). Returns the
    number of builds processed when ``once``."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with running_admin(settings) as admin:
        orchestrator = admin.orchestrator
        if orchestrator is None:
            raise SystemExit("no runner is configured: nothing for a worker to do")
        if once:
            processed = 0
            while await orchestrator.run_once() is not None:
                processed += 1
            return processed
        await orchestrator.start()
        admin.domains.pending_checks.start()
        try:
            await stop.wait()
        finally:
            await orchestrator.stop()
    return 0
