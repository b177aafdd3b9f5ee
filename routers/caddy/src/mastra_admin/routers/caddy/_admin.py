"""The client of Caddy's admin API: the only way this router changes Caddy.

The whole configuration is sent with ``POST /load`` (Caddy reloads on every change,
whatever the path, so a partial ``PATCH`` would cost the same); ``GET /id/{marker}``
tells whether Caddy still runs what was sent; ``GET /reverse_proxy/upstreams`` counts
requests in flight per upstream, including those of replaced configurations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import ClientSession, ClientTimeout, TCPConnector, UnixConnector

from mastra_admin.core.errors import Unavailable
from mastra_admin.routers.caddy._settings import parse_admin_address

__all__ = ["CaddyAdmin", "CaddyAdminError", "CaddyConfigRefused", "UpstreamStatus"]

_LOAD_TIMEOUT_S = 60.0
_QUERY_TIMEOUT_S = 5.0
_MAX_ERROR_CHARS = 500


class CaddyAdminError(Unavailable):
    """Caddy's admin API could not be reached, or refused what was sent."""

    code = "caddy_unavailable"


class CaddyConfigRefused(CaddyAdminError):
    """Caddy answered, and refused the configuration (a port in use, say): trying
    again will not help."""

    code = "caddy_config_refused"


@dataclass(frozen=True)
class UpstreamStatus:
    address: str
    num_requests: int
    fails: int


class CaddyAdmin:
    """Requests to one Caddy admin endpoint (a unix socket or a loopback port).

    Every request carries an ``Origin`` the endpoint allows, because the router
    configures Caddy with ``enforce_origin``: a browser page can then never drive it.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        network, host, port = parse_admin_address(address)
        self.network = network
        self._path = host if network == "unix" else None
        if network == "unix":
            self._base = "http://localhost"
            self.origin = "http://localhost"
        else:
            netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self._base = f"http://{netloc}"
            self.origin = self._base
        self._session: ClientSession | None = None

    @property
    def socket_path(self) -> str | None:
        return self._path

    def _client(self) -> ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector = (
                UnixConnector(path=self._path, force_close=False)
                if self._path is not None
                else TCPConnector(limit=8)
            )
            self._session = ClientSession(
                connector=connector,
                headers={"Origin": self.origin},
                trust_env=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self, method: str, path: str, *, body: bytes | None = None, timeout_s: float
    ) -> tuple[int, bytes]:
        try:
            async with self._client().request(
                method,
                self._base + path,
                data=body,
                headers={"Content-Type": "application/json"} if body is not None else None,
                timeout=ClientTimeout(total=timeout_s),
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CaddyAdminError(
                f"Caddy's admin API at {self.address} does not answer: "
                f"{str(exc) or type(exc).__name__}",
                details={"admin_address": self.address},
            ) from exc

    async def load(self, config: dict[str, Any]) -> None:
        """Replace Caddy's whole configuration; returns once Caddy serves it."""
        body = json.dumps(config, separators=(",", ":")).encode()
        status, answer = await self._request("POST", "/load", body=body, timeout_s=_LOAD_TIMEOUT_S)
        if status != 200:
            raise CaddyConfigRefused(
                f"Caddy refused the configuration ({status}): "
                f"{answer.decode('utf-8', 'replace')[:_MAX_ERROR_CHARS]}",
                details={"status": status},
            )

    async def has_id(self, marker: str) -> bool:
        """Whether the running configuration has an object with ``@id`` ``marker``."""
        status, _ = await self._request("GET", f"/id/{marker}", timeout_s=_QUERY_TIMEOUT_S)
        if status in (200, 404):
            return status == 200
        # Caddy answers 400/500 for an unknown id depending on the version.
        return False

    async def config(self) -> Any:
        status, answer = await self._request("GET", "/config/", timeout_s=_QUERY_TIMEOUT_S)
        if status != 200:
            raise CaddyAdminError(f"Caddy's admin API answered {status} to GET /config/")
        return json.loads(answer or b"null")

    async def upstreams(self) -> list[UpstreamStatus]:
        """Requests in flight per upstream address (``GET /reverse_proxy/upstreams``)."""
        status, answer = await self._request(
            "GET", "/reverse_proxy/upstreams", timeout_s=_QUERY_TIMEOUT_S
        )
        if status != 200:
            raise CaddyAdminError(f"Caddy's admin API answered {status} to the upstreams list")
        rows = json.loads(answer or b"[]") or []
        return [
            UpstreamStatus(
                address=str(row.get("address", "")),
                num_requests=int(row.get("num_requests", 0)),
                fails=int(row.get("fails", 0)),
            )
            for row in rows
            if isinstance(row, dict)
        ]

    async def ping(self) -> bool:
        try:
            status, _ = await self._request("GET", "/config/admin", timeout_s=2.0)
        except CaddyAdminError:
            return False
        return status == 200
