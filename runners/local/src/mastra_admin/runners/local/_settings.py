"""Settings of the local process runner (the ``[runner]`` section, ``provider = "local"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LocalRunnerSettings"]

_BUILD_ENV_ALLOW = [
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "npm_config_*",
    "NPM_CONFIG_*",
    "COREPACK_*",
]


class LocalRunnerSettings(BaseModel):
    """How builds run and where servers listen. Defaults work on a laptop."""

    model_config = ConfigDict(extra="forbid")

    builds_dir: Path | None = Field(
        default=None,
        description="Where each build gets its own folder. Default: `{data_dir}/builds`.",
    )
    host: str = Field(
        default="127.0.0.1", description="Address servers listen on and are probed at."
    )
    port_range_start: int = Field(
        default=4100, ge=1, le=65535, description="First port servers may use."
    )
    port_range_end: int = Field(
        default=4199, ge=1, le=65535, description="Last port servers may use."
    )
    install_timeout_s: float = Field(
        default=600.0, gt=0, description="Time allowed for the install step."
    )
    build_timeout_s: float = Field(
        default=600.0, gt=0, description="Time allowed for `mastra build`."
    )
    health_timeout_s: float = Field(
        default=30.0, gt=0, description="Time a started server has to answer its health check."
    )
    health_poll_interval_s: float = Field(
        default=0.1, gt=0, description="Pause between health probes while a server starts."
    )
    health_probe_timeout_s: float = Field(
        default=2.0, gt=0, description="Time one health probe may take."
    )
    stop_grace_s: float = Field(default=10.0, ge=0, description="SIGTERM to SIGKILL when stopping.")
    node_options: str | None = Field(
        default=None, description="`NODE_OPTIONS` for every server (a project's own setting wins)."
    )
    runtime_log_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Size at which a server's captured stdout/stderr file is rotated.",
    )
    runtime_log_keep: int = Field(
        default=20, ge=1, description="Rotated stdout/stderr files kept per stream and server."
    )
    build_env_allow: list[str] = Field(
        default_factory=lambda: list(_BUILD_ENV_ALLOW),
        description="Variables of the admin's environment that install and build steps see "
        "(a trailing `*` matches a prefix). Servers get only PATH, HOME, LANG and TZ.",
    )
    log_tail_lines: int = Field(
        default=20, ge=1, le=500, description="Output lines quoted in a failed step's message."
    )
    isolation: Literal["sandbox", "none"] = Field(
        default="sandbox",
        description="`sandbox`: every install, build step and server runs in a sandbox of "
        "its deployment (bubblewrap and pasta; see docs/security.md). `none`: as plain "
        "processes of the platform's user, which can read its data dir and keys and reach "
        "its services: only for one trusted developer on a laptop.",
    )
    sandbox_dir: Path | None = Field(
        default=None,
        description="Where deployments' homes (npm's cache) and the uid table live. "
        "Default: `{data_dir}/sandbox`.",
    )
    sandbox_ro_paths: list[Path] = Field(
        default_factory=list,
        description="More folders a sandbox sees read-only, besides /usr and a few /etc "
        "entries: a Node.js installed outside /usr, say. Never the data dir.",
    )
    sandbox_uid_base: int = Field(
        default=2_000_000_000,
        ge=1000,
        le=2**31 - 2,
        description="First uid given to a deployment when the platform runs as root "
        "(one uid per deployment, recorded in `{sandbox_dir}/uids.json`).",
    )
    sandbox_uid_count: int = Field(
        default=1_000_000, ge=1, description="How many uids from `sandbox_uid_base` are used."
    )
    bwrap_path: str | None = Field(
        default=None, description="The bubblewrap binary. Default: `bwrap` on PATH."
    )
    pasta_path: str | None = Field(
        default=None, description="The pasta binary (passt). Default: `pasta` on PATH."
    )

    @model_validator(mode="after")
    def _range(self) -> LocalRunnerSettings:
        if self.port_range_end < self.port_range_start:
            raise ValueError(
                f"port_range_end ({self.port_range_end}) is below "
                f"port_range_start ({self.port_range_start})"
            )
        if self.sandbox_uid_base + self.sandbox_uid_count > 2**31 - 1:
            raise ValueError("sandbox_uid_base + sandbox_uid_count must stay below 2**31 - 1")
        return self

    def resolved_builds_dir(self, data_dir: Path) -> Path:
        return (self.builds_dir or data_dir / "builds").expanduser().resolve()
