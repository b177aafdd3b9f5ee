"""The router around the proxy: health loop, reload from storage, public URLs,
subdomains, settings, the plugin and its factory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.models import RouteStatus
from mastra_admin.core.plugins import ProviderContext
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings
from mastra_admin.routers.local.plugin import create_router, mastra_admin_providers

from .conftest import AppFactory, free_port, send_through, wait_for

RouteTo = Callable[..., Awaitable[str]]


class Flaky:
    """An upstream whose /health answer the test switches."""

    def __init__(self) -> None:
        self.healthy = True

    def app(self) -> web.Application:
        async def health(request: web.Request) -> web.Response:
            return web.Response(status=200 if self.healthy else 503, text="health")

        app = web.Application()
        app.router.add_get("/health", health)
        return app


@pytest.mark.router_settings(health_interval_s=0.05)
async def test_the_health_loop_marks_routes_unhealthy_and_active_again(
    router: LocalEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    upstream = Flaky()
    await route_to(*await serve_app(upstream.app()))
    (route,) = await router.list_routes()

    async def status() -> RouteStatus:
        (current,) = await router.list_routes()
        return current.status

    upstream.healthy = False
    for _ in range(100):
        if await status() == RouteStatus.UNHEALTHY:
            break
        await asyncio.sleep(0.02)
    assert await status() == RouteStatus.UNHEALTHY

    upstream.healthy = True
    for _ in range(100):
        if await status() == RouteStatus.ACTIVE:
            break
        await asyncio.sleep(0.02)
    (after,) = await router.list_routes()
    assert after.status == RouteStatus.ACTIVE
    assert after.last_health_check is not None
    assert route.last_health_check is None


async def test_health_checks_leave_stopped_routes_stopped(
    router: LocalEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    await route_to(*await serve_app(Flaky().app()))
    (route,) = await router.list_routes()
    await router.set_route_status(route.id, RouteStatus.STOPPED)

    health = await router.check_route_health(route.id)
    results = await router.check_all()

    assert health.healthy
    assert health.status_code == 200
    assert health.latency_ms is not None
    assert results == {}  # stopped routes are not probed by the loop
    (after,) = await router.list_routes()
    assert after.status == RouteStatus.STOPPED
    assert after.last_health_check is not None


@pytest.mark.router_settings(sync_interval_s=0.05)
async def test_routes_changed_by_another_process_are_served_after_a_reload(
    router: LocalEdgeRouter, storage: AdminStorage, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def named(request: web.Request) -> web.Response:
        return web.Response(text="from the worker's deployment")

    app = web.Application()
    app.router.add_get("/", named)
    host, port = await serve_app(app)
    await route_to(host, port, subdomain="first.team")
    (first,) = await router.list_routes()
    # A build worker in another process has its own router over the same storage.
    worker = LocalEdgeRouter(
        LocalRouterSettings(port=0, health_interval_s=0, sync_interval_s=0), storage.routes
    )
    try:
        deployment = first.deployment_id
        await worker.remove_route(first.id)
        await worker.register_route(
            RouteConfig(
                deployment_id=deployment,
                project_id=first.project_id,
                subdomain="second.team",
                target_host=host,
                target_port=port,
            )
        )
    finally:
        await worker.close()

    async def answer(name: str) -> int:
        return (await send_through(router, f"{name}.team.localhost", "/")).status

    for _ in range(100):
        if await answer("second") == 200:
            break
        await asyncio.sleep(0.02)
    assert await answer("second") == 200
    assert await answer("first") == 404


async def test_a_deployment_moving_to_another_subdomain_leaves_the_old_one(
    router: LocalEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def hi(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hi)
    host, port = await serve_app(app)
    await route_to(host, port, subdomain="old-name.team")
    (route,) = await router.list_routes()

    moved = await router.register_route(
        RouteConfig(
            deployment_id=route.deployment_id,
            project_id=route.project_id,
            subdomain="New-Name.Team",
            target_host=host,
            target_port=port,
        )
    )

    assert moved.subdomain == "new-name.team"
    assert [r.subdomain for r in await router.list_routes()] == ["new-name.team"]
    assert (await send_through(router, "new-name.team.localhost")).status == 200
    assert (await send_through(router, "old-name.team.localhost")).status == 404


async def test_invalid_subdomains_and_ports_are_refused(
    router: LocalEdgeRouter, route_to: RouteTo
) -> None:
    for bad in ("", "-x.team", "a..b", "spaces here", "x" * 64 + ".team", "ü.team"):
        with pytest.raises(InvalidInput):
            await route_to("127.0.0.1", 4100, subdomain=bad)
    await route_to("127.0.0.1", 4100, subdomain="ok.team")
    (route,) = await router.list_routes()
    with pytest.raises(InvalidInput):
        await router.update_route(route.id, target_host="127.0.0.1", target_port=70000)


async def test_public_urls() -> None:
    def url(**fields: object) -> str:
        settings = LocalRouterSettings.model_validate({"health_interval_s": 0, **fields})
        return LocalEdgeRouter(settings, routes=None).public_url("shop-main.search")  # type: ignore[arg-type]

    assert url() == "http://shop-main.search.localhost:8080"
    assert url(port=80) == "http://shop-main.search.localhost"
    assert url(base_domain="Mastra.Local.") == "http://shop-main.search.mastra.local:8080"
    assert url(tls=True, port=443) == "https://shop-main.search.localhost"
    assert url(tls=True, port=8443) == "https://shop-main.search.localhost:8443"
    assert url(port=8080, public_port=80, scheme="https") == "https://shop-main.search.localhost:80"


async def test_restart_on_another_port_updates_public_urls(
    settings: LocalRouterSettings, storage: AdminStorage, route_to: RouteTo, router: LocalEdgeRouter
) -> None:
    await route_to("127.0.0.1", 4100, subdomain="shop-main.team")
    await router.close()
    again = LocalEdgeRouter(settings, storage.routes)
    await again.start()
    try:
        (route,) = await again.list_routes()
        assert route.public_url == f"http://shop-main.team.localhost:{again.port}"
    finally:
        await again.close()


async def test_a_taken_port_is_unavailable_when_listening_is_required(
    storage: AdminStorage,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        router = LocalEdgeRouter(LocalRouterSettings(port=port, listen="always"), storage.routes)
        with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
            await router.start()
        await router.close()


@pytest.mark.router_settings(sync_interval_s=0.05)
async def test_a_worker_process_router_keeps_routes_for_the_serving_one(
    router: LocalEdgeRouter, storage: AdminStorage, serve_app: AppFactory, route_to: RouteTo
) -> None:
    """``mastra-admin worker`` starts a router too: the port is the server's, so the
    worker's router only writes routes, and a re-point returns once it is served."""

    def app(name: str) -> web.Application:
        async def named(request: web.Request) -> web.Response:
            return web.Response(text=name)

        application = web.Application()
        application.router.add_get("/", named)
        return application

    old_host, old_port = await serve_app(app("old"))
    new_host, new_port = await serve_app(app("new"))
    host = await route_to(old_host, old_port, subdomain="shop-main.team")
    (route,) = await router.list_routes()
    worker = LocalEdgeRouter(
        LocalRouterSettings(port=router.port, sync_interval_s=0.05, health_interval_s=0),
        storage.routes,
    )
    await worker.start()
    try:
        assert router.serving
        assert not worker.serving
        await worker.update_route(route.id, target_host=new_host, target_port=new_port)
        answer = await send_through(router, host)
        assert answer.text == "new"
    finally:
        await worker.close()


