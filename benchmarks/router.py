"""The local router against nginx, in one run.

A small upstream (nginx, one worker, a 60-byte JSON answer) is loaded by wrk at 32
connections: directly, through nginx configured as the same streaming proxy (one
worker, pooled keep-alive upstream connections, the same forwarded headers), through
a naive aiohttp proxy (Application + ClientSession defaults, bodies read whole) and
through the router (``python -m mastra_admin.routers.local``). Latency added by each
proxy is also measured at one connection, and the router's memory with 1,000 open
connections. Needs ``wrk`` and ``nginx`` on PATH (``apt-get install wrk nginx``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks._report import Figure

BENCH = "router"
HOST = "bench-main.team.localhost"
BODY = '{"ok":true,"agent":"weather","text":"sunny, 21 degrees"}'
DURATION_S = int(os.environ.get("ROUTER_BENCH_SECONDS", "10"))

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
    p99_ms: float
    errors: int


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
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for match in re.finditer(r"(?:Non-2xx or 3xx responses|Socket errors):(.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", match.group(1)))
    return WrkResult(rps=rps, p99_ms=p99, errors=errors)


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


def run() -> list[Figure]:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install wrk nginx)")
    work = Path(tempfile.mkdtemp(prefix="router-bench-"))
    up, ngx, naive, ours = (_free_port() for _ in range(4))
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
    python = sys.executable
    seconds = DURATION_S
    figures: list[Figure] = []
    try:
        with (
            _process(["nginx", "-c", str(upstream_conf)], up, work),
            _process(["nginx", "-c", str(proxy_conf)], ngx, work),
            _process(
                [python, str(naive_script), str(naive), f"http://127.0.0.1:{up}"], naive, work
            ),
            _process(
                [
                    python,
                    "-m",
                    "mastra_admin.routers.local",
                    "--port",
                    str(ours),
                    "--health-interval",
                    "0",
                    "--route",
                    f"bench-main.team=127.0.0.1:{up}",
                ],
                ours,
                work,
            ) as router,
        ):
            for port in (up, ngx, naive, ours):  # warm up pools and caches
                wrk(port, 32, 2)
            direct = wrk(up, 32, seconds)
            nginx = wrk(ngx, 32, seconds)
            naive_r = wrk(naive, 32, seconds)
            mine = wrk(ours, 32, seconds)
            for name, result in (
                ("direct", direct),
                ("nginx", nginx),
                ("naive", naive_r),
                ("router", mine),
            ):
                print(
                    f"  32 conns {name:7s} {result.rps:10.0f} rps  p99 {result.p99_ms:6.2f} ms"
                    f"  errors {result.errors}",
                    flush=True,
                )
            one_direct = wrk(up, 1, 5, threads=1)
            one_nginx = wrk(ngx, 1, 5, threads=1)
            one_mine = wrk(ours, 1, 5, threads=1)
            print(
                f"  1 conn p99: direct {one_direct.p99_ms:.3f} ms, nginx {one_nginx.p99_ms:.3f} ms,"
                f" router {one_mine.p99_ms:.3f} ms",
                flush=True,
            )

            rss_before = _rss_mb(router.pid)
            socks = _hold_connections(ours, 1000)
            held = wrk(ours, 32, 5)  # requests keep flowing while the 1,000 are open
            rss_open = _rss_mb(router.pid)
            for sock in socks:
                sock.close()
            time.sleep(1.0)
            wrk(ours, 32, 2)
            rss_after = _rss_mb(router.pid)
            print(
                f"  memory: {rss_before:.1f} MB before, {rss_open:.1f} MB with 1,000 open"
                f" connections ({held.rps:.0f} rps meanwhile), {rss_after:.1f} MB after",
                flush=True,
            )
            added_p99_32 = mine.p99_ms - direct.p99_ms
            added_p99_1 = one_mine.p99_ms - one_direct.p99_ms
            per_conn_kb = (rss_open - rss_before) * 1024 / 1000
            figures = [
                Figure(BENCH, "direct rps (32 conns)", direct.rps, "rps"),
                Figure(
                    BENCH,
                    "naive aiohttp proxy rps",
                    naive_r.rps,
                    "rps",
                    reference=nginx.rps,
                    reference_label="nginx",
                ),
                Figure(
                    BENCH,
                    "router rps",
                    mine.rps,
                    "rps",
                    reference=nginx.rps,
                    reference_label="nginx",
                    goal=">= 0.5x nginx",
                    met=mine.rps >= 0.5 * nginx.rps and mine.errors == 0,
                ),
                Figure(
                    BENCH,
                    "router rps vs naive proxy",
                    mine.rps,
                    "rps",
                    reference=naive_r.rps,
                    reference_label="naive aiohttp",
                ),
                Figure(
                    BENCH,
                    "router p99 (32 conns)",
                    mine.p99_ms,
                    "ms",
                    reference=nginx.p99_ms,
                    reference_label="nginx",
                ),
                Figure(
                    BENCH,
                    "added p99, 1 conn",
                    added_p99_1,
                    "ms",
                    reference=one_nginx.p99_ms - one_direct.p99_ms,
                    reference_label="nginx added",
                    goal="<= 2 ms",
                    met=added_p99_1 <= 2.0,
                ),
                Figure(
                    BENCH,
                    "added p99, 32 conns (saturated)",
                    added_p99_32,
                    "ms",
                    reference=nginx.p99_ms - direct.p99_ms,
                    reference_label="nginx added",
                    goal="<= 2 ms",
                    met=added_p99_32 <= 2.0,
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure)
