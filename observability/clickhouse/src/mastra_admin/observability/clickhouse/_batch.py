"""A batch: byte ranges of files that go into ClickHouse as one insert.

A batch is written down (journaled) before its insert and carries an
``insert_deduplication_token`` computed from the identity and byte range of every
file slice in it, so that repeating it after a crash adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from pydantic import BaseModel, Field

from mastra_admin.observability.clickhouse._sql import ParamValue

__all__ = ["Batch", "Chunk", "Slice", "whole_lines"]


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


def whole_lines(pieces: list[bytes]) -> list[bytes]:
    """``pieces`` (consecutive bytes of one file) up to and including their last
    ``\\n``; [] when there is none. Only the last piece kept is cut (a copy of at most
    one piece)."""
    while pieces:
        end = pieces[-1].rfind(b"\n") + 1
        if end == len(pieces[-1]):
            return pieces
        if end:
            pieces[-1] = pieces[-1][:end]
            return pieces
        pieces.pop()
    return pieces


def _newlines_after_newlines(buffer: bytes) -> int:
    """How many ``\\n`` follow another in ``buffer`` (each ends an empty line)."""
    count, at = 0, buffer.find(b"\n\n")
    while at >= 0:
        end = at + 2
        while end < len(buffer) and buffer[end] == 0x0A:
            end += 1
        count += end - at - 1
        at = buffer.find(b"\n\n", end)
    return count


class Chunk:
    """The whole lines of one batch, as the buffers they were read into (at most
    ``INSERT_PIECE_BYTES`` each), counted when made.

    An insert takes the buffers once (``take``) and each is let go as soon as the
    engine has it: the engine keeps the lines as a column of its own, so holding them
    in Python too until the insert ends would keep the chunk in memory twice while
    the engine works on it, which is when it needs the most."""

    __slots__ = ("_buffers", "blank", "lines", "size")

    def __init__(self, buffers: list[bytes]) -> None:
        self._buffers = buffers
        self.lines = self.blank = self.size = 0
        after_newline = True  # a buffer may start inside a line
        for buffer in buffers:
            self.lines += buffer.count(b"\n")
            self.blank += _newlines_after_newlines(buffer)
            if after_newline and buffer.startswith(b"\n"):
                self.blank += 1
            if buffer:
                after_newline = buffer.endswith(b"\n")
            self.size += len(buffer)

    def take(self) -> Iterator[bytes]:
        """The buffers, in order, each dropped from the chunk as it is handed out."""
        buffers, self._buffers = self._buffers, []
        buffers.reverse()
        while buffers:
            yield buffers.pop()
