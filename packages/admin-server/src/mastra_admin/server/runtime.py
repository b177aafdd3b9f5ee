"""Running the platform in one process: the API, build workers, the ingestion worker
and the router, started in order and shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
import uvicorn

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.compose import build_admin
from mastra_admin.core.observability import IngestionWorker
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.server.app import create_app
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
async def running_admin(settings: MastraAdminSettings) -> AsyncIterator[MastraAdmin]:
    """A composed and initialised ``MastraAdmin``, closed on exit."""
    admin = await build_admin(settings)
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


async def run_platform(
    settings: MastraAdminSettings,
    server_settings: ServerSettings,
    *,
    on_ready: Callable[[Platform], Awaitable[None] | None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM: API + UI, build workers, ingestion, router."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with running_admin(settings) as admin:
        token = await _bootstrap(admin)
        ingestion: IngestionWorker | None = None
        if server_settings.ingestion and admin.observability is not None and admin.file_storage:
            roots = admin.runner.artifact_roots() if admin.runner is not None else []
            ingestion = admin.observability.ingestion_worker(admin.file_storage, build_dirs=roots)
            await ingestion.start()
        orchestrator = admin.orchestrator
        if orchestrator is not None:
            await orchestrator.start()
        app = create_app(admin, settings=server_settings, ingestion=ingestion)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = EmbeddedServer(config)
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started and not serving.done():
                await asyncio.sleep(0.05)
            if serving.done():
                serving.result()
                raise SystemExit(f"the API could not listen on {settings.host}:{settings.port}")
            _log.info("platform.ready", url=f"http://{settings.host}:{settings.port}")
            if on_ready is not None:
                result = on_ready(Platform(admin, ingestion, token))
                if asyncio.iscoroutine(result):
                    await result
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        finally:
            _log.info("platform.stopping")
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, timeout=10)
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
        try:
            await stop.wait()
        finally:
            await orchestrator.stop()
    return 0
