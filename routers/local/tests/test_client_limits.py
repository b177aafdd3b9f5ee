"""Slow and greedy clients: the header, body-idle and keep-alive timeouts close them
within their bounds, the per-client cap refuses connections past it, and none of it
touches normal requests, streams, slow answers, uploads that keep sending or
WebSocket tunnels. Real sockets against a real router, with short timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientSession, WSMsgType, web
from pydantic import ValidationError

from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings

from .conftest import AppFactory, wait_for
from .test_proxy_http import url

RouteTo = Callable[..., Awaitable[str]]

HEADER_S = 0.5
BODY_S = 0.5
KEEPALIVE_S = 0.8  # apart from HEADER_S, so that a test tells which one closed it
DRIBBLE_S = 0.1  # well inside every timeout: a slow client still "making progress"
OUTLIVE_S = 1.6  # longer than every timeout: what must survive them lasts this long
# Scheduling slack on a loaded 2-core machine, on top of the sweep's own lateness.
SLACK_S = 0.5

LIMITS = {
    "header_timeout_s": HEADER_S,
    "body_idle_timeout_s": BODY_S,
    "keepalive_timeout_s": KEEPALIVE_S,
}
pytestmark = pytest.mark.router_settings(**LIMITS)


def latest(router: LocalEdgeRouter, limit: float) -> float:
    """The latest a limit may be enforced: the sweep notices progress up to one
    interval late and runs up to one interval after the limit has passed."""
    engine = router._engine
    assert engine is not None
    return limit + 2 * engine.sweep_interval_s + SLACK_S


def now() -> float:
    return asyncio.get_running_loop().time()


class Raw:
    """A client connection driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    @classmethod
    async def open(cls, router: LocalEdgeRouter) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_closed(self, within: float) -> float:
        """Read until the router closes the connection; returns when that was."""
        async with asyncio.timeout(within):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:  # a dribble that met the closed socket
                    return now()
                if not data:
                    return now()
                self.received += data

    async def response(self, within: float = 5.0) -> bytes:
        """One whole response with a Content-Length body (the keep-alive kind)."""
        async with asyncio.timeout(within):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            return head + await self.reader.readexactly(length)

    async def dribble(self, lines: int | None = None) -> float:
        """A header line every ``DRIBBLE_S`` (forever, or ``lines`` of them) until the
        router answers or closes; returns when the last line was sent."""
        sent = now()
        n = 0
        with contextlib.suppress(ConnectionError):
            while (lines is None or n < lines) and not self.received:
                await self.send(b"X-Slow-%d: still here\r\n" % n)
                sent = now()
                n += 1
                await asyncio.sleep(DRIBBLE_S)
        return sent

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def raw(router: LocalEdgeRouter) -> AsyncIterator[Callable[[], Awaitable[Raw]]]:
    """``await raw()``: a new raw connection to the router, closed afterwards."""
    opened: list[Raw] = []

    async def make() -> Raw:
        conn = await Raw.open(router)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        await conn.close()


