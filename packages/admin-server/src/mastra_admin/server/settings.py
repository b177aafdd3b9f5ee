"""Settings of the HTTP server itself (the platform's are ``MastraAdminSettings``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServerSettings"]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MASTRA_ADMIN_SERVER_", extra="ignore")

    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body of the API's routes (the collector has its own "
        "limit); a larger body is refused with 413 before it is read.",
    )
    collector_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest collector batch accepted."
    )
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed sign-ins per client before 429."
    )
    auth_failure_window_s: float = Field(default=60.0, gt=0, description="Window for that limit.")
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="Addresses of proxies whose X-Forwarded-For and X-Forwarded-Proto are "
        "trusted (the client address then comes from them), e.g. the edge in front of "
        "the platform; `*` trusts every peer. Default: none, every peer is the client.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs 'Authorization: Bearer <this>' (the "
        "metrics name teams and projects by id; a scraper gets the token).",
    )
    ingestion: bool = Field(
        default=True, description="Run the ingestion worker in the server process."
    )
    ui: bool = Field(default=True, description="Serve the web UI at /.")
    response_cache_mb: int = Field(
        default=64,
        ge=0,
        description="Memory for cached responses of read endpoints (0: none); only with a "
        "storage that announces its changes (PostgreSQL with read_cache on).",
    )
