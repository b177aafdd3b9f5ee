"""What ``MastraAdmin`` returns where a stored entity would say too much."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from mastra_admin.core.models import Deployment, DeploymentType, Domain, ProjectEnvVar
from mastra_admin.core.router import CertificateState

__all__ = [
    "DeploymentView",
    "DnsRecord",
    "DomainSupport",
    "DomainView",
    "EnvVarView",
    "OverrideKey",
]


class EnvVarView(BaseModel):
    """An env var as a person sees it: ``value`` is ``None`` unless it was revealed
    by someone allowed to (``env_var:reveal``)."""

    id: str
    project_id: str
    key: str
    deployment_type: DeploymentType | None = None
    is_secret: bool
    value: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, env_var: ProjectEnvVar, value: str | None = None) -> EnvVarView:
        return cls(
            id=env_var.id,
            project_id=env_var.project_id,
            key=env_var.key,
            deployment_type=env_var.deployment_type,
            is_secret=env_var.is_secret,
            value=value,
            created_at=env_var.created_at,
            updated_at=env_var.updated_at,
        )


class OverrideKey(BaseModel):
    """A deployment's env var override as the API shows it: its key, never its value
    or ciphertext (revealing values is ``reveal_env_vars``' job)."""

    key: str
    is_secret: bool = True


class DeploymentView(Deployment):
    """A deployment as the API shows it: its overrides by key only."""

    env_var_overrides: list[OverrideKey] = Field(default_factory=list)  # type: ignore[assignment]

    @field_validator("env_var_overrides", mode="before")
    @classmethod
    def _overrides(cls, value: Any) -> Any:
        return value

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentView:
        data = {name: getattr(deployment, name) for name in Deployment.model_fields}
        data["env_var_overrides"] = [
            OverrideKey(key=o.key, is_secret=o.is_secret) for o in deployment.env_var_overrides
        ]
        return cls.model_construct(deployment.model_fields_set, **data)


class DnsRecord(BaseModel):
    """A DNS record a custom domain needs, as its owner types it into their DNS."""

    type: Literal["CNAME", "A", "AAAA", "TXT"]
    name: str = Field(description="The record's full name.")
    value: str
    purpose: Literal["routing", "verification"] = Field(
        description="routing: sends the domain's traffic to the platform's edge;"
        " verification: proves the team owns the domain."
    )


class DomainView(Domain):
    """A custom domain with the DNS records it needs and, once the router serves it,
    its certificate."""

    dns_records: list[DnsRecord] = Field(
        description="What to create in the domain's DNS: the routing record(s), when the"
        " installation names its edge, and the TXT record that proves ownership."
    )
    certificate: CertificateState | None = Field(
        default=None,
        description="The router's certificate of the host name; null when the domain is"
        " not verified, or the router keeps no certificates of its own or cannot tell.",
    )


class DomainSupport(BaseModel):
    """Whether and how custom domains can be added to one deployment, for the caller."""

    serves_custom_domains: bool = Field(
        description="Whether the installation's router serves custom domains at all."
    )
    may_manage: bool = Field(description="Whether the caller may add and remove domains here.")
    may_verify: bool = Field(description="Whether the caller may start a DNS check.")
    max_per_deployment: int
    verification_label: str = Field(
        description="The label under a domain where its TXT record goes."
    )
    edge_cname: str | None = None
    edge_addresses: list[str] = Field(default_factory=list)
