"""The file storage interface: where build logs and observability files live.

Paths are relative, ``/``-separated keys; an adapter refuses any that would escape
its root. ``write`` is atomic and durable: a reader sees the old file, the whole new
file, or nothing, never a part. Every adapter runs
``mastra_admin.core.testing.FileStorageConformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel

__all__ = ["FileInfo", "FileStorageProvider"]


class FileInfo(BaseModel):
    path: str
    size: int
    last_modified: datetime


class FileStorageProvider(ABC):
    type: ClassVar[str]

    @abstractmethod
    async def write(self, path: str, content: bytes | str) -> None:
        """Write the whole file atomically and durably (temp file, fsync, rename).

        ``Unavailable`` when the storage is full or cannot be written; then no file
        and no partial file is left at ``path``."""

    @abstractmethod
    async def append(self, path: str, content: bytes | str) -> None:
        """Append to a file, creating it; used for logs that grow line by line."""

    @abstractmethod
    async def read(self, path: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """Read the file (or ``length`` bytes from ``offset``); ``NotFound`` when absent."""

    @abstractmethod
    async def list(self, prefix: str = "") -> list[FileInfo]:
        """Files whose path starts with ``prefix``, oldest first (then by path)."""

    @abstractmethod
    async def stat(self, path: str) -> FileInfo | None: ...

    @abstractmethod
    async def delete(self, path: str) -> bool: ...

    @abstractmethod
    async def move(self, source: str, target: str) -> None:
        """Rename atomically, creating parent folders; ``NotFound`` when absent."""

    async def exists(self, path: str) -> bool:
        return await self.stat(path) is not None

    def local_path(self, path: str) -> str | None:
        """The file's path on this machine, when the storage is local (for tailing)."""
        return None
