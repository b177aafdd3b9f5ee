"""The host map: public host names to upstream targets, one dict lookup per request.

Entries are immutable; a re-point replaces the entry in one assignment, so a request
sees either the old target or the new one, and requests in flight keep the target
they started with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mastra_admin.core.models import Route, RouteStatus

__all__ = ["HostTable", "Target", "hostname_of", "is_valid_host"]

_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_HOST_RE = re.compile(
    rf"^(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?$", re.IGNORECASE
)
_MAX_HOST = 260
_MAX_RAW_CACHE = 1024


@dataclass(frozen=True, slots=True)
class Target:
    """Where one public host name points: what the proxy needs, nothing more."""

    route_id: str
    deployment_id: str
    hostname: str
    host: str
    port: int
    stopped: bool
    origin: str
    key: tuple[str, int]

    @classmethod
    def of(cls, route: Route, base_domain: str) -> Target:
        host = route.target_host
        # An IPv6 address in a URL needs brackets.
        netloc = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return cls(
            route_id=route.id,
            deployment_id=route.deployment_id,
            hostname=f"{route.subdomain.lower()}.{base_domain}",
            host=host,
            port=route.target_port,
            stopped=route.status is RouteStatus.STOPPED,
            origin=f"http://{netloc}:{route.target_port}",
            key=(host, route.target_port),
        )


def hostname_of(raw: str) -> str:
    """The host name of a ``Host`` header value: without the port, lower case,
    without a trailing dot. Not validated (see ``is_valid_host``)."""
    colon = raw.rfind(":")
    name = raw[:colon] if colon != -1 and not raw.endswith("]") else raw
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def is_valid_host(raw: str) -> bool:
    """Whether a ``Host`` header value is a well-formed host (name or IP) with an
    optional port. Only asked for hosts that match no route, to tell 400 from 404."""
    if not raw or len(raw) > _MAX_HOST or _HOST_RE.match(raw) is None:
        return False
    colon = raw.rfind(":")
    if colon != -1 and not raw.endswith("]"):
        port = raw[colon + 1 :]
        if not port.isdigit() or not 0 < int(port) < 65536:
            return False
    return True


class HostTable:
    """Host name -> ``Target`` for every route of the router."""

    def __init__(self, base_domain: str) -> None:
        self.base_domain = base_domain
        self._by_host: dict[str, Target] = {}
        self._host_of_route: dict[str, str] = {}
        # Host header bytes as clients send them (with the port) -> target: the
        # per-request lookup. Holds hits only; emptied on every change.
        self._by_raw: dict[bytes, Target] = {}

    def get(self, hostname: str) -> Target | None:
        return self._by_host.get(hostname)

    def get_raw(self, raw: bytes) -> Target | None:
        """The target of a ``Host`` header value, as received."""
        target = self._by_raw.get(raw)
        if target is None:
            target = self._by_host.get(hostname_of(raw.decode("latin-1")))
            if target is not None and len(self._by_raw) < _MAX_RAW_CACHE:
                self._by_raw[raw] = target
        return target

    def put(self, route: Route) -> Target:
        """Add or replace the route's entry (one assignment: atomic for readers)."""
        target = Target.of(route, self.base_domain)
        self._by_raw = {}
        previous = self._host_of_route.get(route.id)
        self._by_host[target.hostname] = target
        self._host_of_route[route.id] = target.hostname
        if previous is not None and previous != target.hostname:
            self._by_host.pop(previous, None)
        return target

    def remove(self, route_id: str) -> None:
        self._by_raw = {}
        hostname = self._host_of_route.pop(route_id, None)
        if hostname is not None:
            current = self._by_host.get(hostname)
            if current is not None and current.route_id == route_id:
                del self._by_host[hostname]

    def replace_all(self, routes: Iterable[Route]) -> None:
        """Swap in a whole new map (the reload from storage) in one assignment."""
        by_host: dict[str, Target] = {}
        host_of_route: dict[str, str] = {}
        for route in routes:
            target = Target.of(route, self.base_domain)
            by_host[target.hostname] = target
            host_of_route[route.id] = target.hostname
        self._by_host, self._host_of_route = by_host, host_of_route
        self._by_raw = {}

    def targets(self) -> list[Target]:
        return list(self._by_host.values())

    def __len__(self) -> int:
        return len(self._by_host)
