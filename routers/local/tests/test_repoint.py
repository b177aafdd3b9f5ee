"""Re-pointing a route while a client sends requests continuously loses none of them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import ClientError, ClientSession, web

from mastra_admin.core.router import RouteConfig
from mastra_admin.routers.local import LocalEdgeRouter

RouteTo = Callable[..., Awaitable[str]]
CLIENTS = 8


class Server:
    """A real upstream on its own port that can be stopped like a replaced deployment."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> Server:
        async def hello(request: web.Request) -> web.Response:
            body = await request.read()
            await asyncio.sleep(0.002)  # some requests are in flight at every re-point
            return web.json_response({"server": self.name, "received": len(body)})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", hello)
        self.runner = web.AppRunner(app, shutdown_timeout=2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def hammer(
    router: LocalEdgeRouter,
    host: str,
    stop: asyncio.Event,
    served: Counter[str],
    failures: list[str],
) -> None:
    async with ClientSession() as session:
        n = 0
        while not stop.is_set():
            n += 1
            method, data = ("POST", b"x" * 512) if n % 4 == 0 else ("GET", None)
            try:
                async with session.request(
                    method,
                    f"http://127.0.0.1:{router.port}/api/ping",
                    headers={"Host": host},
                    data=data,
                ) as response:
                    if response.status != 200:
                        failures.append(f"{method} {response.status}: {await response.text()}")
                        continue
                    served[(await response.json())["server"]] += 1
            except ClientError as exc:
                failures.append(f"{method} {type(exc).__name__}: {exc}")


async def test_repointing_back_and_forth_under_load_fails_no_request(
    router: LocalEdgeRouter, route_to: RouteTo
) -> None:
    a, b = await Server("a").start(), await Server("b").start()
    try:
        host = await route_to("127.0.0.1", a.port)
        (route,) = await router.list_routes()
        stop, served, failures = asyncio.Event(), Counter[str](), []
        clients = [
            asyncio.create_task(hammer(router, host, stop, served, failures))
            for _ in range(CLIENTS)
        ]

        for n in range(40):
            await asyncio.sleep(0.03)
            target = b if n % 2 == 0 else a
            await router.update_route(route.id, target_host="127.0.0.1", target_port=target.port)
        stop.set()
        await asyncio.gather(*clients)

        assert failures == []
        assert served["a"] > 10
        assert served["b"] > 10
    finally:
        await a.stop()
        await b.stop()


async def test_deploying_new_servers_and_stopping_old_ones_fails_no_request(
    router: LocalEdgeRouter, route_to: RouteTo
) -> None:
    """The deploy flow: start the new server, re-point, stop the previous one; again."""
    current = await Server("gen-0").start()
    host = await route_to("127.0.0.1", current.port)
    (route,) = await router.list_routes()
    stop, served, failures = asyncio.Event(), Counter[str](), []
    clients = [
        asyncio.create_task(hammer(router, host, stop, served, failures)) for _ in range(CLIENTS)
    ]
    try:
        for generation in range(1, 6):
            await asyncio.sleep(0.15)
            new = await Server(f"gen-{generation}").start()
            await router.register_route(
                router_config(route.deployment_id, route.project_id, route.subdomain, new.port)
            )
            previous, current = current, new
            await previous.stop()
        await asyncio.sleep(0.15)
    finally:
        stop.set()
        await asyncio.gather(*clients)
        await current.stop()

    assert failures == []
    assert set(served) == {f"gen-{g}" for g in range(6)}
    assert sum(served.values()) > 60


def router_config(deployment_id: str, project_id: str, subdomain: str, port: int) -> RouteConfig:
    return RouteConfig(
        deployment_id=deployment_id,
        project_id=project_id,
        subdomain=subdomain,
        target_host="127.0.0.1",
        target_port=port,
    )
