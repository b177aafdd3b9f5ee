"""The router's own Caddy (supervised, restarted), an operator's Caddy that lost its
configuration, and the admin endpoint that only the router can reach."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.models import Route
from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter

from .conftest import (
    AppFactory,
    OperatorCaddy,
    RouterFactory,
    host_of,
    named_app,
    send_through,
    settings_for,
    wait_for,
)

RouteTo = Callable[..., Awaitable[Route]]


async def answer(router: CaddyEdgeRouter, host: str) -> str:
    try:
        response = await send_through(router, host, "/")
    except aiohttp.ClientError:
        return ""
    return response.text if response.status == 200 else ""


async def test_the_own_caddy_listens_for_admin_on_a_private_socket(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    router = await make_router(managed=True)
    route = await route_to(router, *await serve_app(named_app("a")))

    assert router.caddy_pid is not None
    assert router.admin_address.startswith("unix/")
    sock = Path(router.admin_address.removeprefix("unix/"))
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(router.state_dir.stat().st_mode) == 0o700
    assert await answer(router, host_of(router, route)) == "a"

    # Caddy listens on nothing but the edge ports and the socket: no admin port.
    listening = Path(f"/proc/{router.caddy_pid}/net/tcp").read_text()
    assert ":07E3 " not in listening  # 2019, Caddy's default admin port

    # Without an allowed Origin the admin API refuses (a browser cannot drive it).
    connector = aiohttp.UnixConnector(path=str(sock))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get("http://localhost/config/", headers={"Origin": "http://evil.example"}) as r,
    ):
        assert r.status == 403


async def test_the_own_caddy_gets_no_secrets_of_the_platform(
    make_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:secret@db/mastra")
    router = await make_router(managed=True)
    assert router.caddy_pid is not None
    environ = Path(f"/proc/{router.caddy_pid}/environ").read_bytes()
    assert b"secret" not in environ
    assert b"DATABASE_URL" not in environ


async def test_a_killed_caddy_is_restarted_and_serves_the_routes_again(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    router = await make_router(managed=True)
    route = await route_to(router, *await serve_app(named_app("a")))
    host = host_of(router, route)
    first = router.caddy_pid
    assert first is not None

    os.kill(first, signal.SIGKILL)

    async def served_again() -> bool:
        return router.caddy_pid not in (None, first) and await answer(router, host) == "a"

    await wait_for(served_again, within=15)


async def test_an_operator_caddy_that_lost_its_configuration_is_loaded_again(
    make_router: RouterFactory,
    serve_app: AppFactory,
    route_to: RouteTo,
    operator_caddy: OperatorCaddy,
) -> None:
    router = await make_router(sync_interval_s=0.2)
    route = await route_to(router, *await serve_app(named_app("a")))
    host = host_of(router, route)
    assert await answer(router, host) == "a"

    status, _ = await asyncio.to_thread(operator_caddy.admin, "POST", "/load", b"{}")
    assert status == 200
    assert await answer(router, host) == ""

    async def served_again() -> bool:
        return await answer(router, host) == "a"

    await wait_for(served_again, within=10)


async def test_routes_changed_by_another_process_are_served_after_the_check(
    make_router: RouterFactory,
    serve_app: AppFactory,
    route_to: RouteTo,
    storage: AdminStorage,
) -> None:
    router = await make_router(sync_interval_s=0.2)
    route = await route_to(router, *await serve_app(named_app("a")))
    b = await serve_app(named_app("b"))
    from mastra_admin.core.storage import RouteUpdate

    await storage.routes.update(route.id, RouteUpdate(target_host=b[0], target_port=b[1]))

    async def switched() -> bool:
        return await answer(router, host_of(router, route)) == "b"

    await wait_for(switched, within=5)


async def test_a_second_router_process_leaves_caddy_to_the_first(
    storage: AdminStorage,
    serve_app: AppFactory,
    route_to: RouteTo,
    operator_caddy: OperatorCaddy,
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path / "shared", operator_caddy.address, sync_interval_s=0.2)
    first = CaddyEdgeRouter(settings, storage.routes)
    second = CaddyEdgeRouter(settings, storage.routes)
    await first.start()
    await second.start()
    try:
        assert first.serving
        assert not second.serving
        route = await route_to(second, *await serve_app(named_app("w")))
        # The worker's change returns after a hand-over; the driving process serves it.
        assert await answer(first, host_of(first, route)) == "w"

        await first.close()

        async def taken_over() -> bool:
            return second.serving and await answer(second, host_of(second, route)) == "w"

        await wait_for(taken_over, within=5)
    finally:
        await first.close()
        await second.close()


async def test_a_port_in_use_makes_the_start_fail_clearly(
    storage: AdminStorage, operator_caddy: OperatorCaddy, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        router = CaddyEdgeRouter(
            settings_for(tmp_path / "r", operator_caddy.address, http_port=port), storage.routes
        )
        with pytest.raises(Unavailable, match="address already in use"):
            await router.start()
        assert not router.serving


ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter, CaddyRouterSettings

async def main():
    storage = InMemoryAdminStorage()
    await storage.init()
    settings = CaddyRouterSettings(
        state_dir=Path(sys.argv[1]), http_port=0, health_interval_s=0, sync_interval_s=0
    )
    router = CaddyEdgeRouter(settings, storage.routes)
    await router.start()
    print("caddy-pid", router.caddy_pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_the_own_caddy_dies_with_a_killed_platform_process(tmp_path: Path) -> None:
    """An orphaned Caddy would keep the edge ports (SO_REUSEPORT: silently sharing
    them with the next one)."""
    import sys

    platform = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ORPHAN_SCRIPT,
        str(tmp_path / "state"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert platform.stdout is not None
    caddy = 0
    while not caddy:
        line = await asyncio.wait_for(platform.stdout.readline(), 30)
        if not line:
            assert platform.stderr is not None
            raise AssertionError((await platform.stderr.read()).decode()[-2000:])
        if line.startswith(b"caddy-pid "):
            caddy = int(line.split()[1])
    assert Path(f"/proc/{caddy}").exists()

    platform.kill()
    await platform.wait()

    def gone() -> bool:
        try:
            state = Path(f"/proc/{caddy}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state == "Z"  # exited; its new parent has not reaped it yet

    async def exited() -> bool:
        return gone()

    await wait_for(exited, within=10)


async def test_acme_mode_is_accepted_by_caddy_and_asks_before_issuing(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo
) -> None:
    router = await make_router(tls="acme", acme_email="ops@example.com")
    route = await route_to(router, *await serve_app(named_app("a")))
    config = await router._admin.config()  # type: ignore[union-attr]
    tls = config["apps"]["tls"]["automation"]
    (issuer,) = tls["policies"][0]["issuers"]
    assert issuer["module"] == "acme"
    assert issuer["email"] == "ops@example.com"
    assert tls["policies"][0]["on_demand"] is True
    assert tls["on_demand"]["permission"]["module"] == "http"
    # No ACME CA is reachable here: nothing is asked of it until a served host's first
    # handshake, and a certificate for it is then pending.
    state = await router.certificate_state(host_of(router, route))
    assert state is not None
    assert state.state == "pending"


async def test_a_build_machine_router_never_drives_caddy(
    storage: AdminStorage, operator_caddy: OperatorCaddy, tmp_path: Path
) -> None:
    router = CaddyEdgeRouter(
        settings_for(tmp_path / "worker", operator_caddy.address, drive="never"), storage.routes
    )
    await router.start()
    try:
        assert not router.serving
        assert router.caddy_pid is None
    finally:
        await router.close()
