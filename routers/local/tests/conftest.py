"""Real routers, real upstream servers and a real client for the local router's tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout, web

from mastra_admin.core.models import Deployment, DeploymentType, Project, Team
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.core.testing.router import RouterResponse
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings

AppFactory = Callable[[web.Application], Awaitable[tuple[str, int]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def storage() -> AsyncIterator[AdminStorage]:
    storage = InMemoryAdminStorage()
    await storage.init()
    yield storage
    await storage.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "router_settings(**fields): settings of the test's router (LocalRouterSettings)"
    )


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> LocalRouterSettings:
    """A router on a free port with no background loops (tests drive them), changed
    by the test's ``router_settings`` marker."""
    fields: dict[str, object] = {
        "port": 0,
        "health_interval_s": 0,
        "sync_interval_s": 0,
        "read_timeout_s": 5,
        "connect_timeout_s": 2,
    }
    marker = request.node.get_closest_marker("router_settings")
    if marker is not None:
        fields.update(marker.kwargs)
    return LocalRouterSettings.model_validate(fields)


@pytest_asyncio.fixture
async def router(
    settings: LocalRouterSettings, storage: AdminStorage
) -> AsyncIterator[LocalEdgeRouter]:
    router = LocalEdgeRouter(settings, storage.routes)
    await router.start()
    yield router
    await router.close()


@pytest_asyncio.fixture
async def serve_app() -> AsyncIterator[AppFactory]:
    """Run aiohttp applications on free ports as upstreams; cleaned up afterwards."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> tuple[str, int]:
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return "127.0.0.1", int(port)

    yield serve
    for runner in runners:
        await runner.cleanup()


@pytest_asyncio.fixture
async def route_to(router: LocalEdgeRouter, storage: AdminStorage) -> Callable[..., Awaitable[str]]:
    """``await route_to(host, port, subdomain=...)``: a deployment routed at an
    upstream; returns the public host name."""
    counter = 0

    async def make(host: str, port: int, subdomain: str | None = None) -> str:
        nonlocal counter
        counter += 1
        team = await storage.teams.create(Team(name=f"T{counter}", slug=f"team{counter}"))
        project = await storage.projects.create(
            Project(team_id=team.id, name="Shop", slug="shop", source_type="local")
        )
        deployment = await storage.deployments.create(
            Deployment(
                project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
            )
        )
        route = await router.register_route(
            RouteConfig(
                deployment_id=deployment.id,
                project_id=project.id,
                subdomain=subdomain if subdomain is not None else f"shop-main.team{counter}",
                target_host=host,
                target_port=port,
            )
        )
        return f"{route.subdomain}.{router.base_domain}"

    return make


@pytest_asyncio.fixture
async def client() -> AsyncIterator[ClientSession]:
    async with ClientSession(timeout=ClientTimeout(total=60), auto_decompress=False) as session:
        yield session


async def send_through(
    router: EdgeRouterProvider,
    host: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> RouterResponse:
    """A request for ``host`` through the local router (its port, that Host header)."""
    assert isinstance(router, LocalEdgeRouter)
    async with (
        ClientSession(timeout=ClientTimeout(total=30)) as session,
        session.request(
            method,
            f"http://127.0.0.1:{router.port}{path}",
            headers={"Host": f"{host}:{router.port}", **(headers or {})},
        ) as response,
    ):
        body = await response.read()
        return RouterResponse(
            status=response.status,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
        )


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
