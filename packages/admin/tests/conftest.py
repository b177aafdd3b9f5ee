"""Fixtures shared by the core's tests."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.email import ConsoleEmailProvider
from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.inputs import (
    CreateDeployment,
    CreateProject,
    CreateTeam,
    CreateUser,
    InviteMember,
)
from mastra_admin.core.licence import LicenceValidator, generate_keypair, issue_licence
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import (
    Build,
    Deployment,
    DeploymentStatus,
    DeploymentType,
    Project,
    Team,
    TeamRole,
    User,
)
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.dns import LocalDnsServer
from mastra_admin.core.testing.fakes import FakeRouter, FakeRunner, FakeSource
from mastra_admin.core.testing.memory import InMemoryAdminStorage

# Variables that would leak the developer's own configuration into settings tests.
_SETTINGS_ALIASES = (
    "ADMIN_PORT",
    "DATABASE_URL",
    "CLICKHOUSE_URL",
    "PROJECTS_DIR",
    "FILE_STORAGE_PATH",
    "PROXY_PORT",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``MASTRA_ADMIN_*`` settings (test-server variables stay), no alias
    variables, and a fresh working directory (so no ``./mastra-admin.toml``)."""
    for name in list(os.environ):
        if (name.startswith("MASTRA_ADMIN_") and not name.startswith("MASTRA_ADMIN_TEST_")) or (
            name in _SETTINGS_ALIASES
        ):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


PluginDistFactory = Callable[[str, Mapping[str, str]], list[str]]


@pytest.fixture
def plugin_dists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PluginDistFactory]:
    """Make installed distributions on the fly: ``make("acme-plugins", {"acme":
    "<module source>"})`` writes a module and a ``.dist-info`` with an entry point
    ``acme`` in group ``mastra_admin`` into a folder on ``sys.path``, and returns
    the entry-point names. The module names are unique to the test."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(dist: str, plugins: Mapping[str, str]) -> list[str]:
        lines = ["[mastra_admin]"]
        for entry_name, source in plugins.items():
            module = f"test_plugin_{entry_name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
            lines.append(f"{entry_name} = {module}")
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        return list(plugins)

    yield make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture(scope="session")
def dns_server() -> Iterator[LocalDnsServer]:
    """A real DNS server on 127.0.0.1 for the whole session (see ``dns``)."""
    with LocalDnsServer() as server:
        yield server


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> Iterator[LocalDnsServer]:
    """The test DNS server, empty: every name is NXDOMAIN until the test sets records."""
    dns_server.clear()
    yield dns_server
    dns_server.clear()


# --- MastraAdmin worlds for the business-operation tests ------------------------------


@dataclass
class World:
    """A running ``MastraAdmin`` with a platform administrator, a team with one
    person of each rank, an outsider, a project and its production deployment."""

    admin: MastraAdmin
    storage: AdminStorage
    runner: FakeRunner
    router: FakeRouter
    source: FakeSource
    email: ConsoleEmailProvider
    root: User
    owner: User
    team_admin: User
    member: User
    viewer: User
    outsider: User
    team: Team
    project: Project
    deployment: Deployment
    journal: list[tuple[str, ...]] = field(default_factory=list)
    hooks: HookRecorder = field(default_factory=lambda: HookRecorder())

    def by_role(self, role: str) -> User:
        return {
            "platform_admin": self.root,
            "owner": self.owner,
            "admin": self.team_admin,
            "member": self.member,
            "viewer": self.viewer,
            "outsider": self.outsider,
        }[role]


class HookRecorder:
    """A plugin that records the core's event hooks in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    @hookimpl
    def mastra_admin_deployment_status_changed(
        self, deployment: Deployment, previous: DeploymentStatus
    ) -> None:
        self.events.append(("status", deployment.id, previous.value, deployment.status.value))

    @hookimpl
    def mastra_admin_build_finished(self, build: Build) -> None:
        self.events.append(("finished", build.id, build.status.value))


@pytest.fixture(scope="session")
def licence_keypair() -> tuple[str, str]:
    """(private, public) Ed25519 keys, as a vendor would hold and publish them."""
    return generate_keypair()


@pytest.fixture
def enterprise_licence(licence_keypair: tuple[str, str]) -> LicenceValidator:
    private, public = licence_keypair
    key = issue_licence(private, {"tier": "enterprise", "organisation": "Acme"})
    return LicenceValidator(key, public)


AdminFactory = Callable[..., Awaitable[MastraAdmin]]
StorageFactory = Callable[[], Awaitable[AdminStorage]]

