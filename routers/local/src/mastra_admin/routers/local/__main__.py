"""Run the router on its own with routes given on the command line::

    python -m mastra_admin.routers.local --port 8080 \\
        --route shop-main.search=127.0.0.1:4101 --route docs-main.search=127.0.0.1:4102

Useful to put a deployment's URL in front of any local server, and used by the
benchmark. Runs on uvloop where it is installed (a dependency except on Windows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import Sequence

import structlog

from mastra_admin.core.router import RouteConfig
from mastra_admin.routers.local._router import LocalEdgeRouter
from mastra_admin.routers.local._settings import LocalRouterSettings
from mastra_admin.routers.local._static import StaticRouteStore


def _parse_route(text: str) -> tuple[str, str, int]:
    subdomain, _, target = text.partition("=")
    host, _, port = target.rpartition(":")
    if not subdomain or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected SUBDOMAIN=HOST:PORT, got {text!r}")
    return subdomain, host, int(port)


async def _serve(args: argparse.Namespace) -> None:
    settings = LocalRouterSettings(
        host=args.host,
        port=args.port,
        base_domain=args.base_domain,
        tls=args.tls,
        health_interval_s=args.health_interval,
        sync_interval_s=0,
        **{
            name: value
            for name, value in (
                ("header_timeout_s", args.header_timeout),
                ("body_idle_timeout_s", args.body_idle_timeout),
                ("keepalive_timeout_s", args.keepalive_timeout),
                ("max_connections_per_client", args.max_connections_per_client),
            )
            if value is not None  # not given: the settings' default
        },
    )
    router = LocalEdgeRouter(settings, StaticRouteStore())
    await router.start()
    for subdomain, host, port in args.route:
        route = await router.register_route(
            RouteConfig(
                deployment_id=str(uuid.uuid4()),
                project_id="standalone",
                subdomain=subdomain,
                target_host=host,
                target_port=port,
            )
        )
        sys.stdout.write(f"{route.public_url} -> {host}:{port}\n")
    sys.stdout.write(f"listening on {settings.host}:{router.port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await router.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mastra_admin.routers.local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--base-domain", default="localhost")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--health-interval", type=float, default=15.0)
    parser.add_argument("--header-timeout", type=float, help="seconds (header_timeout_s)")
    parser.add_argument("--body-idle-timeout", type=float, help="seconds (body_idle_timeout_s)")
    parser.add_argument("--keepalive-timeout", type=float, help="seconds (keepalive_timeout_s)")
    parser.add_argument(
        "--max-connections-per-client", type=int, help="0 = no limit (max_connections_per_client)"
    )
    parser.add_argument("--route", type=_parse_route, action="append", default=[])
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    args = parser.parse_args(argv)
    # Logs on stderr; stdout carries the public URLs only.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    runner: asyncio.Runner
    try:
        if args.no_uvloop:
            raise ImportError
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
