"""The Caddy router against the same Caddy configured by hand, and the local router, in
one run.

A small upstream (nginx, one worker, a 56-byte JSON answer, as in the ``router``
benchmark) is loaded by wrk at 32 connections through: Caddy configured by hand
(the minimal JSON: one server, one host matcher, one reverse_proxy), the same writing
an access log as the router's Caddy does (the goal's reference: both then do the same
work per request), Caddy configured
by the router (its defaults: access logs into file storage, compression, error pages,
stream settings), the same with access logs off, and the local router
(``python -m mastra_admin.routers.local``), in interleaved rounds. The router runs in
this process, on an event loop in a thread of its own, as it would in the platform's
server; its CPU (access-log shipping) is counted with Caddy's.

Then the route change → serving time: ``update_route`` is called and a client on a
kept-alive connection asks until the new target answers, with 1 and with 500 routes
configured (every change reloads Caddy's whole configuration). Needs ``wrk`` and
``nginx`` on PATH (``apt-get install wrk nginx``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from benchmarks._report import Figure
from benchmarks.router import HOST, Measured, _cpu_s, _free_port, _nginx_conf, _process, wrk
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Deployment, DeploymentType, Project, Route, Team
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter, CaddyRouterSettings
from mastra_admin.routers.caddy._access_log import ROLL_KEEP, ROLL_SIZE_MB
from mastra_admin.routers.caddy._binary import find_caddy

BENCH = "router-caddy"
DURATION_S = int(os.environ.get("ROUTER_BENCH_SECONDS", "15"))
ROUNDS = 5
LATENCY_ROUNDS = 3
CHANGES = 60
MANY_ROUTES = 500
T = TypeVar("T")


class LoopThread:
    """An event loop in a thread: the router lives there while wrk blocks this one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _hand_config(port: int, upstream: int, access_log: Path | None = None) -> dict[str, Any]:
    """What an operator writes for one upstream: the minimal JSON; with ``access_log``,
    plus the access log the router's Caddy writes (the same file writer, JSON lines)."""
    config: dict[str, Any] = {
        "admin": {"disabled": True},
        "apps": {
            "http": {
                "servers": {
                    "hand": {
                        "listen": [f"127.0.0.1:{port}"],
                        "automatic_https": {"disable": True},
                        "routes": [
                            {
                                "match": [{"host": [HOST]}],
                                "handle": [
                                    {
                                        "handler": "reverse_proxy",
                                        "upstreams": [{"dial": f"127.0.0.1:{upstream}"}],
                                    }
                                ],
                                "terminal": True,
                            }
                        ],
                    }
                }
            }
        },
    }
    if access_log is not None:
        config["apps"]["http"]["servers"]["hand"]["logs"] = {"default_logger_name": "hand"}
        config["logging"] = {
            "logs": {
                "default": {"exclude": ["http.log.access.hand"]},
                "hand": {
                    "writer": {
                        "output": "file",
                        "filename": str(access_log),
                        "mode": "0600",
                        "roll_size_mb": ROLL_SIZE_MB,
                        "roll_keep": ROLL_KEEP,
                        "roll_compression": "none",
                    },
                    "encoder": {"format": "json"},
                    "include": ["http.log.access.hand"],
                },
            }
        }
    return config


async def _deployment(storage: InMemoryAdminStorage, n: int) -> tuple[str, str]:
    team = await storage.teams.create(Team(name=f"T{n}", slug=f"team{n}"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="Bench", slug="bench", source_type="local")
    )
    deployment = await storage.deployments.create(
        Deployment(
            project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
        )
    )
    return project.id, deployment.id


