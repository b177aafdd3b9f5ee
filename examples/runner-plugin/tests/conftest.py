"""A folder-copying source for the runner (the runner copies through whatever source
the platform has; the tests need nothing more than a copy of a folder)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import ClassVar

from mastra_admin.core.errors import NotFound
from mastra_admin.core.source import ProjectSource, ProjectSourceProvider

_IGNORE = shutil.ignore_patterns("node_modules", ".mastra", ".git", "dist", ".next")


class FolderCopySource(ProjectSourceProvider):
    """Copies the folder a ``ProjectSource`` names."""

    type: ClassVar[str] = "local"

    async def list_projects(self, team_id: str | None = None) -> list[ProjectSource]:
        return []

    async def get_project(self, source_id: str) -> ProjectSource:
        raise NotFound("no project", details={"source_id": source_id})

    async def validate_access(self, source: ProjectSource) -> bool:
        return await asyncio.to_thread(os.path.isdir, source.path)

    async def get_project_path(self, source: ProjectSource, target_dir: Path) -> Path:
        if not await self.validate_access(source):
            raise NotFound(f"project folder {source.path} does not exist")
        await asyncio.to_thread(
            shutil.copytree, source.path, target_dir, ignore=_IGNORE, dirs_exist_ok=True
        )
        return target_dir
