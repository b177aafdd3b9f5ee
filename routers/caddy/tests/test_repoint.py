"""Re-pointing a route under load: Caddy reloads on every change, and no request fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from mastra_admin.core.models import Route
from mastra_admin.routers.caddy import CaddyEdgeRouter

from .conftest import AppFactory, host_of, named_app

RouteTo = Callable[..., Awaitable[Route]]
SWITCHES = 100
CLIENTS = 8


async def test_no_request_fails_during_100_switches_under_load(
    router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    a = await serve_app(named_app("a"))
    b = await serve_app(named_app("b"))
    route = await route_to(router, *a)
    host = host_of(router, route)
    url = f"http://127.0.0.1:{router.http_port}/api/agents"
    stop = asyncio.Event()
    answers: dict[str, int] = {}
    failures: list[str] = []

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    async with session.get(url, headers={"Host": host}) as response:
                        text = await response.text()
                        if response.status == 200:
                            answers[text] = answers.get(text, 0) + 1
                        else:
                            failures.append(f"{response.status} {text[:80]}")
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

    clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    served_after: list[float] = []
    try:
        async with aiohttp.ClientSession() as probe:
            for n in range(SWITCHES):
                target, name = (b, "b") if n % 2 == 0 else (a, "a")
                started = time.perf_counter()
                await router.update_route(route.id, target_host=target[0], target_port=target[1])
                # update_route returns once Caddy serves the new target: the very next
                # request is answered by it.
                async with probe.get(url, headers={"Host": host}) as response:
                    assert await response.text() == name
                served_after.append(time.perf_counter() - started)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert failures == []
    assert answers.get("a", 0) > SWITCHES
    assert answers.get("b", 0) > SWITCHES
    served_after.sort()
    assert served_after[int(len(served_after) * 0.95)] < 1.0


async def test_many_changes_at_once_are_coalesced_into_few_reloads(
    router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    a = await serve_app(named_app("a"))
    routes = [await route_to(router, *a) for _ in range(10)]
    b = await serve_app(named_app("b"))
    loads = 0
    original = router._admin.load  # type: ignore[union-attr]

    async def counting(config: dict[str, object]) -> None:
        nonlocal loads
        loads += 1
        await original(config)

    router._admin.load = counting  # type: ignore[method-assign,union-attr]

    await asyncio.gather(
        *(router.update_route(r.id, target_host=b[0], target_port=b[1]) for r in routes)
    )

    assert 1 <= loads <= 3
    async with aiohttp.ClientSession() as session:
        for route in routes:
            response = await session.get(
                f"http://127.0.0.1:{router.http_port}/", headers={"Host": host_of(router, route)}
            )
            assert await response.text() == "b"


async def test_a_large_request_body_and_streamed_answer_pass_through(
    router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for start in range(0, len(body), 65536):
            await response.write(body[start : start + 65536])
        return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/upload", echo)
    route = await route_to(router, *await serve_app(app))
    payload = bytes(range(256)) * 40_000  # 10 MB

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{router.http_port}/upload",
            data=payload,
            headers={"Host": host_of(router, route)},
        ) as response,
    ):
        assert response.status == 200
        assert await response.read() == payload
