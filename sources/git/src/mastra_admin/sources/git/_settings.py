"""Settings of the git layer: where the cache lives, what may be fetched, and the limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["GitSourceSettings"]


class GitSourceSettings(BaseModel):
    """How repositories are checked, fetched and kept.

    The defaults refuse everything that is not a public https or ssh repository: local
    paths need ``file_base_paths``, private addresses need ``allow_private_addresses``
    and plain http needs ``allow_insecure_http_hosts``.
    """

    model_config = ConfigDict(extra="forbid")

    cache_dir: Path | None = Field(
        default=None,
        description=(
            "Where the bare repositories are kept, one per cache key; None = {data_dir}/git-cache."
        ),
    )
    file_base_paths: list[Path] = Field(
        default_factory=list,
        description=(
            "Folders whose repositories may be fetched by local path or file:// URL; "
            "empty = local repositories are refused."
        ),
    )
    allow_private_addresses: bool = Field(
        default=False,
        description=(
            "Allow hosts that are, or resolve to, loopback, private, link-local, "
            "multicast, unspecified or reserved addresses (a git server on the LAN)."
        ),
    )
    allow_insecure_http_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts that may be fetched over plain http:// (tests and labs only; "
            "the credential would cross the network in clear). Empty = none."
        ),
    )
    submodules: bool = Field(
        default=False,
        description=(
            "Reserved and must stay false: submodules are not fetched yet, and their "
            "folders are exported empty."
        ),
    )
    fetch_timeout_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Longest a git command may run; then its whole process group is killed.",
    )
    max_repository_mb: int = Field(
        default=1024,
        ge=1,
        description=(
            "Largest a cached repository may grow on disk; a fetch that passes it is "
            "stopped and the cached repository removed."
        ),
    )
    max_export_mb: int = Field(
        default=4096,
        ge=1,
        description=(
            "Largest a commit's files may be once written out for a build (a guard "
            "against trees that compress very well)."
        ),
    )
    spare_exports: bool = Field(
        default=True,
        description=(
            "Keep, per cached repository, a spare export of the last commit built (in "
            "the cache, prepared in the background after each build's copy), so that the "
            "next build's copy writes only the files that changed; costs the disk space "
            "of one export per repository. False = every build writes every file."
        ),
    )
    git_path: str | None = Field(
        default=None, description="The git executable; None = the first git on PATH."
    )

    @field_validator("submodules")
    @classmethod
    def _no_submodules_yet(cls, value: bool) -> bool:
        if value:
            raise ValueError("submodules are not supported yet; their folders are exported empty")
        return value

    def resolved_cache_dir(self, data_dir: Path) -> Path:
        """``cache_dir``, or ``{data_dir}/git-cache`` when it is not set."""
        return self.cache_dir if self.cache_dir is not None else data_dir / "git-cache"
