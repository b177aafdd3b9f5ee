"""Settings of the Docker runner (the ``[runner]`` section, ``provider = "docker"``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DockerRunnerSettings"]


class DockerRunnerSettings(BaseModel):
    """How builds and servers run in containers. Defaults suit one Docker Engine on the
    platform's own machine."""

    model_config = ConfigDict(extra="forbid")

    engine_url: str = Field(
        default="unix:///var/run/docker.sock",
        description="The Docker Engine API: `unix:///path` or `tcp://host:port`.",
    )
    base_image: str = Field(
        default="node:22-slim",
        description="The image builds and servers run on: Node.js 22 (Mastra 1.71 needs "
        "22.13 or newer) with npm, a shell and a user of uid `uid`.",
    )
    image_repository: str = Field(
        default="mastra-admin/build",
        pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$",
        description="Repository of the image each build makes (tagged with the build id).",
    )
    uid: int = Field(
        default=1000, ge=1, le=2**31 - 2, description="The non-root uid builds and servers run as."
    )
    container_port: int = Field(
        default=4111, ge=1, le=65535, description="`PORT` inside a server's container."
    )
    publish_host: str = Field(
        default="127.0.0.1",
        description="Host address servers' ports are published on (the router reaches them "
        "there): the loopback, so nothing else can.",
    )
    install_timeout_s: float = Field(default=600.0, gt=0, description="Time allowed to install.")
    build_timeout_s: float = Field(default=600.0, gt=0, description="Time allowed to build.")
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
    memory_limit_mb: int = Field(
        default=1024,
        ge=16,
        description="Memory of one server's container (a project's `memory_limit_mb` wins); "
        "over it, the server is killed.",
    )
    cpu_limit: float = Field(
        default=1.0,
        gt=0,
        le=256,
        description="CPUs of one server's container (a project's `cpu_limit` wins).",
    )
    build_memory_limit_mb: int = Field(
        default=4096, ge=64, description="Memory of a build container."
    )
    build_cpu_limit: float = Field(
        default=2.0, gt=0, le=256, description="CPUs of a build container."
    )
    pids_limit: int = Field(
        default=512, ge=16, description="Processes one container may have (fork bombs stop here)."
    )
    tmpfs_mb: int = Field(
        default=256, ge=1, description="Size of the writable `/tmp` of a server's read-only root."
    )
    read_only_root: bool = Field(
        default=True,
        description="Servers run on a read-only root filesystem with a `/tmp` of their own.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="A CA bundle (PEM) passed into build containers for a TLS-inspecting "
        "proxy: npm and node trust it. Default: the platform's own `NODE_EXTRA_CA_CERTS`.",
    )
    build_env_allow: list[str] = Field(
        default_factory=lambda: [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "npm_config_registry",
        ],
        description="Variables of the admin's environment that build containers see.",
    )
    runtime_log_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Size at which a server's captured output file is rotated.",
    )
    runtime_log_keep: int = Field(
        default=20, ge=1, description="Rotated output files kept per stream and server."
    )
    log_tail_lines: int = Field(
        default=20, ge=1, le=500, description="Output lines quoted in a failed step's message."
    )
    state_dir: Path | None = Field(
        default=None,
        description="Where each build's source copy and observability files live. "
        "Default: `{data_dir}/docker`.",
    )
    collector_forward: bool = Field(
        default=True,
        description="When the collector URL is on the platform's loopback, forward it to "
        "each deployment's network gateway (the only host port its containers reach).",
    )

    def resolved_state_dir(self, data_dir: Path) -> Path:
        return (self.state_dir or data_dir / "docker").expanduser().resolve()
