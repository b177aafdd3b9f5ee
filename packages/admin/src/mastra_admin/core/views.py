"""What ``MastraAdmin`` returns where a stored entity would say too much."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from mastra_admin.core.models import Deployment, DeploymentType, ProjectEnvVar

__all__ = ["DeploymentView", "EnvVarView", "OverrideKey"]


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
