"""The edge router interface: public host names pointing at running servers.

A route's ``subdomain`` is the host label below the router's base domain, made by
the core as ``{project}-{branch}.{team}``; the router turns it into a public URL.
Routes are persisted through the storage's route store and restored at start.
Every adapter runs ``mastra_admin.core.testing.RouterConformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.models import Route, RouteStatus, utcnow

__all__ = ["CertificateState", "EdgeRouterProvider", "RouteConfig", "RouteHealth"]


class RouteConfig(BaseModel):
    deployment_id: str
    project_id: str
    subdomain: str
    target_host: str
    target_port: int = Field(ge=1, le=65535)
    tls: bool = False


class RouteHealth(BaseModel):
    healthy: bool
    latency_ms: float | None = None
    status_code: int | None = None
    error: str | None = None
    checked_at: datetime = Field(default_factory=utcnow)


class CertificateState(BaseModel):
    """What the router knows of the certificate of one host name."""

    state: Literal["none", "pending", "issued", "failed"]
    issuer: str | None = None
    not_after: datetime | None = None
    error: str | None = None


class EdgeRouterProvider(ABC):
    type: ClassVar[str]
    licence_feature: ClassVar[str | None] = None
    """The licence feature this provider needs (``"cloudflare-router"``, say), or ``None``.
    Without it the platform starts, with a warning, but queues no builds."""

    @abstractmethod
    def public_url(self, subdomain: str) -> str:
        """The URL a browser uses for this subdomain."""

    @abstractmethod
    async def start(self) -> None:
        """Restore persisted routes and begin serving (a no-op for hosted routers)."""

    @abstractmethod
    async def register_route(self, config: RouteConfig) -> Route:
        """Create the route of a deployment, or re-point it if the deployment has one.
        ``Conflict`` when another deployment holds the subdomain."""

    @abstractmethod
    async def update_route(self, route_id: str, *, target_host: str, target_port: int) -> Route:
        """Re-point a route atomically: requests in flight finish on the old target,
        new ones go to the new target, none fail."""

    @abstractmethod
    async def set_route_status(self, route_id: str, status: RouteStatus) -> Route:
        """Mark a route (``stopped`` answers 503 instead of proxying)."""

    @abstractmethod
    async def remove_route(self, route_id: str) -> None:
        """Delete the route; its host then answers 404. Removing twice is a no-op."""

    @abstractmethod
    async def get_route(self, deployment_id: str) -> Route | None: ...

    @abstractmethod
    async def list_routes(self, project_id: str | None = None) -> list[Route]: ...

    @abstractmethod
    async def check_route_health(self, route_id: str) -> RouteHealth:
        """Probe the target and record the result on the route (status and
        ``last_health_check``)."""

    async def drain(self, target_host: str, target_port: int) -> None:
        """Called after a route was re-pointed away from this target and before its
        server is stopped: return once the router holds no request to it, at most
        after the router's stream close delay (long-lived streams end on the
        router's terms, never abruptly). The default returns at once."""

    @abstractmethod
    async def close(self) -> None:
        """Stop serving; routes stay persisted."""

    # --- custom domains (optional) ---------------------------------------------------

    serves_custom_domains: ClassVar[bool] = False
    """Whether ``set_domains`` is implemented; the API refuses custom domains otherwise."""

    async def set_domains(self, deployment_id: str, hostnames: Sequence[str]) -> None:
        """Serve the deployment also at these verified host names, replacing the set
        it had (an empty sequence removes them). The core calls it when a domain is
        verified or removed; the router restores every verified domain of the
        storage on ``start`` (the storage is the source of truth)."""
        raise InvalidInput(f"the {self.type} router does not serve custom domains")

    async def certificate_state(self, hostname: str) -> CertificateState | None:
        """The certificate of a host the router serves; ``None`` when the router has
        no TLS of its own or cannot tell."""
        return None