@pytest.fixture
async def app_host(serve_app: AppFactory, route_to: RouteTo) -> str:
    """An upstream with a quick answer, an upload, an SSE stream, a slow answer and
    a WebSocket echo."""

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def upload(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n in range(int(OUTLIVE_S / 0.2)):
            await response.write(b"data: %d\n\n" % n)
            await asyncio.sleep(0.2)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(OUTLIVE_S)
        return web.Response(text="thought about it")

    async def late_reader(request: web.Request) -> web.Response:
        await asyncio.sleep(OUTLIVE_S)  # the body backs up into the router meanwhile
        return web.Response(text=str(len(await request.read())))

    async def late_continue(request: web.Request) -> None:
        await asyncio.sleep(OUTLIVE_S)  # the server thinks before it asks for the body
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
        return ws

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_get("/ping", ping)
    app.router.add_post("/upload", upload)
    app.router.add_post("/late-continue", upload, expect_handler=late_continue)
    app.router.add_post("/late-reader", late_reader)
    app.router.add_get("/events", events)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", socket)
    return await route_to(*await serve_app(app))


async def keep_pinging(
    router: LocalEdgeRouter, client: ClientSession, host: str, stop: asyncio.Event
) -> list[float]:
    """Normal requests on their own connection until ``stop``; their latencies."""
    latencies: list[float] = []
    while not stop.is_set():
        started = now()
        async with client.get(url(router, "/ping"), headers={"Host": host}) as response:
            assert response.status == 200
            assert await response.text() == "pong"
        latencies.append(now() - started)
        await asyncio.sleep(0.02)
    return latencies


# --- the header timeout ----------------------------------------------------------------


async def test_a_slowloris_head_gets_408_within_the_header_timeout(
    router: LocalEdgeRouter,
    client: ClientSession,
    app_host: str,
    raw: Callable[[], Awaitable[Raw]],
) -> None:
    stop = asyncio.Event()
    normal = asyncio.create_task(keep_pinging(router, client, app_host, stop))
    opened = now()
    slow = await raw()
    await slow.send(b"GET /ping HTTP/1.1\r\nHost: %s\r\n" % app_host.encode())
    dribbling = asyncio.create_task(slow.dribble())

    closed = await slow.until_closed(within=latest(router, HEADER_S) + 2)
    await dribbling
    stop.set()
    latencies = await normal

    # The first head of a connection is timed from its opening.
    assert HEADER_S <= closed - opened <= latest(router, HEADER_S)
    assert slow.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close\r\n" in slow.received
    assert b'"request_timeout"' in slow.received
    assert len(latencies) >= 5, "normal requests did not flow meanwhile"
    assert max(latencies) < 1.0


async def test_a_slow_head_on_a_reused_connection_is_timed_from_its_first_byte(
    router: LocalEdgeRouter, app_host: str, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(b"GET /ping HTTP/1.1\r\nHost: %s\r\n\r\n" % app_host.encode())
    assert (await conn.response()).startswith(b"HTTP/1.1 200 OK")
    await asyncio.sleep(HEADER_S * 0.6)  # idle, under the keep-alive: not counted
    first_byte = now()
    await conn.send(b"GET /ping HTTP/1.1\r\n")
    dribbling = asyncio.create_task(conn.dribble())

    closed = await conn.until_closed(within=latest(router, HEADER_S) + 2)
    await dribbling

    assert HEADER_S <= closed - first_byte <= latest(router, HEADER_S)
    assert conn.received.startswith(b"HTTP/1.1 408 ")


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    router: LocalEdgeRouter, raw: Callable[[], Awaitable[Raw]]
) -> None:
    opened = now()
    silent = await raw()

    closed = await silent.until_closed(within=latest(router, HEADER_S) + 2)

    assert HEADER_S <= closed - opened <= latest(router, HEADER_S)
    assert silent.received == b""  # no request, so no answer


async def test_a_tls_handshake_is_bounded_by_the_header_timeout(
    storage: AdminStorage, tmp_path: Path
) -> None:
    router = LocalEdgeRouter(
        LocalRouterSettings(
            port=0,
            tls=True,
            tls_dir=tmp_path / "tls",
            health_interval_s=0,
            sync_interval_s=0,
            header_timeout_s=HEADER_S,
        ),
        storage.routes,
    )
    await router.start()
    try:
        opened = now()
        silent = await Raw.open(router)  # TCP only: the handshake never starts
        try:
            closed = await silent.until_closed(within=HEADER_S + 5)
        finally:
            await silent.close()
        assert HEADER_S <= closed - opened <= HEADER_S + SLACK_S
        assert silent.received == b""
    finally:
        await router.close()


# --- the body-idle timeout -------------------------------------------------------------


async def test_a_body_that_dribbles_lives_and_one_that_stalls_gets_408(
    router: LocalEdgeRouter,
    client: ClientSession,
    app_host: str,
    raw: Callable[[], Awaitable[Raw]],
) -> None:
    stop = asyncio.Event()
    normal = asyncio.create_task(keep_pinging(router, client, app_host, stop))
    conn = await raw()
    await conn.send(
        b"POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n" % app_host.encode()
    )
    reading = asyncio.create_task(conn.until_closed(within=OUTLIVE_S + latest(router, BODY_S) + 2))
    started = last_byte = now()
    while last_byte - started < OUTLIVE_S:  # a byte at a time, longer than the timeout
        await conn.send(b"x")
        last_byte = now()
        await asyncio.sleep(DRIBBLE_S)
    assert not reading.done(), "a body still arriving was cut"

    closed = await reading
    stop.set()
    latencies = await normal

    assert BODY_S <= closed - last_byte <= latest(router, BODY_S)
    assert conn.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close\r\n" in conn.received
    assert len(latencies) >= 5
    assert max(latencies) < 1.0


async def test_an_upload_that_keeps_sending_outlives_the_body_timeout(
    router: LocalEdgeRouter, client: ClientSession, app_host: str
) -> None:
    piece = b"u" * 65536
    pieces = int(OUTLIVE_S / 0.2)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(pieces):
            yield piece
            await asyncio.sleep(0.2)

    async with client.post(
        url(router, "/upload"), headers={"Host": app_host}, data=body()
    ) as response:
        assert response.status == 200
        assert await response.text() == str(len(piece) * pieces)


async def test_a_body_held_back_by_a_slow_upstream_is_not_a_stalled_body(
    router: LocalEdgeRouter, client: ClientSession, app_host: str
) -> None:
    # Far more than the socket buffers hold: the router pauses reading the client
    # while the upstream does not read, and that silence is not the client's.
    body = b"b" * (32 * 2**20)
    async with client.post(
        url(router, "/late-reader"), headers={"Host": app_host}, data=body
    ) as response:
        assert response.status == 200
        assert await response.text() == str(len(body))


async def test_a_client_waiting_for_100_continue_is_not_a_stalled_body(
    router: LocalEdgeRouter, app_host: str, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(
        b"POST /late-continue HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n" % app_host.encode()
    )
    async with asyncio.timeout(OUTLIVE_S + 5):
        interim = await conn.reader.readuntil(b"\r\n\r\n")
    assert interim.startswith(b"HTTP/1.1 100 Continue")  # after OUTLIVE_S > BODY_S
    await conn.send(b"hello")
    answer = await conn.response()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"\r\n\r\n5")


# --- the keep-alive timeout ------------------------------------------------------------


async def test_an_idle_keepalive_connection_is_closed_silently(
    router: LocalEdgeRouter, app_host: str, raw: Callable[[], Awaitable[Raw]]
) -> None:
    conn = await raw()
    await conn.send(b"GET /ping HTTP/1.1\r\nHost: %s\r\n\r\n" % app_host.encode())
    assert (await conn.response()).startswith(b"HTTP/1.1 200 OK")
    answered = now()

    closed = await conn.until_closed(within=latest(router, KEEPALIVE_S) + 2)

    # Timed by the keep-alive (longer than the header timeout), and nothing is said.
    # (The router's clock started as it sent the answer, a moment before ``answered``.)
    assert KEEPALIVE_S - 0.05 <= closed - answered <= latest(router, KEEPALIVE_S)
    assert conn.received == b""


# --- what must outlive the client timeouts ---------------------------------------------


async def test_streams_and_slow_answers_outlive_the_client_timeouts(
    router: LocalEdgeRouter, client: ClientSession, app_host: str
) -> None:
    async def sse() -> int:
        async with client.get(url(router, "/events"), headers={"Host": app_host}) as response:
            return (await response.read()).count(b"\n\n")

    async def slow() -> str:
        async with client.get(url(router, "/slow"), headers={"Host": app_host}) as response:
            assert response.status == 200
            return await response.text()

    events, answer = await asyncio.gather(sse(), slow())

    assert events == int(OUTLIVE_S / 0.2)
    assert answer == "thought about it"


async def test_a_websocket_outlives_the_client_timeouts(
    router: LocalEdgeRouter, client: ClientSession, app_host: str
) -> None:
    async with client.ws_connect(
        f"http://127.0.0.1:{router.port}/ws", headers={"Host": app_host}
    ) as ws:
        await ws.send_str("before")
        assert await ws.receive_str(timeout=2) == "echo:before"
        await asyncio.sleep(OUTLIVE_S)  # silent both ways, past every client timeout
        await ws.send_str("after")
        assert await ws.receive_str(timeout=2) == "echo:after"


# --- the per-client cap ----------------------------------------------------------------

CAP = 3


@pytest.mark.router_settings(
    header_timeout_s=10, keepalive_timeout_s=10, max_connections_per_client=CAP
)
async def test_connections_past_the_per_client_cap_are_refused_with_429(
    router: LocalEdgeRouter, app_host: str, raw: Callable[[], Awaitable[Raw]]
) -> None:
    engine = router._engine
    assert engine is not None
    request = b"GET /ping HTTP/1.1\r\nHost: %s\r\n\r\n" % app_host.encode()
    held = [await raw() for _ in range(CAP)]
    for conn in held:
        await conn.send(request)
        assert (await conn.response()).startswith(b"HTTP/1.1 200 OK")

    extra = await raw()
    await extra.until_closed(within=5)
    assert extra.received.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"Connection: close\r\n" in extra.received
    assert b'"too_many_connections"' in extra.received

    for conn in held:  # the first ones are untouched
        await conn.send(request)
        assert (await conn.response()).startswith(b"HTTP/1.1 200 OK")

    await held.pop().close()
    await wait_for(lambda: engine.per_client.get(b"127.0.0.1") == CAP - 1)
    again = await raw()
    await again.send(request)
    assert (await again.response()).startswith(b"HTTP/1.1 200 OK")

    for conn in [*held, again]:
        await conn.close()
    await wait_for(lambda: not engine.per_client)  # every close counted down


@pytest.mark.router_settings(max_connections_per_client=0)
async def test_a_cap_of_zero_means_no_limit(
    router: LocalEdgeRouter, app_host: str, raw: Callable[[], Awaitable[Raw]]
) -> None:
    request = b"GET /ping HTTP/1.1\r\nHost: %s\r\n\r\n" % app_host.encode()
    conns = [await raw() for _ in range(300)]  # past the default cap of 256
    for conn in conns[-3:]:
        await conn.send(request)
        assert (await conn.response()).startswith(b"HTTP/1.1 200 OK")


# --- settings --------------------------------------------------------------------------


def test_the_defaults_are_those_documented() -> None:
    settings = LocalRouterSettings()
    assert settings.header_timeout_s == 15.0
    assert settings.body_idle_timeout_s == 60.0
    assert settings.keepalive_timeout_s == 75.0
    assert settings.max_connections_per_client == 256
    with pytest.raises(ValidationError):
        LocalRouterSettings(header_timeout_s=0)
    with pytest.raises(ValidationError):
        LocalRouterSettings(max_connections_per_client=-1)
