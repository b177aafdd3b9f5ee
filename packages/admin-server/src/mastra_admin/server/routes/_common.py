"""Small request models shared by the route modules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Created", "PageQuery"]


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class Created(BaseModel):
    """A created secret-bearing resource with the secret shown this once."""

    token: str = Field(description="Shown once; store it now.")
