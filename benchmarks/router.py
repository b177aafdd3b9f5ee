"""The local router against nginx, in one run.

A small upstream (nginx, one worker, a 56-byte JSON answer) is loaded by wrk at 32
connections: directly, through nginx configured as the same streaming proxy (one
worker, pooled keep-alive upstream connections, the same forwarded headers), through
a naive aiohttp proxy (Application + ClientSession defaults, bodies read whole) and
through the router (``python -m mastra_admin.routers.local``, on uvloop and on
asyncio's own loop), in interleaved rounds so that load from elsewhere on the machine
hits every subject alike; each proxy's CPU time per request comes from /proc. The
latency each proxy adds is measured at one connection (median of short rounds), the
router's normal-request latency and throughput with and without 500 slow clients
held open (slowloris connections that send a header line every second and never
finish their head) and how long the router lets them live, and the router's memory
with 1,000 open connections. Needs ``wrk`` and ``nginx`` on PATH
(``apt-get install wrk nginx``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._report import Figure
from mastra_admin.routers.local import LocalRouterSettings

BENCH = "router"
HOST = "bench-main.team.localhost"
BODY = '{"ok":true,"agent":"weather","text":"sunny, 21 degrees"}'
DURATION_S = int(os.environ.get("ROUTER_BENCH_SECONDS", "10"))
LATENCY_ROUNDS = 5
# Every bench client is 127.0.0.1: the per-client cap would refuse the 1,000 held
# connections and the slow clients, so the router under test has none.
SLOW_CLIENTS = 500
SLOW_LINE_S = 1.0  # a header line from each slow client this often
SLOW_ROUNDS = 5

# The slow clients, in a process of their own. Each connection sends a request line
# and one header, then a header line every SLOW_LINE_S and never the blank line; when
# the router closes it, it records how long it was held and opens another. SIGTERM
# ends them and prints the counts and held times as JSON.
SLOW_CLIENT = textwrap.dedent(
    """
    import asyncio, json, random, signal, sys, time

    PORT, COUNT, EVERY, HOST = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    stats = {"opened": 0, "closed_by_router": 0, "answered_408": 0, "connect_errors": 0}
    held = []

    async def one() -> None:
        await asyncio.sleep(random.random() * EVERY)  # spread the lines over the period
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(EVERY)
                continue
            opened = time.monotonic()
            stats["opened"] += 1
            writer.write(b"GET /api/agents HTTP/1.1\\r\\nHost: %s\\r\\n" % HOST.encode())
            read = asyncio.ensure_future(reader.read(65536))
            n = 0
            try:
                while True:
                    done, _ = await asyncio.wait({read}, timeout=EVERY)
                    if done:
                        break
                    writer.write(b"X-Slow-%d: still here\\r\\n" % n)
                    n += 1
                try:
                    data = read.result()
                except ConnectionError:
                    data = b""
                held.append(time.monotonic() - opened)
                stats["closed_by_router"] += 1
                stats["answered_408"] += data.startswith(b"HTTP/1.1 408 ")
            finally:
                read.cancel()
                writer.close()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        tasks = [asyncio.create_task(one()) for _ in range(COUNT)]
        while stats["opened"] < COUNT:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats["held"] = held
        print(json.dumps(stats), flush=True)

    asyncio.run(main())
    """
)

NAIVE_PROXY = textwrap.dedent(
    """
    import sys
    from aiohttp import ClientSession, web

    UPSTREAM = sys.argv[2]
    HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer",
           "proxy-authenticate", "proxy-authorization", "content-length"}

    async def proxy(request):
        session = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        async with session.request(request.method, UPSTREAM + request.path_qs,
                                   headers=headers, data=body or None) as upstream:
            data = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
            return web.Response(status=upstream.status, body=data, headers=out)

    async def session_ctx(app):
        app["session"] = ClientSession()
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", proxy)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, connections: int, seconds: int, threads: int = 2) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Host: {HOST}",
            f"http://127.0.0.1:{port}/api/agents",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for match in re.finditer(r"(?:Non-2xx or 3xx responses|Socket errors):(.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", match.group(1)))
    return WrkResult(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors, requests=requests)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (nginx's worker)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _median(results: list[WrkResult]) -> WrkResult:
    """Each figure's median over rounds (a burst of load from elsewhere spoils one
    round, not the figure)."""
    return WrkResult(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        requests=sum(r.requests for r in results),
    )


@dataclass
class Measured:
    """Throughput at 32 connections, over interleaved rounds, and CPU per request."""

    name: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_us: float = 0.0
    rounds: int = 0

    def add(self, result: WrkResult, cpu_s: float) -> None:
        self.rounds += 1
        n = self.rounds
        self.rps += (result.rps - self.rps) / n
        self.p50_ms += (result.p50_ms - self.p50_ms) / n
        self.p99_ms += (result.p99_ms - self.p99_ms) / n
        self.cpu_us += (cpu_s * 1e6 / max(result.requests, 1) - self.cpu_us) / n
        self.errors += result.errors


@contextmanager
def _process(args: list[str], port: int, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _nginx_conf(work: Path, name: str, server: str, extra: str = "") -> Path:
    conf = work / f"{name}.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            worker_processes 1;
            daemon off;
            pid {work}/{name}.pid;
            error_log {work}/{name}.error.log warn;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {work}/{name}-body;
                proxy_temp_path {work}/{name}-proxy;
                fastcgi_temp_path {work}/{name}-fcgi;
                uwsgi_temp_path {work}/{name}-uwsgi;
                scgi_temp_path {work}/{name}-scgi;
                {extra}
                server {{
                    {server}
                }}
            }}
            """
        )
    )
    return conf


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _hold_connections(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` keep-alive connections, each having completed one request."""
    request = f"GET /api/agents HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(request)
        socks.append(sock)
    for sock in socks:
        sock.settimeout(10)
        data = b""
        while BODY.encode() not in data:
            data += sock.recv(65536)
    return socks


