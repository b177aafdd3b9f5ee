"""A batch: byte ranges of files that go into ClickHouse as one insert.

A batch is written down (journaled) before its insert and carries an
``insert_deduplication_token`` computed from the identity and byte range of every
file slice in it, so that repeating it after a crash adds nothing.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

from mastra_admin.observability.clickhouse._sql import ParamValue

__all__ = ["Batch", "Slice", "cut_whole_lines"]


class Slice(BaseModel):
    """``[start, end)`` of one file; ``identity`` names the file for good (its path
    at arrival, or a build file's name, fingerprint and generation)."""

    identity: str
    location: str = Field(description="Where to read it: a storage path or a local path.")
    start: int
    end: int
    eof: bool = Field(
        default=False, description="The slice ends the (complete) file: add a final newline."
    )


class Batch(BaseModel):
    """Slices of one signal and one project, inserted together."""

    signal: str
    project_id: str = ""
    deployment_id: str = ""
    origin: str = ""
    slices: list[Slice]
    attempts: int = 0

    @property
    def token(self) -> str:
        """The same batch always has the same token; any other batch another one."""
        digest = hashlib.sha256()
        digest.update(f"{self.signal}\0{self.project_id}\0{self.deployment_id}\0".encode())
        for piece in self.slices:
            digest.update(f"{piece.identity}\0{piece.start}\0{piece.end}\n".encode())
        return digest.hexdigest()[:40]

    @property
    def size(self) -> int:
        return sum(s.end - s.start for s in self.slices)

    def context(self) -> str:
        """What the parsing views read from the insert's ``log_comment``."""
        return json.dumps(
            {
                "signal": self.signal,
                "project_id": self.project_id,
                "deployment_id": self.deployment_id,
                "source": self.token,
                "offset": 0,
                "origin": self.origin,
            },
            separators=(",", ":"),
        )

    def insert_settings(self) -> dict[str, ParamValue]:
        return {
            "log_comment": self.context(),
            "insert_deduplication_token": self.token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "insert_deduplicate": 1,
        }


def cut_whole_lines(data: bytes) -> bytes:
    """``data`` up to and including its last ``\\n`` (a line still being written is
    left for later)."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""
