"""``RouterConformance``: what every ``EdgeRouterProvider`` does, checked with real
HTTP servers behind the router and real requests through it.

An adapter subclasses the suite, sets ``__test__ = True`` and overrides two fixtures::

    class TestMyRouter(RouterConformance):
        __test__ = True

        @pytest.fixture
        def router_factory(self, tmp_path):
            async def make(routes: RouteStore) -> EdgeRouterProvider:
                router = MyRouter(MySettings(...), routes)
                await router.start()
                return router        # the suite closes it
            return make

        @pytest.fixture
        def router_request(self):
            async def send(router, host, path="/", *, method="GET", headers=None):
                ...                  # a request for ``host`` through ``router``
                return RouterResponse(status, headers, body)
            return send

It may also override ``storage`` (the ``AdminStorage`` whose route store backs the
router; default ``InMemoryAdminStorage``) and ``upstream`` (a factory of HTTP servers
the router can reach; default: servers on 127.0.0.1 in this process).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from mastra_admin.core.errors import Conflict, NotFound
from mastra_admin.core.models import Deployment, DeploymentType, Project, RouteStatus, Team
from mastra_admin.core.router import EdgeRouterProvider, RouteConfig
from mastra_admin.core.storage import AdminStorage, RouteStore

__all__ = [
    "DeploymentRef",
    "RouterConformance",
    "RouterRequest",
    "RouterResponse",
    "Upstream",
    "UpstreamFactory",
    "start_upstream",
]


# --- what the suite exchanges with an adapter --------------------------------------


@dataclass
class RouterResponse:
    """An answer received through the router; header names in lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class RouterRequest(Protocol):
    """Send a request for ``host`` (a public host name) through ``router``."""

    def __call__(
        self,
        router: EdgeRouterProvider,
        host: str,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[RouterResponse]: ...


RouterFactory = Callable[[RouteStore], Awaitable[EdgeRouterProvider]]


# --- upstreams: a small HTTP/1.1 server with nothing but the standard library ------


@dataclass
class Upstream:
    """An HTTP server standing in for a deployed Mastra server.

    Every request is answered with JSON naming the server (``{"upstream": name,
    "method", "path", "headers", "body_length"}``); ``GET /health`` answers 200, or
    503 while ``healthy`` is false. ``requests`` counts what it served.
    """

    name: str
    host: str
    port: int
    healthy: bool = True
    requests: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    async def close(self) -> None:
        """Stop listening and drop open connections (the server is then dead)."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = await self._read_body(reader, headers)
                self.requests += 1
                if target == "/health" and method == "GET":
                    status = 200 if self.healthy else 503
                    body = json.dumps({"status": "ok" if self.healthy else "down"}).encode()
                else:
                    status = 200
                    body = json.dumps(
                        {
                            "upstream": self.name,
                            "method": method,
                            "path": target,
                            "headers": headers,
                            "body_length": length,
                        }
                    ).encode()
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    (
                        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Unavailable'}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
                    ).encode()
                    + body
                )
                await writer.drain()
                if close:
                    return
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> int:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return total
                await reader.readexactly(size + 2)
                total += size
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(length)
        return length


async def start_upstream(name: str, host: str = "127.0.0.1") -> Upstream:
    """Start an ``Upstream`` on a free port of ``host``."""
    upstream = Upstream(name=name, host=host, port=0)
    server = await asyncio.start_server(upstream._serve, host, 0)
    upstream._server = server
    upstream.port = server.sockets[0].getsockname()[1]
    return upstream


UpstreamFactory = Callable[[str], Awaitable[Upstream]]


@dataclass
class DeploymentRef:
    project_id: str
    deployment_id: str


MakeDeployment = Callable[..., Awaitable[DeploymentRef]]


# --- the suite -------------------------------------------------------------------------


class RouterConformance:
    """The edge router contract: register, re-point, stop, remove, find, list,
    check health, make public URLs, persist and restore."""

    __test__ = False

    # -- fixtures an adapter overrides --------------------------------------------------

    @pytest.fixture
    def router_factory(self) -> RouterFactory:
        """``async (routes) -> router``: a started router backed by ``routes``."""
        raise NotImplementedError("override the router_factory fixture")

    @pytest.fixture
    def router_request(self) -> RouterRequest:
        """Send a request for a public host through a router."""
        raise NotImplementedError("override the router_request fixture")

    @pytest_asyncio.fixture
    async def storage(self) -> AsyncIterator[AdminStorage]:
        from mastra_admin.core.testing.memory import InMemoryAdminStorage

        storage = InMemoryAdminStorage()
        await storage.init()
        yield storage
        await storage.close()

    @pytest_asyncio.fixture
    async def upstream(self) -> AsyncIterator[UpstreamFactory]:
        started: list[Upstream] = []

        async def make(name: str) -> Upstream:
            server = await start_upstream(name)
            started.append(server)
            return server

        yield make
        for server in started:
            await server.close()

    # -- fixtures of the suite --------------------------------------------------------

    @pytest_asyncio.fixture
    async def make_router(
        self, storage: AdminStorage, router_factory: RouterFactory
    ) -> AsyncIterator[RouterFactory]:
        """Routers over the storage's route store, closed at the end of the test."""
        made: list[EdgeRouterProvider] = []

        async def make(routes: RouteStore | None = None) -> EdgeRouterProvider:
            router = await router_factory(routes or storage.routes)
            made.append(router)
            return router

        yield make
        for router in made:
            await router.close()

    @pytest_asyncio.fixture
    async def router(self, make_router: RouterFactory, storage: AdminStorage) -> EdgeRouterProvider:
        return await make_router(storage.routes)

    @pytest_asyncio.fixture
    async def deployment(self, storage: AdminStorage) -> MakeDeployment:
        """``await deployment(project_id=None, branch="main")``: a stored deployment
        (and its team and project), as routes need one."""
        counter = 0

        async def make(project_id: str | None = None, branch: str = "main") -> DeploymentRef:
            nonlocal counter
            counter += 1
            if project_id is None:
                team = await storage.teams.create(
                    Team(name=f"Team {counter}", slug=f"team-{counter}-{time.monotonic_ns()}")
                )
                project = await storage.projects.create(
                    Project(
                        team_id=team.id,
                        name=f"Project {counter}",
                        slug=f"project-{counter}",
                        source_type="local",
                    )
                )
                project_id = project.id
            deployment = await storage.deployments.create(
                Deployment(
                    project_id=project_id,
                    type=DeploymentType.PREVIEW,
                    branch=f"{branch}-{counter}",
                    slug=f"{branch}-{counter}",
                )
            )
            return DeploymentRef(project_id=project_id, deployment_id=deployment.id)

        return make

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def host_of(public_url: str) -> str:
        host = urlsplit(public_url).hostname
        assert host, f"public URL without a host: {public_url!r}"
        return host

    @staticmethod
    def config(ref: DeploymentRef, subdomain: str, upstream: Upstream) -> RouteConfig:
        return RouteConfig(
            deployment_id=ref.deployment_id,
            project_id=ref.project_id,
            subdomain=subdomain,
            target_host=upstream.host,
            target_port=upstream.port,
        )

    # -- register and serve -------------------------------------------------------------

    async def test_register_route_serves_the_upstream(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        ref = await deployment()
        server = await upstream("a")
        route = await router.register_route(self.config(ref, "shop-main.search", server))

        assert route.status == RouteStatus.ACTIVE
        assert route.deployment_id == ref.deployment_id
        assert "shop-main.search" in route.public_url
        answer = await router_request(router, self.host_of(route.public_url), "/api/agents?x=1")
        assert answer.status == 200
        assert answer.json()["upstream"] == "a"
        assert answer.json()["path"] == "/api/agents?x=1"

    async def test_public_url_is_the_registered_routes_url(
        self, router: EdgeRouterProvider, deployment: MakeDeployment, upstream: UpstreamFactory
    ) -> None:
        ref = await deployment()
        route = await router.register_route(
            self.config(ref, "docs-feature-x.search", await upstream("a"))
        )
        url = router.public_url("docs-feature-x.search")
        assert url == route.public_url
        assert urlsplit(url).scheme in ("http", "https")
        assert self.host_of(url).startswith("docs-feature-x.search.")

    async def test_registering_a_deployment_again_repoints_its_route(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        ref = await deployment()
        first = await router.register_route(
            self.config(ref, "shop-main.search", await upstream("a"))
        )
        second = await router.register_route(
            self.config(ref, "shop-main.search", await upstream("b"))
        )

        assert second.id == first.id
        answer = await router_request(router, self.host_of(second.public_url), "/")
        assert answer.json()["upstream"] == "b"

    async def test_a_subdomain_held_by_another_deployment_conflicts(
        self, router: EdgeRouterProvider, deployment: MakeDeployment, upstream: UpstreamFactory
    ) -> None:
        server = await upstream("a")
        await router.register_route(self.config(await deployment(), "shop-main.search", server))
        with pytest.raises(Conflict):
            await router.register_route(self.config(await deployment(), "shop-main.search", server))

    # -- re-point, stop, remove ----------------------------------------------------------

    async def test_update_route_repoints_new_requests(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        ref = await deployment()
        route = await router.register_route(
            self.config(ref, "shop-main.search", await upstream("a"))
        )
        b = await upstream("b")

        updated = await router.update_route(route.id, target_host=b.host, target_port=b.port)

        assert (updated.target_host, updated.target_port) == (b.host, b.port)
        answer = await router_request(router, self.host_of(route.public_url), "/")
        assert answer.json()["upstream"] == "b"
        stored = await router.get_route(ref.deployment_id)
        assert stored is not None
        assert stored.target_port == b.port

    async def test_update_of_an_unknown_route_is_not_found(
        self, router: EdgeRouterProvider
    ) -> None:
        with pytest.raises(NotFound):
            await router.update_route("no-such-route", target_host="127.0.0.1", target_port=4100)

    async def test_a_stopped_route_answers_503_until_it_is_active_again(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        route = await router.register_route(
            self.config(await deployment(), "shop-main.search", await upstream("a"))
        )
        host = self.host_of(route.public_url)

        stopped = await router.set_route_status(route.id, RouteStatus.STOPPED)
        assert stopped.status == RouteStatus.STOPPED
        assert (await router_request(router, host, "/")).status == 503

        await router.set_route_status(route.id, RouteStatus.ACTIVE)
        assert (await router_request(router, host, "/")).status == 200

    async def test_a_removed_route_answers_404_and_removing_twice_is_harmless(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        ref = await deployment()
        route = await router.register_route(
            self.config(ref, "shop-main.search", await upstream("a"))
        )

        await router.remove_route(route.id)
        await router.remove_route(route.id)

        assert await router.get_route(ref.deployment_id) is None
        assert (await router_request(router, self.host_of(route.public_url), "/")).status == 404

    async def test_an_unknown_host_is_404_naming_that_host_and_no_other(
        self,
        router: EdgeRouterProvider,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        route = await router.register_route(
            self.config(await deployment(), "shop-main.search", await upstream("a"))
        )
        known = self.host_of(route.public_url)
        unknown = known.replace("shop-main", "nothing-here", 1)

        answer = await router_request(router, unknown, "/", headers={"Accept": "application/json"})

        assert answer.status == 404
        assert unknown in answer.text
        assert "shop-main" not in answer.text
        assert "error" in answer.json()

    # -- find and list --------------------------------------------------------------------

    async def test_routes_are_found_by_deployment_and_listed_by_project(
        self, router: EdgeRouterProvider, deployment: MakeDeployment, upstream: UpstreamFactory
    ) -> None:
        server = await upstream("a")
        one = await deployment()
        two = await deployment(project_id=one.project_id, branch="feature")
        other = await deployment()
        r1 = await router.register_route(self.config(one, "shop-main.search", server))
        r2 = await router.register_route(self.config(two, "shop-feature.search", server))
        r3 = await router.register_route(self.config(other, "docs-main.infra", server))

        found = await router.get_route(two.deployment_id)
        assert found is not None
        assert found.id == r2.id
        assert {r.id for r in await router.list_routes(one.project_id)} == {r1.id, r2.id}
        assert {r.id for r in await router.list_routes()} >= {r1.id, r2.id, r3.id}
        assert await router.get_route("no-such-deployment") is None

    # -- health -------------------------------------------------------------------------

    async def test_health_checks_mark_routes_active_or_unhealthy(
        self, router: EdgeRouterProvider, deployment: MakeDeployment, upstream: UpstreamFactory
    ) -> None:
        server = await upstream("a")
        ref = await deployment()
        route = await router.register_route(self.config(ref, "shop-main.search", server))

        healthy = await router.check_route_health(route.id)
        assert healthy.healthy
        after = await router.get_route(ref.deployment_id)
        assert after is not None
        assert after.status == RouteStatus.ACTIVE
        assert after.last_health_check is not None

        await server.close()
        sick = await router.check_route_health(route.id)
        assert not sick.healthy
        assert sick.error
        after_down = await router.get_route(ref.deployment_id)
        assert after_down is not None
        assert after_down.status == RouteStatus.UNHEALTHY
        assert after_down.last_health_check is not None
        assert after_down.last_health_check >= after.last_health_check

    async def test_health_check_of_an_unknown_route_is_not_found(
        self, router: EdgeRouterProvider
    ) -> None:
        with pytest.raises(NotFound):
            await router.check_route_health("no-such-route")

    # -- persistence --------------------------------------------------------------------

    async def test_routes_are_persisted_and_restored_at_start(
        self,
        make_router: RouterFactory,
        storage: AdminStorage,
        router_request: RouterRequest,
        deployment: MakeDeployment,
        upstream: UpstreamFactory,
    ) -> None:
        ref = await deployment()
        first = await make_router(storage.routes)
        route = await first.register_route(
            self.config(ref, "shop-main.search", await upstream("a"))
        )
        assert await storage.routes.get_by_deployment(ref.deployment_id) is not None
        await first.close()

        second = await make_router(storage.routes)

        restored = await second.get_route(ref.deployment_id)
        assert restored is not None
        assert restored.id == route.id
        answer = await router_request(second, self.host_of(restored.public_url), "/")
        assert answer.status == 200
        assert answer.json()["upstream"] == "a"
