"""What the Docker runner keeps on the platform's disk, per build, and the tar streams
it moves through the engine.

::

    {state}/{build_id}/
        artifact.json        written when the build's image exists
        src/                 the project as the source copied it (removed once the
                             build container has it)
        observability/
            meta.json        {"project_id", "deployment_id", "build_id"}
            spans/           mounted at /observability/spans in its servers
            logs/            mounted at /observability/logs
            runtime/         the servers' output, from the engine's log stream
        servers/{id}.json    the container and the last log time of each server
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mastra_admin.core.build_steps import read_json, write_json_atomic

__all__ = [
    "BuildFolder",
    "RuntimeLog",
    "check_id",
    "read_json",
    "tar_dirs",
    "tar_file",
    "tar_folder",
    "write_json_atomic",
]

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CHUNK = 1 << 16


def check_id(value: str) -> str:
    """An id that names a folder, a container and an image tag: letters, digits, ``_``,
    ``-``, ``.``; no ``..``."""
    if not _SAFE_ID.match(value) or ".." in value:
        raise ValueError(f"{value!r} cannot name a folder or a container")
    return value


@dataclass(frozen=True)
class BuildFolder:
    root: Path

    @classmethod
    def of(cls, state_dir: Path, build_id: str) -> BuildFolder:
        return cls(state_dir / check_id(build_id))

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def artifact_file(self) -> Path:
        return self.root / "artifact.json"

    @property
    def observability(self) -> Path:
        return self.root / "observability"

    @property
    def spans(self) -> Path:
        return self.observability / "spans"

    @property
    def logs(self) -> Path:
        return self.observability / "logs"

    @property
    def runtime(self) -> Path:
        return self.observability / "runtime"

    def server_file(self, server_id: str) -> Path:
        return self.root / "servers" / f"{check_id(server_id)}.json"

    def prepare(self, *, project_id: str, deployment_id: str, build_id: str, uid: int) -> None:
        """Empty the folder but for what a server of it keeps, make the observability
        dirs, and give the two a server writes to its container's uid."""
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.src)
        self.artifact_file.unlink(missing_ok=True)
        for folder in (self.spans, self.logs, self.runtime):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (self.spans, self.logs):
            if os.geteuid() == 0:
                os.chown(folder, uid, uid)
                os.chmod(folder, 0o750)
            else:  # a rootless platform cannot give them away: the container's uid differs
                os.chmod(folder, 0o777)
        write_json_atomic(
            self.observability / "meta.json",
            {"project_id": project_id, "deployment_id": deployment_id, "build_id": build_id},
        )


def _owned_by(uid: int) -> Callable[[tarfile.TarInfo], tarfile.TarInfo | None]:
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if not (info.isfile() or info.isdir() or info.issym()):
            return None  # no devices, fifos or hard links into a container
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        info.mode &= 0o777  # no setuid, setgid or sticky bits
        return info

    return owned


async def tar_folder(folder: Path, arcname: str, *, uid: int) -> AsyncIterator[bytes]:
    """A tar of ``folder`` named ``arcname``, every entry owned by ``uid``; symbolic
    links stay links (never followed on this machine), devices are left out."""
    with tempfile.TemporaryFile() as spool:

        def write() -> None:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(folder, arcname=arcname, recursive=True, filter=_owned_by(uid))
            spool.seek(0)

        await asyncio.to_thread(write)
        while chunk := await asyncio.to_thread(spool.read, _CHUNK):
            yield chunk


async def tar_dirs(*names: str, uid: int = 0) -> AsyncIterator[bytes]:
    """A tar holding only empty directories (``a/``, ``a/b/``)."""
    spool = io.BytesIO()
    with tarfile.open(fileobj=spool, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = uid
            info.mtime = int(time.time())
            tar.addfile(info)
    yield spool.getvalue()


async def tar_file(name: str, content: bytes, *, uid: int) -> AsyncIterator[bytes]:
    """A tar holding one file ``name`` owned by ``uid``."""
    spool = io.BytesIO()
    with tarfile.open(fileobj=spool, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.uid = info.gid = uid
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(content))
    yield spool.getvalue()


class RuntimeLog:
    """A server's output as the local runner's relay writes it:
    ``{dir}/{stream}-{unix_ms}-{pid}.log``, whole lines, size-rotated, the oldest
    beyond ``keep`` per stream deleted."""

    def __init__(self, directory: Path, *, max_bytes: int, keep: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.keep = keep
        self._files: dict[str, tuple[Any, int]] = {}
        self._written: dict[str, list[Path]] = {}
        self._stamp = 0

    def write(self, stream: str, line: str) -> None:
        data = (line + "\n").encode("utf-8", "replace")
        handle, size = self._files.get(stream, (None, 0))
        if handle is None or size + len(data) > self.max_bytes:
            if handle is not None:
                handle.close()
            handle, size = self._open(stream), 0
        handle.write(data)
        handle.flush()
        self._files[stream] = (handle, size + len(data))

    def _open(self, stream: str) -> Any:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = max(int(time.time() * 1000), self._stamp + 1)
        while True:
            path = self.directory / f"{stream}-{stamp}-{os.getpid()}.log"
            try:
                handle = path.open("xb")
                break
            except FileExistsError:
                stamp += 1
        self._stamp = stamp
        mine = self._written.setdefault(stream, [])
        mine.append(path)
        while len(mine) > self.keep:
            mine.pop(0).unlink(missing_ok=True)
        return handle

    def close(self) -> None:
        for handle, _ in self._files.values():
            handle.close()
        self._files.clear()