class RouterUnderTest:
    """A started ``CaddyEdgeRouter`` (its own Caddy) with the bench route."""

    def __init__(self, loop: LoopThread, work: Path, name: str, **fields: Any) -> None:
        self.loop = loop
        self.port = _free_port()
        self.storage = InMemoryAdminStorage()
        self.files = LocalFileStorage(work / f"{name}-files")
        self.router = CaddyEdgeRouter(
            CaddyRouterSettings(
                state_dir=work / name,
                http_port=self.port,
                health_interval_s=0,
                sync_interval_s=0,
                **fields,
            ),
            self.storage.routes,
            file_storage=self.files,
        )
        self.route_id = ""

    async def _start(self, upstream: int) -> None:
        await self.storage.init()
        await self.router.start()
        project_id, deployment_id = await _deployment(self.storage, 0)
        route = await self.router.register_route(
            RouteConfig(
                deployment_id=deployment_id,
                project_id=project_id,
                subdomain="bench-main.team",
                target_host="127.0.0.1",
                target_port=upstream,
            )
        )
        self.route_id = route.id

    def start(self, upstream: int) -> None:
        self.loop.run(self._start(upstream))

    async def _add_routes(self, count: int, upstream: int) -> None:
        for n in range(count):
            project_id, deployment_id = await _deployment(self.storage, n + 1)
            await self.storage.routes.create(
                Route(
                    deployment_id=deployment_id,
                    project_id=project_id,
                    subdomain=f"extra-{n}.team{n}",
                    target_host="127.0.0.1",
                    target_port=upstream,
                    public_url=self.router.public_url(f"extra-{n}.team{n}"),
                )
            )

    def add_routes(self, count: int, upstream: int) -> None:
        self.loop.run(self._add_routes(count, upstream))

    async def _change_times(self, a: int, b: int, changes: int) -> list[float]:
        """Seconds from ``update_route`` to the first answer from the new target, on a
        kept-alive connection."""
        import aiohttp

        url = f"http://127.0.0.1:{self.port}/api/agents"
        out: list[float] = []
        async with aiohttp.ClientSession() as session:
            for n in range(changes):
                target, body = (b, "b") if n % 2 == 0 else (a, "a")
                started = time.perf_counter()
                await self.router.update_route(
                    self.route_id, target_host="127.0.0.1", target_port=target
                )
                while True:
                    async with session.get(url, headers={"Host": HOST}) as response:
                        if (await response.text()).startswith(f'{{"upstream":"{body}"'):
                            break
                out.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
        return out

    def change_times(self, a: int, b: int, changes: int) -> list[float]:
        return self.loop.run(self._change_times(a, b, changes))

    def stop(self) -> None:
        self.loop.run(self.router.close())


def _named_upstream(work: Path, name: str, port: int) -> Path:
    body = json.dumps({"upstream": name}, separators=(",", ":"))
    return _nginx_conf(
        work,
        f"upstream-{name}",
        f"""listen 127.0.0.1:{port} backlog=4096;
            keepalive_requests 1000000;
            location / {{ default_type application/json; return 200 '{body}'; }}""",
    )


