"""Settings of a MastraAdmin installation (pydantic-settings).

Sources, strongest first: ``MASTRA_ADMIN_*`` environment variables (nested with
``__``), the specification's variable names (``ADMIN_PORT`` ...), the TOML file named
by ``MASTRA_ADMIN_CONFIG`` (default ``mastra-admin.toml`` when present), defaults.
Each provider kind has a section: ``provider`` picks the implementation by name and
every other key belongs to that provider's own settings model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BuildSettings", "MastraAdminSettings", "ProviderSection"]


class ProviderSection(BaseModel):
    """``provider`` names the implementation; other keys are passed to its settings."""

    model_config = ConfigDict(extra="allow")

    provider: str

    def provider_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _section(name: str) -> Any:
    return Field(default_factory=lambda: ProviderSection(provider=name))


class BuildSettings(BaseModel):
    """How builds are run by this process's workers."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(default=2, ge=0, le=64, description="Build workers in this process.")
    max_active_builds: int | None = Field(
        default=None, ge=1, description="Most builds active at once across all workers."
    )
    lease_s: float = Field(default=30.0, gt=1, description="A worker's hold on a build.")
    poll_interval_s: float = Field(default=1.0, gt=0, description="Queue poll interval.")
    keep_successful: int = Field(default=3, ge=1, description="Build outputs kept per deployment.")
    stop_grace_s: float = Field(default=10.0, ge=0, description="SIGTERM to SIGKILL.")
    health_interval_s: float = Field(default=15.0, gt=0, description="Server health refresh.")


class MastraAdminSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MASTRA_ADMIN_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(default=Path(".mastra-admin"), description="Where all state lives.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(
        default=3000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("MASTRA_ADMIN_PORT", "ADMIN_PORT", "port"),
        description="Port of the API and UI.",
    )
    public_url: str | None = Field(
        default=None,
        description="URL at which deployed servers reach the admin (collector). "
        "Default: http://{host}:{port}.",
    )
    base_domain: str = Field(default="localhost", description="Domain below which servers are routed.")
    licence_key: str | None = Field(default=None, description="Signed licence key; none = community.")
    licence_public_key: str | None = Field(
        default=None, description="Base64 Ed25519 public key that licence keys are checked with."
    )
    plugins_allow: list[str] | None = Field(
        default=None, description="Entry-point names of plugins to load; none = all installed."
    )
    plugins_deny: list[str] = Field(default_factory=list, description="Plugins never to load.")
    builds: BuildSettings = Field(default_factory=BuildSettings)

    encryption: ProviderSection = _section("aes-gcm")
    file_storage: ProviderSection = _section("local")
    storage: ProviderSection = _section("pg")
    source: ProviderSection = _section("local")
    router: ProviderSection = _section("local")
    runner: ProviderSection = _section("local")
    observability: ProviderSection = _section("clickhouse")
    auth: ProviderSection = _section("none")
    email: ProviderSection = _section("console")
    billing: ProviderSection = _section("none")

    @property
    def admin_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