async def test_closing_ends_open_connections(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b"tick\n")
            await asyncio.sleep(0.05)

    app = web.Application()
    app.router.add_get("/", endless)
    host = await route_to(*await serve_app(app))
    async with client.get(f"http://127.0.0.1:{router.port}/", headers={"Host": host}) as r:
        await r.content.readline()
        started = asyncio.get_running_loop().time()
        await router.close()
        assert asyncio.get_running_loop().time() - started < 3
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", router.port)


async def test_wait_for_gives_up() -> None:
    with pytest.raises(AssertionError):
        await wait_for(lambda: False, within=0.05)


# --- the plugin ------------------------------------------------------------------------


def test_the_entry_point_registers_the_local_router() -> None:
    (entry,) = [e for e in entry_points(group="mastra_admin") if e.name == "router-local"]
    assert entry.value == "mastra_admin.routers.local.plugin"
    (spec,) = mastra_admin_providers()
    assert (spec.kind, spec.name) == ("router", "local")
    assert spec.settings_model is LocalRouterSettings
    port = LocalRouterSettings.model_json_schema()["properties"]["port"]
    assert port["env"] == ["PROXY_PORT"]


async def test_the_factory_takes_storage_domain_and_data_dir_from_the_context(
    storage: AdminStorage, tmp_path: Path
) -> None:
    context = ProviderContext(
        settings=MastraAdminSettings(base_domain="mastra.local", data_dir=tmp_path),
        data_dir=tmp_path,
        storage=storage,
    )
    router = create_router(LocalRouterSettings(port=0), context)
    assert router.base_domain == "mastra.local"
    assert router.settings.tls_dir == tmp_path / "router" / "tls"

    kept = create_router(LocalRouterSettings(base_domain="dev.test"), context)
    assert kept.base_domain == "dev.test"

    with pytest.raises(Unavailable):
        create_router(
            LocalRouterSettings(), ProviderContext(settings=context.settings, data_dir=tmp_path)
        )


async def test_the_composition_root_builds_and_starts_the_local_router(
    storage: AdminStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mastra_admin.core.compose import build_admin
    from mastra_admin.core.settings import load_settings

    port = free_port()
    monkeypatch.setenv("PROXY_PORT", str(port))
    settings = load_settings(
        data_dir=tmp_path,
        base_domain="mastra.test",
        router={"provider": "local", "health_interval_s": 0},
    )
    admin = await build_admin(
        settings,
        overrides={"storage": storage, "runner": None, "source": None, "observability": None},
    )
    try:
        await admin.init()
        router = admin.router
        assert isinstance(router, LocalEdgeRouter)
        assert router.serving
        assert router.port == port
        assert (
            router.public_url("shop-main.search") == f"http://shop-main.search.mastra.test:{port}"
        )
    finally:
        await admin.close()
