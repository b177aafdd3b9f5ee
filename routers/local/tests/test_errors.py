"""The router's own answers: 400, 404, 502, 503, 504, as JSON or an HTML page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientPayloadError, ClientSession, web

from mastra_admin.core.models import RouteStatus
from mastra_admin.routers.local import LocalEdgeRouter

from .conftest import AppFactory, free_port
from .test_proxy_http import raw_exchange, url

RouteTo = Callable[..., Awaitable[str]]


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_unknown_host_is_404_json_naming_only_that_host(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    app = web.Application()
    app.router.add_get("/", ok)
    await route_to(*await serve_app(app), subdomain="secret-project.team")

    async with client.get(url(router), headers={"Host": "nothing.team.localhost:8080"}) as r:
        body = await r.json()
        assert r.status == 404
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["X-Request-Id"]
    assert body == {
        "error": {
            "code": "route_not_found",
            "message": "No deployment is routed at nothing.team.localhost.",
        }
    }


async def test_browsers_get_an_html_page(router: LocalEdgeRouter, client: ClientSession) -> None:
    async with client.get(
        url(router),
        headers={"Host": "<script>.localhost", "Accept": "text/html,application/xhtml+xml"},
    ) as r:
        page = await r.text()
    assert r.status == 400
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<script>" not in page

    async with client.get(
        url(router), headers={"Host": "shop-main.team.localhost", "Accept": "text/html"}
    ) as r:
        page = await r.text()
    assert r.status == 404
    assert "No deployment is routed at shop-main.team.localhost." in page
    assert page.startswith("<!doctype html>")


async def test_malformed_or_missing_host_is_400(router: LocalEdgeRouter) -> None:
    no_host = await raw_exchange(router, b"GET / HTTP/1.0\r\n\r\n")
    assert no_host.startswith(b"HTTP/1.1 400")
    assert b"no single Host header" in no_host

    two_hosts = await raw_exchange(
        router,
        b"GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\nConnection: close\r\n\r\n",
    )
    assert two_hosts.startswith(b"HTTP/1.1 400")

    for bad in (b"bad host!", b"a..b.localhost", b"x.localhost:99999", b"-x.localhost"):
        answer = await raw_exchange(
            router, b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % bad
        )
        assert answer.startswith(b"HTTP/1.1 400"), bad
        assert b'"bad_host"' in answer


async def test_a_dead_upstream_is_502(
    router: LocalEdgeRouter, client: ClientSession, route_to: RouteTo
) -> None:
    host = await route_to("127.0.0.1", free_port())  # nothing listens there
    async with client.get(url(router), headers={"Host": host}) as r:
        body = await r.json()
    assert r.status == 502
    assert body["error"]["code"] == "upstream_unreachable"
    assert host in body["error"]["message"]
    assert "127.0.0.1" not in body["error"]["message"]


async def test_an_upstream_closing_without_answering_is_502(
    router: LocalEdgeRouter, client: ClientSession, route_to: RouteTo
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        host = await route_to("127.0.0.1", server.sockets[0].getsockname()[1])
        async with client.get(url(router), headers={"Host": host}) as r:
            body = await r.json()
        assert r.status == 502
        assert body["error"]["code"] == "bad_gateway"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.router_settings(read_timeout_s=0.3)
async def test_a_slow_upstream_is_504(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/", slow)
    host = await route_to(*await serve_app(app))

    started = asyncio.get_running_loop().time()
    async with client.get(url(router), headers={"Host": host}) as r:
        body = await r.json()
    assert r.status == 504
    assert body["error"]["code"] == "upstream_timeout"
    assert asyncio.get_running_loop().time() - started < 1.5


@pytest.mark.router_settings(read_timeout_s=0.3)
async def test_an_upstream_stalling_mid_body_cuts_the_response(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        await asyncio.sleep(2)
        return response

    app = web.Application()
    app.router.add_get("/", stall)
    host = await route_to(*await serve_app(app))

    async with client.get(url(router), headers={"Host": host}) as r:
        assert r.status == 200
        try:
            await r.read()
        except ClientPayloadError:
            pass
        else:
            raise AssertionError("a truncated body must not look complete")


async def test_a_stopped_deployment_is_503(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    app = web.Application()
    app.router.add_get("/", ok)
    host = await route_to(*await serve_app(app))
    (route,) = await router.list_routes()
    await router.set_route_status(route.id, RouteStatus.STOPPED)

    async with client.get(url(router), headers={"Host": host}) as r:
        body = await r.json()
    assert r.status == 503
    assert body["error"] == {
        "code": "deployment_stopped",
        "message": f"The deployment at {host} is stopped.",
    }


async def test_an_error_for_head_has_no_body_and_the_connection_goes_on(
    router: LocalEdgeRouter,
) -> None:
    answer = await raw_exchange(
        router,
        b"HEAD / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\nConnection: close\r\n\r\n",
    )
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404")
    assert rest.startswith(b"HTTP/1.1 404")
    assert rest.endswith(b"}")


async def test_an_oversized_request_head_is_431(router: LocalEdgeRouter) -> None:
    huge = b"GET / HTTP/1.1\r\nHost: x.localhost\r\n" + b"X-Filler: %s\r\n" % (b"a" * 8000) * 10
    answer = await raw_exchange(router, huge + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert b'"request_head_too_large"' in answer
