"""Long-lived streams across route changes: SSE survives other deployments' switches;
a redeploy ends streams to the old server only after ``stream_close_delay``, and
``drain`` waits for them."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from mastra_admin.core.models import Route
from mastra_admin.routers.caddy import CaddyEdgeRouter

from .conftest import AppFactory, RouterFactory, host_of, named_app

RouteTo = Callable[..., Awaitable[Route]]
DELAY_S = 2.0


def events_app(name: str) -> web.Application:
    """``/events``: an endless SSE stream, one event every 50 ms; ``/ws``: an echo
    WebSocket that prefixes the server's name."""

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        n = 0
        while True:
            await response.write(f"data: {name} {n}\n\n".encode())
            n += 1
            await asyncio.sleep(0.05)

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                await socket.send_str(f"{name}: {message.data}")
        return socket

    app = web.Application()
    app.router.add_get("/events", events)
    app.router.add_get("/ws", ws)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=name)

    app.router.add_get("/{tail:.*}", hello)
    return app


class EventCounter:
    """Reads an SSE stream in the background, counting events and noting its end."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.events: list[str] = []
        self.ended_at: float | None = None
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._read(lines))

    async def _read(self, lines: AsyncIterator[str]) -> None:
        try:
            async for line in lines:
                if line.startswith("data: "):
                    self.events.append(line[6:].strip())
        except Exception as exc:  # kept for the assertion messages
            self.error = exc
        finally:
            self.ended_at = time.monotonic()

    async def grows(self, within: float = 2.0) -> bool:
        before = len(self.events)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.events) > before:
                return True
            await asyncio.sleep(0.02)
        return False


async def _sse_over_http1(router: CaddyEdgeRouter, host: str) -> AsyncIterator[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{router.http_port}/events", headers={"Host": host}) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        async for raw in r.content:
            yield raw.decode()


def _curl_with_http2() -> str | None:
    curl = shutil.which("curl")
    if curl is None:
        return None
    features = subprocess.run([curl, "--version"], capture_output=True, text=True).stdout
    return curl if "HTTP2" in features else None


async def _sse_over_http2(router: CaddyEdgeRouter, host: str) -> AsyncIterator[str]:
    """SSE over HTTP/2 with curl (nghttp2). A reload makes Caddy send GOAWAY
    (NO_ERROR, naming the last stream it still serves); nghttp2, like browsers, keeps
    those streams, whereas Python's h2 (and so httpx) fails every stream on any GOAWAY."""
    curl = _curl_with_http2()
    assert curl is not None
    assert router.ca_file is not None
    process = await asyncio.create_subprocess_exec(
        curl,
        "--silent",
        "--show-error",
        "--no-buffer",
        "--http2",
        "--compressed",
        "--cacert",
        str(router.ca_file),
        "--resolve",
        f"{host}:{router.https_port}:127.0.0.1",
        f"https://{host}:{router.https_port}/events",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async for raw in process.stdout:
            yield raw.decode()
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _curl_http_version(router: CaddyEdgeRouter, host: str) -> str:
    curl = _curl_with_http2()
    assert curl is not None
    process = await asyncio.create_subprocess_exec(
        curl,
        "--silent",
        "--http2",
        "--cacert",
        str(router.ca_file),
        "--resolve",
        f"{host}:{router.https_port}:127.0.0.1",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_version}",
        f"https://{host}:{router.https_port}/",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return out.decode().strip()


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/2"])
async def test_an_sse_stream_survives_ten_switches_of_other_deployments(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo, protocol: str
) -> None:
    if protocol == "HTTP/2":
        # httpx and h2 drop open streams on Caddy's graceful GOAWAY; curl (Debian's,
        # built with nghttp2, installed by .ci/run) keeps them, as browsers do.
        assert _curl_with_http2() is not None, "curl with HTTP/2 (nghttp2) is needed"
    router = await make_router(
        tls="internal" if protocol == "HTTP/2" else "off", stream_close_delay_s=DELAY_S
    )
    streaming = await route_to(router, *await serve_app(events_app("s")))
    other = await route_to(router, *await serve_app(named_app("b1")))
    b2 = await serve_app(named_app("b2"))
    b1 = (other.target_host, other.target_port)
    opener = _sse_over_http2 if protocol == "HTTP/2" else _sse_over_http1
    if protocol == "HTTP/2":
        assert await _curl_http_version(router, host_of(router, streaming)) == "2"
    counter = EventCounter(opener(router, host_of(router, streaming)))
    try:
        assert await counter.grows(), f"the stream did not start: {counter.error!r}"
        for n in range(10):
            host, port = b2 if n % 2 == 0 else b1
            await router.update_route(other.id, target_host=host, target_port=port)
            assert await counter.grows(), (
                f"the stream stopped after switch {n + 1}: {counter.error!r} {counter.ended_at}"
            )
        await asyncio.sleep(DELAY_S + 0.5)  # past the close delay of every replaced config
        assert await counter.grows()
        assert counter.ended_at is None
        numbers = [int(e.split()[1]) for e in counter.events]
        assert numbers == list(range(len(numbers))), "events were lost or repeated"
    finally:
        counter.task.cancel()


async def test_a_redeploy_ends_the_old_servers_streams_only_after_the_delay(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    router = await make_router(stream_close_delay_s=DELAY_S)
    old = await serve_app(events_app("old"))
    route = await route_to(router, *old)
    host = host_of(router, route)
    counter = EventCounter(_sse_over_http1(router, host))
    try:
        assert await counter.grows()
        new = await serve_app(events_app("new"))
        await router.update_route(route.id, target_host=new[0], target_port=new[1])

        started = time.monotonic()
        await router.drain(*old)
        waited = time.monotonic() - started

        # The stream held a request to the old server all along: drain waited the
        # whole delay, and the stream was still receiving from the old server.
        assert DELAY_S - 0.3 <= waited <= DELAY_S + 1.5
        assert counter.ended_at is None
        assert await counter.grows()
        assert counter.events[-1].startswith("old ")
    finally:
        counter.task.cancel()
    async with aiohttp.ClientSession() as session:
        fresh = await session.get(f"http://127.0.0.1:{router.http_port}/", headers={"Host": host})
        assert await fresh.text() == "new"


async def test_a_websocket_of_a_redeployed_deployment_is_closed_after_the_delay_and_drained(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    router = await make_router(stream_close_delay_s=DELAY_S)
    old = await serve_app(events_app("old"))
    route = await route_to(router, *old)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"http://127.0.0.1:{router.http_port}/ws",
            headers={"Host": host_of(router, route)},
        ) as socket,
    ):
        await socket.send_str("hi")
        assert (await socket.receive_str(timeout=5)) == "old: hi"
        new = await serve_app(events_app("new"))
        await router.update_route(route.id, target_host=new[0], target_port=new[1])
        switched = time.monotonic()

        await asyncio.sleep(DELAY_S / 2)
        await socket.send_str("still there?")
        assert (await socket.receive_str(timeout=5)) == "old: still there?"

        drain = asyncio.create_task(router.drain(*old))
        message = await socket.receive(timeout=DELAY_S + 5)
        closed_after = time.monotonic() - switched
        await asyncio.wait_for(drain, 5)
        drained_after = time.monotonic() - switched

    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert DELAY_S - 0.3 <= closed_after <= DELAY_S + 2
    assert drained_after <= DELAY_S + 2.5


async def test_a_websocket_survives_another_deployments_switch_for_the_delay(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    """Caddy's limit, stated in the README: every change reloads Caddy, and upgraded
    streams of the replaced configuration end ``stream_close_delay`` later."""
    router = await make_router(stream_close_delay_s=DELAY_S)
    route = await route_to(router, *await serve_app(events_app("a")))
    other = await route_to(router, *await serve_app(named_app("b1")))
    b2 = await serve_app(named_app("b2"))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"http://127.0.0.1:{router.http_port}/ws",
            headers={"Host": host_of(router, route)},
        ) as socket,
    ):
        await router.update_route(other.id, target_host=b2[0], target_port=b2[1])
        switched = time.monotonic()
        await asyncio.sleep(DELAY_S * 0.75)
        await socket.send_str("ping")
        assert (await socket.receive_str(timeout=5)) == "a: ping"
        message = await socket.receive(timeout=DELAY_S + 5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert time.monotonic() - switched >= DELAY_S - 0.3


async def test_drain_returns_at_once_when_nothing_is_open(
    router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    old = await serve_app(named_app("old"))
    route = await route_to(router, *old)
    new = await serve_app(named_app("new"))
    await router.update_route(route.id, target_host=new[0], target_port=new[1])

    started = time.monotonic()
    await router.drain(*old)

    assert time.monotonic() - started < 0.5
