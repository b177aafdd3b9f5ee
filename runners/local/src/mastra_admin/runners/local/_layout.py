"""Where a build's files live, and the small JSON records the runner keeps there.

::

    {builds}/{build_id}/
        .lock                  held (flock) while the build or its start runs
        artifact.json          written when the build succeeded: how to start it
        src/                   the project as the source copied it; node_modules and
                               .mastra/output appear here when it is built
        observability/
            meta.json          {"project_id", "deployment_id", "build_id"}
            spans/             MASTRA_CLOUD_TRACES_TARGET_DIR
            logs/              MASTRA_RUNNER_LOGS_TARGET_DIR
            runtime/           the servers' stdout/stderr, size-rotated
        servers/{server}.json  pid and start time of each server running this build

``observability/`` sits beside the project copy rather than inside ``.mastra/``,
which ``mastra build`` recreates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mastra_admin.core.build_steps import read_json, write_json_atomic

__all__ = ["BuildLayout", "BuildLock", "check_build_id", "read_json", "write_json_atomic"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_build_id(build_id: str) -> str:
    """A build id is a folder name: letters, digits, ``_``, ``-``, ``.``; no ``..``."""
    if not _SAFE_ID.match(build_id) or ".." in build_id:
        raise ValueError(f"build id {build_id!r} cannot name a folder")
    return build_id


@dataclass(frozen=True)
class BuildLayout:
    root: Path

    @classmethod
    def of(cls, builds_dir: Path, build_id: str) -> BuildLayout:
        return cls(builds_dir / check_build_id(build_id))

    @property
    def build_id(self) -> str:
        return self.root.name

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def artifact_file(self) -> Path:
        return self.root / "artifact.json"

    @property
    def observability(self) -> Path:
        return self.root / "observability"

    @property
    def meta_file(self) -> Path:
        return self.observability / "meta.json"

    @property
    def spans(self) -> Path:
        return self.observability / "spans"

    @property
    def logs(self) -> Path:
        return self.observability / "logs"

    @property
    def runtime(self) -> Path:
        return self.observability / "runtime"

    @property
    def servers(self) -> Path:
        return self.root / "servers"

    def server_file(self, server_id: str) -> Path:
        return self.servers / f"{check_build_id(server_id)}.json"

    def make_observability_dirs(self) -> None:
        for folder in (self.spans, self.logs, self.runtime):
            folder.mkdir(parents=True, exist_ok=True)

    def write_meta(self, *, project_id: str, deployment_id: str, build_id: str) -> None:
        write_json_atomic(
            self.meta_file,
            {"project_id": project_id, "deployment_id": deployment_id, "build_id": build_id},
        )

    def is_runner_made(self) -> bool:
        """Whether this folder looks like one the runner created (safe to prune)."""
        return self.lock_file.exists() or self.artifact_file.exists() or self.meta_file.exists()


class BuildLock:
    """A ``flock`` on the build's ``.lock``, held while a build or a start runs, so
    that a prune in this or any other process leaves the folder alone."""

    def __init__(self, layout: BuildLayout) -> None:
        self.layout = layout
        self._fd: int | None = None

    def acquire(self, *, shared: bool = False) -> bool:
        """Take the lock without waiting; ``False`` when someone else holds it.
        Starts share it (one artifact may start twice); builds and prunes do not."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.layout.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
