"""Plain HTTP through the router: methods, bodies, headers, framing, connections."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import ClientSession, web
from yarl import URL

from mastra_admin.routers.local import LocalEdgeRouter

from .conftest import AppFactory

RouteTo = Callable[..., Awaitable[str]]


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "raw_path": request.raw_path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body.decode("latin-1"),
            "peer": request.transport.get_extra_info("peername")[1] if request.transport else None,
        },
        status=int(request.query.get("status", "200")),
    )


@pytest.fixture
async def echo_host(serve_app: AppFactory, route_to: RouteTo) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    host, port = await serve_app(app)
    return await route_to(host, port)


def url(router: LocalEdgeRouter, path: str = "/") -> str:
    return f"http://127.0.0.1:{router.port}{path}"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_every_method_and_body_reaches_the_upstream(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str, method: str
) -> None:
    async with client.request(
        method,
        URL(url(router, "/api/agents/weather?stream=1&x=%2F"), encoded=True),
        headers={"Host": echo_host},
        data=b"payload-" + method.encode(),
    ) as response:
        seen = await response.json()

    assert response.status == 200
    assert seen["method"] == method
    assert seen["raw_path"] == "/api/agents/weather?stream=1&x=%2F"
    assert seen["body"] == "payload-" + method


async def test_head_and_upstream_status_codes_pass_through(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    async with client.head(url(router, "/"), headers={"Host": echo_host}) as head:
        assert head.status == 200
        assert int(head.headers["Content-Length"]) > 0
        assert await head.read() == b""
    for status in (201, 404, 500):
        async with client.get(url(router, f"/?status={status}"), headers={"Host": echo_host}) as r:
            assert r.status == status
            assert (await r.json())["method"] == "GET"


async def test_forwarded_headers_are_set_and_the_host_is_kept(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    async with client.get(
        url(router, "/"),
        headers={"Host": f"{echo_host}:{router.port}", "X-Forwarded-For": "203.0.113.7"},
    ) as response:
        seen = (await response.json())["headers"]

    assert seen["host"] == f"{echo_host}:{router.port}"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"{echo_host}:{router.port}"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-request-id"])
    assert response.headers["X-Request-Id"] == seen["x-request-id"]


async def test_an_incoming_request_id_is_kept(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    async with client.get(
        url(router, "/"), headers={"Host": echo_host, "X-Request-Id": "req-42"}
    ) as response:
        seen = (await response.json())["headers"]
    assert seen["x-request-id"] == "req-42"
    assert response.headers["X-Request-Id"] == "req-42"


async def test_hop_by_hop_headers_are_dropped_both_ways(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {k.lower(): v for k, v in request.headers.items()},
            headers={"Connection": "X-Upstream-Secret", "X-Upstream-Secret": "1", "X-Kept": "yes"},
        )

    app = web.Application()
    app.router.add_get("/", handler)
    host = await route_to(*await serve_app(app))

    async with client.get(
        url(router, "/"),
        headers={
            "Host": host,
            "Connection": "keep-alive, X-Client-Secret",
            "X-Client-Secret": "s3cret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "Authorization": "Bearer end-to-end",
        },
    ) as response:
        seen = await response.json()

    for dropped in ("x-client-secret", "keep-alive", "te", "proxy-authorization"):
        assert dropped not in seen
    assert seen["authorization"] == "Bearer end-to-end"
    assert "X-Upstream-Secret" not in response.headers
    assert response.headers["X-Kept"] == "yes"


async def test_pooled_upstream_connections_are_reused(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    peers = set()
    for _ in range(20):
        async with client.get(url(router, "/"), headers={"Host": echo_host}) as response:
            peers.add((await response.json())["peer"])
    assert len(peers) == 1


async def test_a_chunked_request_body_is_streamed_upstream(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"alpha-", b"beta-", b"gamma"):
            yield part
            await asyncio.sleep(0.01)

    async with client.post(url(router, "/"), headers={"Host": echo_host}, data=body()) as response:
        seen = await response.json()
    assert seen["body"] == "alpha-beta-gamma"
    assert seen["headers"]["transfer-encoding"] == "chunked"


async def raw_exchange(
    router: LocalEdgeRouter, request: bytes, *, until_close: bool = True
) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(request)
    await writer.drain()
    try:
        if until_close:
            return await asyncio.wait_for(reader.read(), 10)
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order(
    router: LocalEdgeRouter, echo_host: str
) -> None:
    request = b"GET /first HTTP/1.1\r\nHost: %s\r\n\r\n" % echo_host.encode()
    last = b"GET /second HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % echo_host.encode()

    answer = await raw_exchange(router, request + last)

    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.index(b'"/first"') < answer.index(b'"/second"')


async def test_an_http10_client_gets_a_close_delimited_stream(
    router: LocalEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # chunked towards the proxy
        for part in (b"one ", b"two ", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", stream)
    host = await route_to(*await serve_app(app))

    answer = await raw_exchange(router, b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % host.encode())

    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert b"Connection: close" in head
    assert body == b"one two three"


async def test_an_absolute_form_target_is_routed_by_its_host(
    router: LocalEdgeRouter, echo_host: str
) -> None:
    request = (
        b"GET http://%s:%d/abs?q=1 HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n"
        % (echo_host.encode(), router.port)
    )
    answer = await raw_exchange(router, request)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"/abs?q=1"' in answer


async def test_expect_100_continue_is_passed_through(
    router: LocalEdgeRouter, client: ClientSession, echo_host: str
) -> None:
    async with client.put(
        url(router, "/upload"), headers={"Host": echo_host}, data=b"x" * 1000, expect100=True
    ) as response:
        seen = await response.json()
    assert response.status == 200
    assert len(seen["body"]) == 1000


async def test_garbage_is_answered_400_and_the_connection_closed(router: LocalEdgeRouter) -> None:
    answer = await raw_exchange(router, b"THIS IS NOT HTTP\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"bad_request"' in answer


async def test_an_http10_keep_alive_client_is_told_so(
    router: LocalEdgeRouter, echo_host: str
) -> None:
    answer = await raw_exchange(
        router,
        b"GET /one HTTP/1.0\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" % echo_host.encode(),
        until_close=False,
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"Connection: keep-alive" in answer
