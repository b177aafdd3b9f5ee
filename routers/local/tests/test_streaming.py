"""Streaming through the router: SSE and chunked answers chunk by chunk, 100 MB each
way with flat memory (the router in its own process), disconnects passed on."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import psutil
import pytest
from aiohttp import ClientSession, ClientTimeout, web

from mastra_admin.routers.local import LocalEdgeRouter

from .conftest import AppFactory, free_port
from .test_proxy_http import url

RouteTo = Callable[..., Awaitable[str]]

EVENTS = 5
GAP_S = 0.15


async def test_sse_events_arrive_as_they_are_sent(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    loop = asyncio.get_running_loop()
    sent: list[float] = []

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for n in range(EVENTS):
            sent.append(loop.time())
            await response.write(f'event: token\ndata: {{"n": {n}}}\n\n'.encode())
            await asyncio.sleep(GAP_S)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/stream", events)
    host = await route_to(*await serve_app(app))

    arrived: list[float] = []
    async with client.get(url(router, "/stream"), headers={"Host": host}) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        buffer = b""
        async for chunk in response.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                arrived.append(loop.time())

    assert len(arrived) == EVENTS
    assert arrived[0] < sent[-1], "the first event waited for the whole stream"
    for n in range(EVENTS):
        assert arrived[n] - sent[n] < GAP_S / 2, f"event {n} was held back"


async def test_chunked_answers_are_not_rebuffered(
    router: LocalEdgeRouter, client: ClientSession, serve_app: AppFactory, route_to: RouteTo
) -> None:
    release = asyncio.Event()

    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first chunk")
        await release.wait()
        await response.write(b"second chunk")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", chunks)
    host = await route_to(*await serve_app(app))

    async with client.get(url(router), headers={"Host": host}) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        first = await asyncio.wait_for(response.content.readany(), 2)
        assert first == b"first chunk"
        release.set()
        assert await response.read() == b"second chunk"


async def test_a_client_leaving_mid_stream_closes_the_upstream_side(
    router: LocalEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    gone = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b"data: tick\n\n")
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            gone.set()
            raise

    app = web.Application()
    app.router.add_get("/", endless)
    host = await route_to(*await serve_app(app))

    async with ClientSession() as session, session.get(url(router), headers={"Host": host}) as r:
        assert (await r.content.readuntil(b"\n\n")) == b"data: tick\n\n"
    await asyncio.wait_for(gone.wait(), 3)


# --- 100 MB each way, the router in its own process ------------------------------------

BIG = 100 * 1024 * 1024
PIECE = 256 * 1024


@pytest.fixture
async def big_upstream(serve_app: AppFactory) -> tuple[str, int]:
    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(BIG)})
        await response.prepare(request)
        piece = b"m" * PIECE
        for _ in range(BIG // PIECE):
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=BIG * 2)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    return await serve_app(app)


@pytest.fixture
async def router_process(
    big_upstream: tuple[str, int],
) -> AsyncIterator[tuple[int, psutil.Process]]:
    host, port = big_upstream
    listen = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mastra_admin.routers.local",
            "--port",
            str(listen),
            "--health-interval",
            "0",
            "--route",
            f"big-main.team={host}:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 20
        )
        assert b"big-main.team.localhost" in ready
        yield listen, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def _peak_rss(process: psutil.Process, stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.02)
    return peak


@pytest.mark.slow
async def test_100_mb_each_way_with_flat_memory(
    router_process: tuple[int, psutil.Process],
) -> None:
    port, process = router_process
    headers = {"Host": "big-main.team.localhost"}
    timeout = ClientTimeout(total=120)
    async with ClientSession(timeout=timeout) as session:
        async with session.post(
            f"http://127.0.0.1:{port}/upload", headers=headers, data=b"warm-up"
        ) as r:
            assert r.status == 200
        baseline = process.memory_info().rss

        stop = asyncio.Event()
        sampler = asyncio.create_task(_peak_rss(process, stop))

        expected = hashlib.sha256()

        async def body() -> AsyncIterator[bytes]:
            for n in range(BIG // PIECE):
                piece = bytes([n % 251]) * PIECE
                expected.update(piece)
                yield piece

        async with session.post(
            f"http://127.0.0.1:{port}/upload",
            headers={**headers, "Content-Length": str(BIG)},
            data=body(),
        ) as r:
            uploaded = await r.json()
        received = 0
        async with session.get(f"http://127.0.0.1:{port}/download", headers=headers) as r:
            async for chunk in r.content.iter_any():
                received += len(chunk)
        stop.set()
        peak = await sampler

    assert uploaded == {"size": BIG, "sha256": expected.hexdigest()}
    assert received == BIG
    growth_mb = (peak - baseline) / 2**20
    print(f"router RSS {baseline / 2**20:.1f} MB, peak {peak / 2**20:.1f} MB moving 200 MB")
    assert growth_mb < 32, f"router memory grew by {growth_mb:.1f} MB moving 200 MB"
