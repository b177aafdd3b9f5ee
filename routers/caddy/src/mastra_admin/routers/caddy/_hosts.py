"""The host names Caddy serves, and which deployment each belongs to.

Every name that reaches Caddy's configuration, a certificate request or a file path
passes ``canonical_host`` or the subdomain rule first: Caddy's matchers and dial
addresses expand ``{placeholders}``, so a brace or a slash in a name would let a
request steer the proxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.models import Route
from mastra_admin.core.routing import MAX_HOST_LENGTH, check_subdomain

__all__ = [
    "EdgeHost",
    "HostTable",
    "canonical_host",
    "check_subdomain",
    "check_target_host",
    "host_of_header",
]

# Route subdomains follow the core's rule (``check_subdomain``, re-exported here).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_CANONICAL = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_TARGET = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def canonical_host(value: str) -> str | None:
    """``value`` when it is a host name exactly as DNS and certificates have it
    (lowercase ASCII labels, no trailing dot, at most 253 characters, not an IP
    address or a name ending in a number); ``None`` otherwise. Nothing is normalised:
    ``Shop.Example.com`` or ``shop.example.com.`` is refused, not repaired, so that a
    name can never mean two things."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_HOST_LENGTH:
        return None
    if not _CANONICAL.match(value):
        return None
    if value.rsplit(".", 1)[-1].isdigit():
        return None  # an IPv4 address, or a name a browser would read as one
    return value


def check_target_host(value: str) -> str:
    """An upstream host Caddy may dial: an IP address or a plain host name."""
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    if not _TARGET.match(text):
        raise InvalidInput(
            f"{value!r} is not a valid target host (an IP address or a host name)",
            details={"field": "target_host"},
        )
    return text.lower()


def host_of_header(value: str) -> str:
    """The host name of a ``Host`` header value (port and trailing dot removed,
    lowercase); ``""`` for an IP literal or an empty value."""
    text = value.strip().lower()
    if text.startswith("["):
        return ""
    return text.split(":", 1)[0].rstrip(".")


@dataclass(frozen=True)
class EdgeHost:
    """One host name Caddy serves, and the route behind it."""

    hostname: str
    route_id: str
    deployment_id: str
    project_id: str
    custom: bool = False


class HostTable:
    """Host name → route, for the names of routes and of verified custom domains.

    Replaced whole from the storage's view (``replace``); read by the on-demand TLS
    permission check and by the access-log shipper, which run between changes.
    """

    def __init__(self, base_domain: str) -> None:
        self.base_domain = base_domain
        self._hosts: dict[str, EdgeHost] = {}

    def host_of(self, route: Route) -> str:
        return f"{route.subdomain}.{self.base_domain}"

    def replace(self, routes: Iterable[Route], domains: Mapping[str, Sequence[str]]) -> None:
        hosts: dict[str, EdgeHost] = {}
        by_deployment: dict[str, Route] = {}
        for route in routes:
            name = self.host_of(route)
            hosts[name] = EdgeHost(name, route.id, route.deployment_id, route.project_id)
            by_deployment[route.deployment_id] = route
        for deployment_id, names in domains.items():
            owner = by_deployment.get(deployment_id)
            if owner is None:
                continue  # a verified domain of a deployment that is not routed: nothing to serve
            for name in names:
                # A route's own host name always wins over a custom domain.
                hosts.setdefault(
                    name,
                    EdgeHost(name, owner.id, owner.deployment_id, owner.project_id, custom=True),
                )
        self._hosts = hosts

    def get(self, hostname: str) -> EdgeHost | None:
        return self._hosts.get(hostname)

    def __contains__(self, hostname: object) -> bool:
        return hostname in self._hosts

    def __len__(self) -> int:
        return len(self._hosts)
