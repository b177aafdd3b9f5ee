"""The project source interface: where Mastra projects come from (folders, git hosts)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from mastra_admin.core.errors import InvalidInput

if TYPE_CHECKING:
    from mastra_admin.core.models import Project

__all__ = [
    "ChangeEvent",
    "ChangeType",
    "ProjectSource",
    "ProjectSourceProvider",
    "PullRequest",
    "RepositoryEvent",
    "Revision",
    "SourceConnection",
]


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


class Revision(BaseModel):
    """The commit a build is pinned to, as the source resolved the ref it was given."""

    ref: str
    sha: str
    message: str | None = None
    author: str | None = None
    """``Name <email>``."""


class SourceConnection(BaseModel):
    """A project source made from settings a user gave (a repository URL and its
    credential, say): the project as the source sees it, and what to keep in the
    project's ``source_config``. Secrets in ``config`` are already encrypted, under
    ``config["secrets"]`` (``models.SOURCE_SECRETS_KEY``), which the API never shows."""

    source: ProjectSource
    config: dict[str, Any]


class PullRequest(BaseModel):
    number: int = Field(ge=1)
    action: Literal["opened", "updated", "closed"]
    head_sha: str
    head_branch: str
    from_fork: bool
    title: str = ""


class RepositoryEvent(BaseModel):
    """A webhook delivery as a source read it (before its signature is checked:
    nothing in it is trusted until ``verify_webhook`` says so for a project)."""

    kind: Literal["ping", "push", "pull_request", "other"]
    event: str
    """The host's own name of the event (``push``, ``pull_request``, ``issues`` ...)."""
    delivery_id: str = Field(min_length=1, max_length=200)
    repository_key: str
    """What ``ProjectStore.find_by_source(type, "repository_key", ...)`` finds the
    projects of the repository by."""
    branch: str | None = None
    """A push: the branch pushed (``None`` for a tag)."""
    sha: str | None = None
    """A push: the new head; ``None`` when the branch was deleted."""
    message: str | None = None
    pull_request: PullRequest | None = None


class ProjectSourceProvider(ABC):
    """Finds projects and materialises them into a build directory.

    Every adapter runs ``mastra_admin.core.testing.SourceConformance``.
    """

    type: ClassVar[str]
    connects: ClassVar[bool] = False
    """Projects are made from settings a user gives (``connect``: a repository URL),
    not picked from what ``list_projects`` finds."""
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

    async def connect(
        self, team_id: str, config: Mapping[str, Any], *, default_branch: str
    ) -> SourceConnection:
        """A project source from settings a user gave when creating a project
        (``CreateProject.source``, hostile until checked: ``InvalidInput`` naming the
        field), read at ``default_branch`` to see whether it is a Mastra project
        (``metadata["valid"]``/``["problems"]`` as for listed projects). Sources
        whose projects are picked by id (folders on disk) do not connect:
        ``InvalidInput``."""
        raise InvalidInput(
            f"projects of the {self.type!r} source are picked by source_id",
            details={"field": "source"},
        )

    async def source_for(self, project: Project) -> ProjectSource:
        """The source project ``project`` was created from (by default found by
        ``project.source_id``)."""
        return await self.get_project(project.source_id or "")

    async def pin(self, source: ProjectSource, ref: str) -> tuple[ProjectSource, Revision] | None:
        """Resolve ``ref`` (a branch, a tag or a commit id) to one commit and return
        the source pinned to it (``get_project_path`` then copies exactly that
        commit) with the revision. ``None`` for sources without revisions (folders)."""
        return None

    def read_webhook(self, headers: Mapping[str, str], body: bytes) -> RepositoryEvent | None:
        """Read a webhook delivery (``headers`` with lower-case names). ``None`` when
        this source takes no webhooks; ``InvalidInput`` for a malformed one."""
        return None

    def verify_webhook(self, project: Project, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the delivery is signed with ``project``'s webhook secret."""
        return False

    def watch_changes(self, source: ProjectSource) -> AsyncIterator[list[ChangeEvent]]:
        """Yield batches of changes (debounced) until the consumer stops iterating.

        Optional: sources that cannot watch raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot watch for changes")

    async def close(self) -> None:
        """Release resources (watchers, clients)."""