@contextmanager
def _caddy_by_hand(
    work: Path, port: int, upstream: int, access_log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    config = work / f"hand-{port}.json"
    config.write_text(json.dumps(_hand_config(port, upstream, access_log)))
    with _process([str(find_caddy()), "run", "--config", str(config)], port, work) as proc:
        yield proc


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run() -> list[Figure]:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install wrk nginx)")
    work = Path(tempfile.mkdtemp(prefix="router-caddy-bench-"))
    up, up_b, hand, hand_logged, local = (_free_port() for _ in range(5))
    loop = LoopThread()
    ours = RouterUnderTest(loop, work, "router")
    quiet = RouterUnderTest(loop, work, "router-nolog", access_logs=False)
    local_cmd = [
        sys.executable,
        "-m",
        "mastra_admin.routers.local",
        "--health-interval",
        "0",
        "--max-connections-per-client",
        "0",
        "--port",
        str(local),
        "--route",
        f"bench-main.team=127.0.0.1:{up}",
    ]
    seconds = max(1, DURATION_S // ROUNDS)
    try:
        with (
            _process(["nginx", "-c", str(_named_upstream(work, "a", up))], up, work),
            _process(["nginx", "-c", str(_named_upstream(work, "b", up_b))], up_b, work),
            _caddy_by_hand(work, hand, up) as hand_proc,
            _caddy_by_hand(work, hand_logged, up, work / "hand-access.log") as logged_proc,
            _process(local_cmd, local, work) as local_proc,
        ):
            ours.start(up)
            quiet.start(up)
            assert ours.router.caddy_pid is not None
            assert quiet.router.caddy_pid is not None
            subjects = {
                "caddy by hand": (hand, [hand_proc.pid]),
                "caddy by hand, access log": (hand_logged, [logged_proc.pid]),
                "caddy router": (ours.port, [ours.router.caddy_pid, os.getpid()]),
                "caddy router, no access logs": (quiet.port, [quiet.router.caddy_pid]),
                "local router": (local, [local_proc.pid]),
            }
            for port, _ in subjects.values():  # warm up pools and caches
                wrk(port, 32, 1)
            measured = {name: Measured(name) for name in subjects}
            # The router's process alone (reading and recording access logs), per request.
            shipping_us: list[float] = []
            for _ in range(ROUNDS):  # interleaved: load from elsewhere hits all alike
                for name, (port, pids) in subjects.items():
                    before = [_cpu_s(p) for p in pids]
                    result = wrk(port, 32, seconds)
                    if name == "caddy router":  # the lines of this round, all recorded
                        loop.run(ours.router.flush_access_logs())
                    spent = [_cpu_s(p) - b for p, b in zip(pids, before, strict=True)]
                    measured[name].add(result, sum(spent))
                    if name == "caddy router":
                        shipping_us.append(spent[1] * 1e6 / max(result.requests, 1))
            for m in measured.values():
                print(
                    f"  32 conns {m.name:30s} {m.rps:8.0f} rps  p50 {m.p50_ms:6.2f} ms"
                    f"  p99 {m.p99_ms:6.2f} ms  {m.cpu_us:6.1f} us CPU/request"
                    f"  errors {m.errors}",
                    flush=True,
                )
            # Latency at one connection (what one user sees; the access log is written
            # after the answer): the median of short interleaved rounds.
            latency: dict[str, list[float]] = {
                "caddy by hand, access log": [],
                "caddy router": [],
            }
            for _ in range(LATENCY_ROUNDS):
                for name in latency:
                    latency[name].append(wrk(subjects[name][0], 1, 2, threads=1).p50_ms)
            one_conn = {name: statistics.median(values) for name, values in latency.items()}
            print(
                "  1 conn p50 (median of rounds): "
                + ", ".join(f"{k} {v:.3f} ms" for k, v in one_conn.items()),
                flush=True,
            )
            loop.run(ours.router.flush_access_logs())
            counts = ours.router.access_log_counts
            shipping = statistics.median(shipping_us)
            print(
                f"  access-log lines: {counts}; the router's own CPU {shipping:.1f} us per request",
                flush=True,
            )

            one_route = ours.change_times(up, up_b, CHANGES)
            ours.add_routes(MANY_ROUTES, up)
            many_routes = ours.change_times(up, up_b, CHANGES)
            print(
                f"  route change -> served: 1 route p50 {statistics.median(one_route) * 1000:.1f}"
                f" ms p95 {_p(one_route, 0.95) * 1000:.1f} ms; {MANY_ROUTES + 1} routes p50"
                f" {statistics.median(many_routes) * 1000:.1f} ms p95"
                f" {_p(many_routes, 0.95) * 1000:.1f} ms",
                flush=True,
            )
            ours.stop()
            quiet.stop()
    finally:
        loop.stop()
        shutil.rmtree(work, ignore_errors=True)

    by_hand = measured["caddy by hand"]
    logged = measured["caddy by hand, access log"]
    router = measured["caddy router"]
    quiet_m = measured["caddy router, no access logs"]
    local_m = measured["local router"]
    errors = sum(m.errors for m in measured.values())
    return [
        Figure(
            BENCH,
            "requests/s through Caddy configured by the router, access logs recorded (32 conns)",
            router.rps,
            "req/s",
            reference=logged.rps,
            reference_label="the same Caddy configured by hand, writing the same access log",
            goal=">= 0.9x hand-configured Caddy",
            met=router.rps >= 0.9 * logged.rps and errors == 0,
        ),
        Figure(
            BENCH,
            "requests/s, router-configured Caddy without access logs",
            quiet_m.rps,
            "req/s",
            reference=by_hand.rps,
            reference_label="the same Caddy configured by hand, no access log",
            goal=">= 0.9x hand-configured Caddy",
            met=quiet_m.rps >= 0.9 * by_hand.rps and errors == 0,
        ),
        Figure(
            BENCH,
            "requests/s, router-configured Caddy with access logs vs hand-configured without",
            router.rps,
            "req/s",
            reference=by_hand.rps,
            reference_label="the same Caddy configured by hand, no access log",
        ),
        Figure(
            BENCH,
            "requests/s through Caddy configured by the router vs the local router",
            router.rps,
            "req/s",
            reference=local_m.rps,
            reference_label="local router",
        ),
        Figure(
            BENCH,
            "p50 latency at 1 connection through the router-configured Caddy",
            one_conn["caddy router"],
            "ms",
            reference=one_conn["caddy by hand, access log"],
            reference_label="the same Caddy configured by hand, writing the same access log",
        ),
        Figure(
            BENCH,
            "CPU per request, router-configured Caddy + access-log shipping",
            router.cpu_us,
            "us",
            reference=logged.cpu_us,
            reference_label="hand-configured Caddy writing the same access log",
        ),
        Figure(
            BENCH,
            "of which the router's CPU reading and recording access logs",
            shipping,
            "us",
        ),
        Figure(
            BENCH,
            "route change -> served by the new target, p95 (1 route)",
            _p(one_route, 0.95) * 1000,
            "ms",
            goal="< 1000 ms",
            met=_p(one_route, 0.95) < 1.0,
        ),
        Figure(
            BENCH,
            f"route change -> served by the new target, p95 ({MANY_ROUTES + 1} routes)",
            _p(many_routes, 0.95) * 1000,
            "ms",
            reference=_p(one_route, 0.95) * 1000,
            reference_label="1 route",
            goal="< 1000 ms",
            met=_p(many_routes, 0.95) < 1.0,
        ),
    ]
