"""The on-demand TLS permission endpoint: Caddy asks it before it gets a certificate.

Caddy's ``tls.permission.http`` module sends ``GET {endpoint}?domain={name}`` for the
name of every TLS handshake it has no certificate for, and goes on only on a 2xx.
Without this check anyone could point any name at the edge and make it ask the ACME
CA for certificates (rate limits, a CA account full of strangers' names). It answers
200 only for a route's host or a verified custom domain, exactly as spelt in the
router's table: no case folding, no trailing dot, no IP address, nothing too long.

It listens on 127.0.0.1, on a random port, under a random path that only Caddy's
configuration (readable only through the admin socket) knows.
"""

from __future__ import annotations

import asyncio.base_events
import secrets
from collections.abc import Callable

import structlog
from aiohttp import web

from mastra_admin.routers.caddy._hosts import canonical_host

__all__ = ["PermissionEndpoint"]

_log = structlog.get_logger("mastra_admin.routers.caddy")


class PermissionEndpoint:
    """A tiny aiohttp application answering Caddy's "may I get a certificate for X"."""

    def __init__(self, allowed: Callable[[str], bool]) -> None:
        self._allowed = allowed
        self._token = secrets.token_urlsafe(18)
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.granted = 0
        self.refused = 0

    async def _ask(self, request: web.Request) -> web.Response:
        if request.match_info.get("token") != self._token:
            return web.Response(status=404)
        values = request.query.getall("domain", [])
        if len(values) != 1:
            self.refused += 1
            return web.Response(status=400, text="one domain parameter\n")
        name = canonical_host(values[0])
        if name is None:
            self.refused += 1
            _log.debug("tls.on_demand_refused", reason="not a canonical host name")
            return web.Response(status=400, text="not a host name\n")
        if not self._allowed(name):
            self.refused += 1
            _log.debug("tls.on_demand_refused", host=name, reason="not served here")
            return web.Response(status=403, text="not served here\n")
        self.granted += 1
        _log.info("tls.on_demand_granted", host=name)
        return web.Response(status=200, text="ok\n")

    async def start(self) -> str:
        app = web.Application(client_max_size=1024)
        app.router.add_get("/{token}/ask", self._ask)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=False)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = int(server.sockets[0].getsockname()[1])
        self._runner = runner
        self.url = f"http://127.0.0.1:{port}/{self._token}/ask"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
