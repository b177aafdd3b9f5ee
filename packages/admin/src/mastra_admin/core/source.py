"""The project source interface: where Mastra projects come from (folders, git hosts)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

__all__ = ["ChangeEvent", "ChangeType", "ProjectSource", "ProjectSourceProvider"]


class ProjectSource(BaseModel):
    """A project as a source sees it.

    ``metadata`` of a local source carries at least ``package_manager`` (npm, pnpm,
    yarn, bun), ``mastra_version``, ``has_mastra_entry``, ``version``,
    ``workspace_root`` (or ``None``), ``valid`` and ``problems`` (why it is not).
    """

    id: str
    name: str
    type: str
    path: str
    default_branch: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def package_manager(self) -> str:
        return str(self.metadata.get("package_manager") or "npm")


class ChangeType(StrEnum):
    ADD = "add"
    CHANGE = "change"
    UNLINK = "unlink"


class ChangeEvent(BaseModel):
    type: ChangeType
    path: str


class ProjectSourceProvider(ABC):
    """Finds projects and materialises them into a build directory.

    Every adapter runs ``mastra_admin.core.testing.SourceConformance``.
    """

    type: ClassVar[str]
    licence_feature: ClassVar[str | None] = None
    """The licence feature this provider needs (``"github-source"``, say), or ``None``.
    Without it the platform starts, with a warning, but queues no builds and creates no projects."""

    @abstractmethod
    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        """Every project the team may use (all of them for a local source)."""

    @abstractmethod
    async def get_project(self, source_id: str) -> ProjectSource:
        """``NotFound`` when there is no such project (or it is outside the source)."""

    @abstractmethod
    async def validate_access(self, source: ProjectSource) -> bool:
        """Whether the project can be read now."""

    @abstractmethod
    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        """Copy (or clone) the project into ``target_dir`` and return the project root
        inside it. Never returns the source folder itself: builds run on a copy."""

    def watch_changes(self, source: ProjectSource) -> AsyncIterator[list[ChangeEvent]]:
        """Yield batches of changes (debounced) until the consumer stops iterating.

        Optional: sources that cannot watch raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot watch for changes")

    async def close(self) -> None:
        """Release resources (watchers, clients)."""
