"""Settings of the ``limited`` runner (the ``[runner]`` section, ``provider = "limited"``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LimitedRunnerSettings"]


class LimitedRunnerSettings(BaseModel):
    """Where builds go, where servers listen, and the limits every command runs under."""

    model_config = ConfigDict(extra="forbid")

    builds_dir: Path | None = Field(
        default=None, description="One folder per build. Default: `{data_dir}/limited-builds`."
    )
    host: str = Field(default="127.0.0.1", description="Address servers listen on.")
    port_range_start: int = Field(default=4200, ge=1, le=65535, description="First server port.")
    port_range_end: int = Field(default=4299, ge=1, le=65535, description="Last server port.")
    nice: int = Field(
        default=10, ge=0, le=19, description="CPU priority of builds and servers (`nice -n`)."
    )
    max_open_files: int = Field(
        default=4096, ge=64, description="Open files per process (`prlimit --nofile`)."
    )
    max_heap_mb: int | None = Field(
        default=None,
        ge=64,
        description="Heap of each server (`--max-old-space-size` in NODE_OPTIONS); None: Node's.",
    )
    install_timeout_s: float = Field(default=600.0, gt=0, description="Install step deadline.")
    build_timeout_s: float = Field(default=600.0, gt=0, description="Build step deadline.")
    health_timeout_s: float = Field(default=30.0, gt=0, description="Time to become healthy.")
    stop_grace_s: float = Field(default=10.0, ge=0, description="SIGTERM to SIGKILL.")

    @model_validator(mode="after")
    def _range(self) -> LimitedRunnerSettings:
        if self.port_range_end < self.port_range_start:
            raise ValueError("port_range_end is below port_range_start")
        return self
