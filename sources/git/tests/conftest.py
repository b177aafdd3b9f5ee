"""Fixtures for the git source's tests: a real smart-HTTP git server, a cache, settings
that let the cache reach the loopback server, a spy on every git process started, and
the provider over an in-memory storage with real encryption."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.models import Project, Team
from mastra_admin.core.source import SourceConnection
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.sources.git import GitCache, GitProjectSource, GitSourceSettings, RepositoryUrl
from mastra_admin.sources.git import check_repository_url as _check
from mastra_admin.sources.git.testing import GitHttpServer

PUBLIC = "93.184.216.34"
"""A public address the fake resolver hands out; nothing ever connects to it."""

FAKE_DNS: dict[str, list[str]] = {
    "github.com": [PUBLIC],
    "gitlab.example": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"],
    "internal.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": [PUBLIC, "10.0.0.5"],
    "v6loop.test": ["::1"],
    "mapped.test": ["::ffff:192.168.0.1"],
}


def fake_resolve(host: str) -> list[str]:
    """A resolver for tests: no real DNS, unknown names do not resolve."""
    try:
        return FAKE_DNS[host]
    except KeyError:
        raise OSError(f"{host} does not resolve") from None


@pytest.fixture
def settings(tmp_path: Path) -> GitSourceSettings:
    """Settings that reach the loopback test server (plain http on 127.0.0.1)."""
    return GitSourceSettings(
        cache_dir=tmp_path / "cache",
        allow_insecure_http_hosts=["127.0.0.1"],
        allow_private_addresses=True,
        fetch_timeout_s=60,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "served") as running:
        yield running


@pytest.fixture
def cache(settings: GitSourceSettings, tmp_path: Path) -> GitCache:
    return GitCache(settings.resolved_cache_dir(tmp_path), settings, resolve=fake_resolve)


@pytest.fixture
def new_key() -> Callable[[], str]:
    """Distinct cache keys: ``new_key()``."""
    counter = itertools.count(1)
    return lambda: f"{next(counter):016x}"


@pytest.fixture
def checked(settings: GitSourceSettings) -> Callable[[str], RepositoryUrl]:
    """``check_repository_url`` with the test settings and the fake resolver."""
    return lambda url: _check(url, settings, resolve=fake_resolve)


@dataclass
class Spawned:
    argv: list[str]
    env: dict[str, str]
    pid: int
    cmdline: bytes
    """``/proc/<pid>/cmdline`` read right after the process started."""


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[Spawned]:
    """Every process the git layer starts, with its argv, environment and cmdline."""
    seen: list[Spawned] = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv: Any, **options: Any) -> asyncio.subprocess.Process:
        process = await real(*argv, **options)
        try:
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        env = dict(options.get("env") or {})
        seen.append(Spawned([str(a) for a in argv], env, process.pid, cmdline))
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    return seen


def processes_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


@pytest.fixture
def group_members() -> Callable[[int], list[int]]:
    return processes_in_group


# -- the git project source ----------------------------------------------------------


@pytest.fixture
def encryption() -> AesGcmEncryption:
    """The platform's AES-GCM encryption with a fresh real key."""
    return AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k1")


@pytest.fixture
async def storage() -> AsyncIterator[InMemoryAdminStorage]:
    made = InMemoryAdminStorage()
    await made.init()
    yield made
    await made.close()


@pytest.fixture
async def team(storage: InMemoryAdminStorage) -> Team:
    return await storage.teams.create(Team(name="Acme", slug="acme"))


@pytest.fixture
async def git_source(
    settings: GitSourceSettings,
    storage: InMemoryAdminStorage,
    encryption: AesGcmEncryption,
    tmp_path: Path,
) -> AsyncIterator[GitProjectSource]:
    """The provider over the test storage, reaching the loopback server; public host
    names go to the fake resolver. Closed afterwards: spares being prepared stop."""
    source = GitProjectSource(
        settings,
        storage=storage,
        encryption=encryption,
        cache_dir=settings.resolved_cache_dir(tmp_path),
        resolve=fake_resolve,
    )
    yield source
    await source.close()


def stored_config(connection: SourceConnection) -> dict[str, Any]:
    """What the core keeps as ``source_config`` of a connected project."""
    source = connection.source
    return {
        **connection.config,
        "source_id": source.id,
        "path": source.path,
        "name": source.name,
        "package_manager": source.package_manager,
    }


async def register(
    storage: InMemoryAdminStorage,
    team_id: str,
    connection: SourceConnection,
    *,
    name: str | None = None,
    default_branch: str = "main",
) -> Project:
    """Store a project made from ``connection`` as the core does on create."""
    label = name or connection.source.name
    slug = f"{label}-{secrets.token_hex(3)}".lower()
    return await storage.projects.create(
        Project(
            team_id=team_id,
            name=label,
            slug=slug,
            source_type="git",
            source_config=stored_config(connection),
            default_branch=default_branch,
        )
    )
