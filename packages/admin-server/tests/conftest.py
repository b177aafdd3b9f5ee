"""A real MastraAdmin (PostgreSQL storage, local files, AES-GCM) behind the real app.

The runner, router and source are the core's in-memory test doubles: these tests are
about HTTP; builds with the real local runner and router run in the top-level tests.
DNS is a real server on 127.0.0.1 (``dns``), so custom domain checks never leave the
machine; a test module overrides ``admin_router`` or ``admin_settings`` to change them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import uvicorn

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.email import ConsoleEmailProvider
from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.inputs import CreateDeployment, CreateProject, CreateTeam, InviteMember
from mastra_admin.core.licence import LicenceValidator, generate_keypair, issue_licence
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Deployment, DeploymentType, TeamRole, User
from mastra_admin.core.router import CertificateState, EdgeRouterProvider
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.dns import LocalDnsServer
from mastra_admin.core.testing.fakes import FakeRouter, FakeRunner, FakeSource
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings
from mastra_admin.server.app import create_app, create_collector_app
from mastra_admin.server.runtime import EmbeddedServer
from mastra_admin.server.settings import ServerSettings

EXPORTER_FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "mastra-exporter"
"""Requests recorded from Mastra's CloudExporter, one ``{signal}.request.json`` each."""


def team_licence() -> LicenceValidator:
    """A valid team-tier licence (custom roles need its ``advanced-rbac`` feature)."""
    private, public = generate_keypair()
    key = issue_licence(private, {"tier": "team", "organisation": "Tests"})
    return LicenceValidator(key, public)


class DomainRouter(LocalEdgeRouter):
    """The real local router with its custom-domain switch on, recording each
    ``set_domains`` call. The local router serves no custom domains itself (it proxies
    only ``{subdomain}.{base_domain}`` and holds no certificates for other names);
    the domain tests want the adapter the platform really runs, so only that switch
    and the recording are the tests' own. Certificates are reported ``pending``."""

    serves_custom_domains: ClassVar[bool] = True

    def __init__(self, storage: AdminStorage, base_domain: str) -> None:
        super().__init__(
            LocalRouterSettings(listen="never", port=0, base_domain=base_domain), storage.routes
        )
        self.domain_calls: list[tuple[str, list[str]]] = []

    async def set_domains(self, deployment_id: str, hostnames: Sequence[str]) -> None:
        self.domain_calls.append((deployment_id, list(hostnames)))

    async def certificate_state(self, hostname: str) -> CertificateState | None:
        return CertificateState(state="pending")


@pytest.fixture(scope="session")
def dns_server() -> Iterator[LocalDnsServer]:
    with LocalDnsServer() as server:
        yield server


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> Iterator[LocalDnsServer]:
    """The test DNS server, empty: every name is NXDOMAIN until a test sets records."""
    dns_server.clear()
    yield dns_server
    dns_server.clear()


@pytest.fixture
def admin_settings(tmp_path: Path, dns: LocalDnsServer) -> MastraAdminSettings:
    return MastraAdminSettings(
        data_dir=tmp_path,
        domains={"resolver": [dns.address], "resolver_timeout_s": 2.0},
    )


@pytest.fixture
def admin_router(fresh_storage: AdminStorage) -> EdgeRouterProvider:
    return FakeRouter(storage=fresh_storage)


@pytest.fixture
async def admin(
    fresh_storage: AdminStorage,
    tmp_path: Path,
    admin_settings: MastraAdminSettings,
    admin_router: EdgeRouterProvider,
) -> AsyncIterator[MastraAdmin]:
    source = FakeSource(["weather-agent", "support-bot"])
    admin = MastraAdmin(
        storage=fresh_storage,
        runner=FakeRunner(),
        router=admin_router,
        source=source,
        file_storage=LocalFileStorage(tmp_path / "files"),
        encryption=AesGcmEncryption.from_key_file(tmp_path / "keys.json"),
        email=ConsoleEmailProvider(),
        settings=admin_settings,
        collector_secret=b"s" * 32,
        licence=team_licence(),
    )
    await admin.init()
    try:
        yield admin
    finally:
        await admin.close()


@pytest.fixture
def server_settings() -> ServerSettings:
    return ServerSettings(ui=False, collector_max_bytes=64 * 1024, auth_failure_limit=5)


@pytest.fixture
async def client(
    admin: MastraAdmin, server_settings: ServerSettings
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(admin, settings=server_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
        yield http


@pytest.fixture
async def collector_client(
    admin: MastraAdmin, server_settings: ServerSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The collector's own app (``create_collector_app``), as deployed servers see it."""
    app = create_collector_app(admin, settings=server_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector.test") as http:
        yield http


def exporter_body(signal: str) -> dict[str, object]:
    """The body of the recorded CloudExporter batch of ``signal``."""
    request = json.loads((EXPORTER_FIXTURES / f"{signal}.request.json").read_text())
    body: dict[str, object] = request["body"]
    return body


@dataclass
class Person:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """A team with one person of each rank, and an outsider who owns another team."""

    platform: Person
    owner: Person
    admin: Person
    member: Person
    viewer: Person
    outsider: Person
    team_id: str
    other_team_id: str


async def _person(admin: MastraAdmin, email: str) -> Person:
    user, token = await admin.system_create_user(email, name=email.split("@")[0])
    return Person(user, token)


@pytest.fixture
async def world(admin: MastraAdmin) -> World:
    platform_user, platform_token = await admin.bootstrap_admin("root@example.com")
    owner = await _person(admin, "owner@example.com")
    people = {
        rank: await _person(admin, f"{rank}@example.com") for rank in ("admin", "member", "viewer")
    }
    outsider = await _person(admin, "outsider@example.com")
    team = await admin.create_team(owner.user.id, CreateTeam(name="Search"))
    other = await admin.create_team(outsider.user.id, CreateTeam(name="Elsewhere"))
    for rank, person in people.items():
        _invite, raw = await admin.invite_member(
            owner.user.id, team.id, InviteMember(email=person.user.email, role=TeamRole(rank))
        )
        await admin.accept_invite(person.user.id, raw)
    return World(
        platform=Person(platform_user, platform_token),
        owner=owner,
        admin=people["admin"],
        member=people["member"],
        viewer=people["viewer"],
        outsider=outsider,
        team_id=team.id,
        other_team_id=other.id,
    )


@pytest.fixture
async def deployment(admin: MastraAdmin, world: World) -> Deployment:
    """A production deployment of a project of the world's team (never built)."""
    owner = world.owner.user.id
    project = await admin.create_project(
        owner, world.team_id, CreateProject(name="Weather", source_id="weather-agent")
    )
    return await admin.create_deployment(
        owner, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def live_url(admin: MastraAdmin, server_settings: ServerSettings) -> AsyncIterator[str]:
    """The app served by uvicorn on a real socket (for SSE and streaming clients)."""
    port = free_port()
    app = create_app(admin, settings=server_settings)
    server = EmbeddedServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