ENGINE_REQUEST = (
    b"GET /api/agents HTTP/1.1\r\nHost: bench-main.team.localhost:8080\r\n"
    b"User-Agent: wrk\r\nAccept: */*\r\n\r\n"
)
ENGINE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: node\r\nDate: Sat, 21 Nov 2026 23:34:05 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n"
    b"\r\n%s" % (len(BODY), BODY.encode())
)


def engine_cpu_us(requests: int = 20_000) -> float:
    """The proxy engine's own CPU per request, sockets left out: both connections
    are fed in memory (best of 5 runs of process time, so load elsewhere hardly
    matters)."""
    import asyncio

    from mastra_admin.core.models import Route
    from mastra_admin.routers.local._engine import ProxyEngine, UpstreamConnection
    from mastra_admin.routers.local._hosts import HostTable

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.written = 0

        def write(self, data: bytes | bytearray | memoryview) -> None:
            self.written += 1

        def get_extra_info(self, name: str, default: object = None) -> object:
            return ("127.0.0.1", 40000) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    async def measure() -> float:
        table = HostTable("localhost")
        table.put(
            Route(
                deployment_id="d",
                project_id="p",
                subdomain="bench-main.team",
                target_host="127.0.0.1",
                target_port=9,
                public_url="http://bench-main.team.localhost:8080",
            )
        )
        engine = ProxyEngine(
            table,
            scheme="http",
            connect_timeout_s=5,
            read_timeout_s=60,
            upstream_keepalive_s=3600,
            client_keepalive_s=75,
            header_timeout_s=15,
            body_idle_timeout_s=60,
        )
        client = engine()
        client.connection_made(Transport())
        upstream = UpstreamConnection(engine.pool, ("127.0.0.1", 9))
        upstream_transport = Transport()
        upstream.connection_made(upstream_transport)
        engine.pool.release(upstream, reusable=True)
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(requests // 5):
                client.data_received(ENGINE_REQUEST)
                upstream.data_received(ENGINE_RESPONSE)
            best = min(best, time.process_time() - started)
        assert upstream_transport.written >= requests, "the engine did not forward"
        return best * 1e6 / (requests // 5)

    return asyncio.run(measure())


@contextmanager
def _slow_clients(script: Path, port: int, stats: list[dict[str, Any]]) -> Iterator[None]:
    """``SLOW_CLIENTS`` slowloris connections held open (reopened when the router
    closes them) for the duration of the block; their counts are appended to ``stats``."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), str(SLOW_CLIENTS), str(SLOW_LINE_S), HOST],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the slow clients did not connect")
        yield
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        stats.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run() -> list[Figure]:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install wrk nginx)")
    work = Path(tempfile.mkdtemp(prefix="router-bench-"))
    up, ngx, naive, ours, ours_asyncio = (_free_port() for _ in range(5))
    upstream_conf = _nginx_conf(
        work,
        "upstream",
        f"""listen 127.0.0.1:{up} backlog=4096;
            keepalive_requests 1000000;
            location / {{ default_type application/json; return 200 '{BODY}'; }}""",
    )
    proxy_conf = _nginx_conf(
        work,
        "proxy",
        f"""listen 127.0.0.1:{ngx} backlog=4096;
            keepalive_requests 1000000;
            location / {{
                proxy_pass http://mastra;
                proxy_http_version 1.1;
                proxy_buffering off;
                proxy_request_buffering off;
                proxy_set_header Connection "";
                proxy_set_header Host $host;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                proxy_set_header X-Forwarded-Host $host;
                proxy_set_header X-Request-Id $request_id;
            }}""",
        extra=f"upstream mastra {{ server 127.0.0.1:{up}; keepalive 128; }}",
    )
    naive_script = work / "naive_proxy.py"
    naive_script.write_text(NAIVE_PROXY)
    slow_script = work / "slow_clients.py"
    slow_script.write_text(SLOW_CLIENT)
    python = sys.executable
    route = f"bench-main.team=127.0.0.1:{up}"
    router_cmd = [
        python,
        "-m",
        "mastra_admin.routers.local",
        "--health-interval",
        "0",
        "--max-connections-per-client",
        "0",
    ]
    rounds = 2
    seconds = max(1, DURATION_S // rounds)
    try:
        with (
            _process(["nginx", "-c", str(upstream_conf)], up, work) as upstream,
            _process(["nginx", "-c", str(proxy_conf)], ngx, work) as nginx_proc,
            _process(
                [python, str(naive_script), str(naive), f"http://127.0.0.1:{up}"], naive, work
            ) as naive_proc,
            _process([*router_cmd, "--port", str(ours), "--route", route], ours, work) as router,
            _process(
                [*router_cmd, "--no-uvloop", "--port", str(ours_asyncio), "--route", route],
                ours_asyncio,
                work,
            ) as router_asyncio,
        ):
            subjects = {
                "direct": (up, upstream.pid),
                "nginx": (ngx, nginx_proc.pid),
                "naive": (naive, naive_proc.pid),
                "router": (ours, router.pid),
                "router/asyncio": (ours_asyncio, router_asyncio.pid),
            }
            for port, _ in subjects.values():  # warm up pools and caches
                wrk(port, 32, 1)
            measured = {name: Measured(name) for name in subjects}
            for _ in range(rounds):  # interleaved: load from elsewhere hits all alike
                for name, (port, pid) in subjects.items():
                    before = _cpu_s(pid)
                    result = wrk(port, 32, seconds)
                    measured[name].add(result, _cpu_s(pid) - before)
            for m in measured.values():
                print(
                    f"  32 conns {m.name:15s} {m.rps:8.0f} rps  p50 {m.p50_ms:6.2f} ms"
                    f"  p99 {m.p99_ms:6.2f} ms  {m.cpu_us:6.1f} us CPU/request"
                    f"  errors {m.errors}",
                    flush=True,
                )
            # Latency added at one connection: short interleaved rounds, the median
            # of each one's percentiles (a burst of load from elsewhere spoils one
            # round, not the figure).
            samples: dict[str, list[WrkResult]] = {"direct": [], "nginx": [], "router": []}
            for _ in range(LATENCY_ROUNDS):
                for name in samples:
                    samples[name].append(wrk(subjects[name][0], 1, 2, threads=1))
            one = {
                name: WrkResult(
                    rps=statistics.median(r.rps for r in results),
                    p50_ms=statistics.median(r.p50_ms for r in results),
                    p99_ms=statistics.median(r.p99_ms for r in results),
                    errors=sum(r.errors for r in results),
                    requests=sum(r.requests for r in results),
                )
                for name, results in samples.items()
            }
            print(
                "  1 conn p50/p99 (median of rounds): "
                + ", ".join(f"{k} {v.p50_ms:.3f}/{v.p99_ms:.3f} ms" for k, v in one.items()),
                flush=True,
            )

            # Normal requests with and without slow clients, in interleaved rounds on
            # the same router (at 32 connections: throughput and p99; at one: p99),
            # the median round of each. Each round's slow clients are new and live
            # shorter than the header timeout: they are all held open meanwhile.
            calm: list[WrkResult] = []
            attacked: list[WrkResult] = []
            calm_one: list[WrkResult] = []
            attacked_one: list[WrkResult] = []
            for _ in range(SLOW_ROUNDS):
                calm.append(wrk(ours, 32, seconds))
                calm_one.append(wrk(ours, 1, 2, threads=1))
                with _slow_clients(slow_script, ours, []):
                    attacked.append(wrk(ours, 32, seconds))
                    attacked_one.append(wrk(ours, 1, 2, threads=1))
                time.sleep(0.5)
            # Then the slow clients alone, past the header timeout: how long the router
            # lets them live, and its own CPU meanwhile.
            header_timeout = LocalRouterSettings().header_timeout_s
            slow: list[dict[str, Any]] = []
            with _slow_clients(slow_script, ours, slow):
                before = _cpu_s(router.pid)
                time.sleep(header_timeout + 3)
                slow_cpu_ms = (_cpu_s(router.pid) - before) * 1000 / (header_timeout + 3)
            time.sleep(0.5)
            calm_m, attacked_m = _median(calm), _median(attacked)
            calm_p99_1 = statistics.median(r.p99_ms for r in calm_one)
            attacked_p99_1 = statistics.median(r.p99_ms for r in attacked_one)
            lifetimes = sorted(slow[0]["held"])
            slow_closed = slow[0]["closed_by_router"]
            slow_408 = slow[0]["answered_408"]
            held_p50 = statistics.median(lifetimes) if lifetimes else float("inf")
            held_max = lifetimes[-1] if lifetimes else float("inf")
            print(
                f"  {SLOW_CLIENTS} slow clients: 32 conns {attacked_m.rps:.0f} rps p99"
                f" {attacked_m.p99_ms:.2f} ms (without: {calm_m.rps:.0f} rps p99"
                f" {calm_m.p99_ms:.2f} ms; errors {attacked_m.errors}/{calm_m.errors});"
                f" 1 conn p99 {attacked_p99_1:.3f} ms (without: {calm_p99_1:.3f} ms);"
                f" alone: router CPU {slow_cpu_ms:.1f} ms/s, {slow_closed} closed"
                f" ({slow_408} with 408), held {held_p50:.2f} s median, {held_max:.2f} s"
                f" at most (header timeout {header_timeout} s)",
                flush=True,
            )

            rss_before = _rss_mb(router.pid)
            socks = _hold_connections(ours, 1000)
            held = wrk(ours, 32, seconds)  # requests keep flowing while the 1,000 are open
            rss_open = _rss_mb(router.pid)
            for sock in socks:
                sock.close()
            time.sleep(1.0)
            wrk(ours, 32, 1)
            rss_after = _rss_mb(router.pid)
            print(
                f"  memory: {rss_before:.1f} MB before, {rss_open:.1f} MB with 1,000 open"
                f" connections ({held.rps:.0f} rps meanwhile), {rss_after:.1f} MB after",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    direct, nginx, naive_m, mine, mine_asyncio = (
        measured[n] for n in ("direct", "nginx", "naive", "router", "router/asyncio")
    )
    added_p99_1 = one["router"].p99_ms - one["direct"].p99_ms
    nginx_added_p99_1 = one["nginx"].p99_ms - one["direct"].p99_ms
    added_p50_1 = one["router"].p50_ms - one["direct"].p50_ms
    per_conn_kb = (rss_open - rss_before) * 1024 / 1000
    engine_us = engine_cpu_us()
    print(f"  engine alone: {engine_us:.1f} us CPU per request", flush=True)
    return [
        Figure(BENCH, "direct to the upstream (32 conns)", direct.rps, "rps"),
        Figure(
            BENCH,
            "router (32 conns)",
            mine.rps,
            "rps",
            reference=nginx.rps,
            reference_label="nginx, same proxy",
            goal=">= 0.5x nginx",
            met=mine.rps >= 0.5 * nginx.rps and mine.errors == 0,
        ),
        Figure(
            BENCH,
            "router vs a naive aiohttp proxy",
            mine.rps,
            "rps",
            reference=naive_m.rps,
            reference_label="naive aiohttp proxy",
        ),
        Figure(
            BENCH,
            "router on asyncio's own loop",
            mine_asyncio.rps,
            "rps",
            reference=mine.rps,
            reference_label="router on uvloop",
        ),
        Figure(
            BENCH,
            "router CPU per request",
            mine.cpu_us,
            "us",
            reference=nginx.cpu_us,
            reference_label="nginx",
        ),
        Figure(
            BENCH,
            "engine alone, CPU per request (no sockets)",
            engine_us,
            "us",
            reference=mine.cpu_us,
            reference_label="router with sockets",
        ),
        Figure(
            BENCH,
            "naive proxy CPU per request",
            naive_m.cpu_us,
            "us",
            reference=mine.cpu_us,
            reference_label="router",
        ),
        Figure(
            BENCH,
            "added p50, 1 conn (median of 5 rounds)",
            added_p50_1,
            "ms",
            reference=one["nginx"].p50_ms - one["direct"].p50_ms,
            reference_label="nginx added",
        ),
        Figure(
            BENCH,
            "added p99, 1 conn (median of 5 rounds)",
            added_p99_1,
            "ms",
            reference=nginx_added_p99_1,
            reference_label="nginx added",
            goal="<= 2 ms",
            met=added_p99_1 <= 2.0,
        ),
        Figure(
            BENCH,
            "p99 at 32 conns (saturated)",
            mine.p99_ms,
            "ms",
            reference=nginx.p99_ms,
            reference_label="nginx",
        ),
        Figure(
            BENCH,
            "added p99 at 32 conns (router p99 - direct p99)",
            mine.p99_ms - direct.p99_ms,
            "ms",
            reference=nginx.p99_ms - direct.p99_ms,
            reference_label="nginx added",
            goal="<= 2 ms",
            met=mine.p99_ms - direct.p99_ms <= 2.0,
        ),
        Figure(
            BENCH,
            f"normal p99 at 32 conns, {SLOW_CLIENTS} slow clients (median of {SLOW_ROUNDS})",
            attacked_m.p99_ms,
            "ms",
            reference=calm_m.p99_ms,
            reference_label="without slow clients",
            goal="<= 1.5x without",
            met=attacked_m.p99_ms <= 1.5 * calm_m.p99_ms and attacked_m.errors == 0,
        ),
        Figure(
            BENCH,
            f"normal rps at 32 conns, {SLOW_CLIENTS} slow clients (median of {SLOW_ROUNDS})",
            attacked_m.rps,
            "rps",
            reference=calm_m.rps,
            reference_label="without slow clients",
        ),
        Figure(
            BENCH,
            f"normal p99 at 1 conn, {SLOW_CLIENTS} slow clients (median of {SLOW_ROUNDS})",
            attacked_p99_1,
            "ms",
            reference=calm_p99_1,
            reference_label="without slow clients",
        ),
        Figure(
            BENCH,
            f"router CPU with {SLOW_CLIENTS} slow clients (no other load, incl. closing)",
            slow_cpu_ms,
            "ms/s",
            reference=1000.0,
            reference_label="one core",
        ),
        Figure(
            BENCH,
            "a slow client's connection held, median (its own clock)",
            held_p50,
            "s",
            reference=header_timeout,
            reference_label="header timeout",
            goal="<= timeout + 1 s (a sweep)",
            met=held_p50 <= header_timeout + 1.0 and slow_closed >= SLOW_CLIENTS,
        ),
        Figure(
            BENCH,
            "a slow client's connection held, longest (its own clock)",
            held_max,
            "s",
            reference=header_timeout,
            reference_label="header timeout",
        ),
        Figure(
            BENCH,
            "router RSS with 1,000 open connections",
            rss_open,
            "MB",
            reference=rss_before,
            reference_label="before",
            goal="flat (< 64 KB per connection, back after)",
            met=per_conn_kb < 64 and rss_after <= rss_open + 1,
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
