"""What ``MastraAdmin`` returns where a stored entity would say too much."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from mastra_admin.core.models import DeploymentType, ProjectEnvVar

__all__ = ["EnvVarView"]


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