STORAGE_ENV = "MASTRA_ADMIN_TEST_STORAGE"
"""``memory`` (default) or ``pg``: the storage the business-operation tests run on.
With ``pg`` (needs ``mastra-admin-pg``) every admin gets a new database on the pg
plugin's test server, so the same rules are proven on real PostgreSQL."""


@pytest.fixture
async def make_storage(request: pytest.FixtureRequest) -> AsyncIterator[StorageFactory]:
    """Make an empty, uninitialised admin storage of the kind ``STORAGE_ENV`` names."""
    kind = os.environ.get(STORAGE_ENV, "memory")
    if kind == "memory":

        async def make_memory() -> AdminStorage:
            return InMemoryAdminStorage()

        yield make_memory
        return
    if kind != "pg":
        raise pytest.UsageError(f"{STORAGE_ENV} must be 'memory' or 'pg', not {kind!r}")
    from mastra_admin.stores.pg import PgAdminStorage
    from mastra_admin.stores.pg import testing as pg_testing

    servers = request.getfixturevalue("_pg_servers")
    # The server named by MASTRA_ADMIN_TEST_DATABASE_URL when set, else the embedded one.
    server_url: str = servers.url("external" if os.environ.get(pg_testing.ENV_VAR) else "embedded")
    databases: list[str] = []

    async def make_pg() -> AdminStorage:
        template = await servers.migrated_template(server_url)
        url = pg_testing.create_database(
            server_url, template=template, file_copy=servers.is_embedded(server_url)
        )
        databases.append(url)
        return PgAdminStorage(url)

    yield make_pg
    for url in databases:
        pg_testing.drop_database(url, server_url=server_url)


@pytest.fixture
async def make_admin(tmp_path: Path, make_storage: StorageFactory) -> AsyncIterator[AdminFactory]:
    """Build and ``init()`` a ``MastraAdmin`` on in-memory storage (see
    ``STORAGE_ENV``) and fakes; keyword arguments replace providers. Every admin is
    closed afterwards."""
    made: list[MastraAdmin] = []

    async def make(**overrides: Any) -> MastraAdmin:
        storage = overrides.pop("storage", None) or await make_storage()
        journal: list[tuple[str, ...]] = []
        providers: dict[str, Any] = {
            "storage": storage,
            "runner": FakeRunner(journal=journal),
            "router": FakeRouter(storage=storage, journal=journal),
            "source": FakeSource(["weather-agent", "support-bot"]),
            "file_storage": LocalFileStorage(tmp_path / f"files-{len(made)}"),
            "encryption": AesGcmEncryption.from_key_file(tmp_path / f"keys-{len(made)}.json"),
            "email": ConsoleEmailProvider(),
            "collector_secret": b"collector-secret-for-tests",
        }
        providers.update(overrides)
        admin = MastraAdmin(**providers)
        await admin.init()
        made.append(admin)
        return admin

    yield make
    for admin in made:
        await admin.close()


@pytest.fixture
async def world(make_admin: AdminFactory, enterprise_licence: LicenceValidator) -> World:
    hooks = HookRecorder()
    plugins = PluginManager(builtins=False)
    plugins.register(hooks, "hook-recorder")
    admin = await make_admin(licence=enterprise_licence, plugins=plugins)
    root, _ = await admin.bootstrap_admin("root@example.com", name="Root")
    people = {}
    for name in ("owner", "admin", "member", "viewer", "outsider"):
        people[name] = await admin.create_user(
            root.id, CreateUser(email=f"{name}@example.com", name=name.title())
        )
    team = await admin.create_team(people["owner"].id, CreateTeam(name="Search"))
    for name, role in (
        ("admin", TeamRole.ADMIN),
        ("member", TeamRole.MEMBER),
        ("viewer", TeamRole.VIEWER),
    ):
        _, token = await admin.invite_member(
            people["owner"].id, team.id, InviteMember(email=f"{name}@example.com", role=role)
        )
        await admin.accept_invite(people[name].id, token)
    project = await admin.create_project(
        people["owner"].id, team.id, CreateProject(name="Weather agent", source_id="weather-agent")
    )
    deployment = await admin.create_deployment(
        people["owner"].id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    assert isinstance(admin.runner, FakeRunner)
    assert isinstance(admin.router, FakeRouter)
    assert isinstance(admin.source, FakeSource)
    assert isinstance(admin.email, ConsoleEmailProvider)
    return World(
        admin=admin,
        storage=admin.storage,
        runner=admin.runner,
        router=admin.router,
        source=admin.source,
        email=admin.email,
        root=root,
        owner=people["owner"],
        team_admin=people["admin"],
        member=people["member"],
        viewer=people["viewer"],
        outsider=people["outsider"],
        team=team,
        project=project,
        deployment=deployment,
        journal=admin.runner.journal,
        hooks=hooks,
    )
