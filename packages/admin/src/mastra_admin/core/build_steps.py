"""What every runner does the same way around a project's build steps: which
package manager a project uses and the commands that install, build and start it,
secret masking for logs, and the HTTP health probe.

Runners (local processes, containers) share these so that a project builds and is
judged healthy the same way whatever runs it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import shlex
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK_FILES",
    "PACKAGE_MANAGERS",
    "START_COMMAND",
    "allowed_environment",
    "build_command",
    "describe",
    "detect_package_manager",
    "install_command",
    "install_with_dev",
    "mask_secrets",
    "probe",
    "read_json",
    "write_json_atomic",
]

PACKAGE_MANAGERS = ("npm", "pnpm", "yarn", "bun")

LOCK_FILES: tuple[tuple[str, str], ...] = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("bun.lockb", "bun"),
    ("bun.lock", "bun"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
)
"""Lock files and their package managers, in order of precedence when a folder holds
several."""

START_COMMAND: tuple[str, ...] = ("node", ".mastra/output/index.mjs")


def detect_package_manager(project_root: Path, declared: str | None = None) -> str:
    """The project's package manager: what the source found, else the
    ``packageManager`` field of ``package.json``, else the lock file, else npm."""
    if declared in PACKAGE_MANAGERS:
        return declared
    package_json = project_root / "package.json"
    try:
        field = json.loads(package_json.read_text(encoding="utf-8")).get("packageManager")
    except (OSError, ValueError, AttributeError):
        field = None
    if isinstance(field, str):
        name = field.split("@", 1)[0].strip()
        if name in PACKAGE_MANAGERS:
            return name
    for lock_file, manager in LOCK_FILES:
        if (project_root / lock_file).is_file():
            return manager
    return "npm"


def _has_lock(project_root: Path, manager: str) -> bool:
    return any(m == manager and (project_root / f).is_file() for f, m in LOCK_FILES)


def install_command(project_root: Path, manager: str) -> list[str]:
    """A reproducible install when there is a lock file, a plain one otherwise."""
    locked = _has_lock(project_root, manager)
    if manager == "npm":
        return ["npm", "ci" if locked else "install", "--no-audit", "--no-fund"]
    if manager == "pnpm":
        return ["pnpm", "install", "--frozen-lockfile"] if locked else ["pnpm", "install"]
    if manager == "yarn":
        return ["yarn", "install", "--frozen-lockfile"] if locked else ["yarn", "install"]
    if manager == "bun":
        return ["bun", "install", "--frozen-lockfile"] if locked else ["bun", "install"]
    raise ValueError(f"unknown package manager {manager!r}")


def build_command(manager: str) -> list[str]:
    """``mastra build`` through the package manager, never fetching the CLI."""
    if manager == "npm":
        return ["npm", "exec", "--no", "--", "mastra", "build"]
    if manager == "pnpm":
        return ["pnpm", "exec", "mastra", "build"]
    if manager == "yarn":
        return ["yarn", "run", "mastra", "build"]
    if manager == "bun":
        return ["bun", "run", "mastra", "build"]
    raise ValueError(f"unknown package manager {manager!r}")


def describe(argv: Sequence[str]) -> str:
    """The command as a person would type it (for logs and messages)."""
    return shlex.join(argv)


def install_with_dev(argv: list[str]) -> list[str]:
    """Install devDependencies too, even when the project sets ``NODE_ENV=production``:
    the ``mastra`` CLI is usually one, and the build needs it."""
    tool = argv[0]
    if tool == "npm":
        return [*argv, "--include=dev"]
    if tool in ("pnpm", "yarn"):
        return [*argv, "--production=false"]
    return argv


def allowed_environment(patterns: Sequence[str]) -> dict[str, str]:
    """The platform's own variables that match one of ``patterns`` (a trailing ``*``
    matches a prefix): what a runner passes on to build steps, and nothing else."""
    return {
        key: value
        for key, value in os.environ.items()
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)
    }


def write_json_atomic(path: Path, value: Any) -> None:
    """Write a small JSON record so that a reader sees the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object written by ``write_json_atomic``; ``None`` if missing or not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def mask_secrets(secrets: Sequence[str]) -> Callable[[str], str]:
    """A function that replaces every secret value in a line with ``***`` (longest
    first, so that a secret containing another is masked whole)."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return str

    def mask(line: str) -> str:
        for value in values:
            if value in line:
                line = line.replace(value, "***")
        return line

    return mask


# The health probe: one HTTP/1.1 GET on a fresh connection, the status code read back.
# A few lines over a non-blocking socket rather than an HTTP client: a runner probes
# every server it supervises, and this costs one socket, no pool and no transport
# objects (about a third less CPU than asyncio streams).
_MAX_STATUS_LINE = 4096


async def probe(host: str, port: int, path: str, *, timeout_s: float) -> int | None:
    """The HTTP status of ``GET path``, or ``None`` when the server does not answer."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    target = path if path.startswith("/") else "/" + path
    host_header = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    try:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n"
            "User-Agent: mastra-admin-runner\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
    except UnicodeEncodeError:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    data = b""
    try:
        async with asyncio.timeout(timeout_s):
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, request)
            while b"\r\n" not in data and len(data) < _MAX_STATUS_LINE:
                chunk = await loop.sock_recv(sock, 1024)
                if not chunk:
                    break
                data += chunk
    except (OSError, TimeoutError):
        return None
    finally:
        sock.close()
    parts = data.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])
