"""WebSocket upgrades pass through the router: messages both ways, subprotocols,
close codes, large messages, and a refused upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientSession, WSMsgType, web

from mastra_admin.routers.local import LocalEdgeRouter

from .conftest import AppFactory

RouteTo = Callable[..., Awaitable[str]]


@pytest.fixture
async def ws_host(serve_app: AppFactory, route_to: RouteTo) -> tuple[str, list[int]]:
    """An upstream echoing text and binary messages; ``bye`` makes it close with 4001.
    The list collects the close codes the upstream saw from its client."""
    closed_by_client: list[int] = []

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("mastra.v1",), max_msg_size=8 * 2**20)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                if message.data == "bye":
                    await ws.close(code=4001, message=b"done")
                    break
                await ws.send_str(f"echo:{message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        if ws.close_code is not None and ws.close_code != 4001:
            closed_by_client.append(ws.close_code)
        return ws

    async def plain(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no sockets here")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/plain", plain)
    host = await route_to(*await serve_app(app))
    return host, closed_by_client


async def test_messages_pass_both_ways(
    router: LocalEdgeRouter, client: ClientSession, ws_host: tuple[str, list[int]]
) -> None:
    host, closed_by_client = ws_host
    async with client.ws_connect(
        f"http://127.0.0.1:{router.port}/ws", headers={"Host": host}, protocols=("mastra.v1",)
    ) as ws:
        assert ws.protocol == "mastra.v1"
        for n in range(20):
            await ws.send_str(f"token {n}")
            assert await ws.receive_str(timeout=2) == f"echo:token {n}"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes(timeout=2) == b"\x02\x01\x00"
        await ws.close(code=4100)
    for _ in range(100):
        if closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert closed_by_client == [4100]


async def test_a_large_message_passes_whole(
    router: LocalEdgeRouter, client: ClientSession, ws_host: tuple[str, list[int]]
) -> None:
    host, _ = ws_host
    big = bytes(range(256)) * 4096  # 1 MiB
    async with client.ws_connect(
        f"http://127.0.0.1:{router.port}/ws", headers={"Host": host}, max_msg_size=8 * 2**20
    ) as ws:
        await ws.send_bytes(big)
        assert await ws.receive_bytes(timeout=5) == big[::-1]


async def test_the_upstreams_close_code_reaches_the_client(
    router: LocalEdgeRouter, client: ClientSession, ws_host: tuple[str, list[int]]
) -> None:
    host, _ = ws_host
    async with client.ws_connect(
        f"http://127.0.0.1:{router.port}/ws", headers={"Host": host}
    ) as ws:
        await ws.send_str("bye")
        message = await ws.receive(timeout=2)
        assert message.type is WSMsgType.CLOSE
        assert message.data == 4001
        assert message.extra == "done"


async def test_a_refused_upgrade_answers_with_the_upstreams_status(
    router: LocalEdgeRouter, client: ClientSession, ws_host: tuple[str, list[int]]
) -> None:
    host, _ = ws_host
    async with client.get(
        f"http://127.0.0.1:{router.port}/plain",
        headers={
            "Host": host,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    ) as response:
        assert response.status == 403
        assert await response.text() == "no sockets here"


async def test_many_sockets_at_once(
    router: LocalEdgeRouter, client: ClientSession, ws_host: tuple[str, list[int]]
) -> None:
    host, _ = ws_host

    async def one(n: int) -> str:
        async with client.ws_connect(
            f"http://127.0.0.1:{router.port}/ws", headers={"Host": host}
        ) as ws:
            await ws.send_str(str(n))
            return await ws.receive_str(timeout=5)

    answers = await asyncio.gather(*(one(n) for n in range(50)))
    assert answers == [f"echo:{n}" for n in range(50)]
