"""HTTPS with the local certificate authority: one trusted CA, a certificate per host."""

from __future__ import annotations

import asyncio
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web
from cryptography import x509

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.router import RouteConfig
from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings
from mastra_admin.routers.local._tls import LocalCertificateAuthority

from .conftest import AppFactory


@pytest_asyncio.fixture
async def tls_router(storage: AdminStorage, tmp_path: Path) -> AsyncIterator[LocalEdgeRouter]:
    router = LocalEdgeRouter(
        LocalRouterSettings(
            port=0, tls=True, tls_dir=tmp_path / "tls", health_interval_s=0, sync_interval_s=0
        ),
        storage.routes,
    )
    await router.start()
    yield router
    await router.close()


async def routed(router: LocalEdgeRouter, storage: AdminStorage, serve_app: AppFactory) -> str:
    from mastra_admin.core.models import Deployment, DeploymentType, Project, Team

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"proto": request.headers.get("X-Forwarded-Proto")})

    app = web.Application()
    app.router.add_get("/", hello)
    host, port = await serve_app(app)
    team = await storage.teams.create(Team(name="Search", slug="search"))
    project = await storage.projects.create(
        Project(team_id=team.id, name="Shop", slug="shop", source_type="local")
    )
    deployment = await storage.deployments.create(
        Deployment(
            project_id=project.id, type=DeploymentType.PRODUCTION, branch="main", slug="main"
        )
    )
    route = await router.register_route(
        RouteConfig(
            deployment_id=deployment.id,
            project_id=project.id,
            subdomain="shop-main.search",
            target_host=host,
            target_port=port,
        )
    )
    assert route.public_url.startswith("https://")
    assert route.tls_enabled
    return f"{route.subdomain}.{router.base_domain}"


async def test_https_with_a_certificate_for_each_host(
    tls_router: LocalEdgeRouter, storage: AdminStorage, serve_app: AppFactory, tmp_path: Path
) -> None:
    host = await routed(tls_router, storage, serve_app)
    assert tls_router.ca_file is not None
    trust = ssl.create_default_context(cafile=str(tls_router.ca_file))

    async with (
        ClientSession() as session,
        session.get(
            f"https://127.0.0.1:{tls_router.port}/",
            headers={"Host": host},
            ssl=trust,
            server_hostname=host,
        ) as response,
    ):
        assert response.status == 200
        assert await response.json() == {"proto": "https"}

    _, writer = await asyncio.open_connection(
        "127.0.0.1", tls_router.port, ssl=trust, server_hostname=host
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()

    names = (
        x509.load_der_x509_certificate(der)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert names == [host]
    key = tmp_path / "tls" / "ca-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_a_client_not_trusting_the_ca_is_refused(
    tls_router: LocalEdgeRouter, storage: AdminStorage, serve_app: AppFactory
) -> None:
    host = await routed(tls_router, storage, serve_app)
    async with ClientSession() as session:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await session.get(
                f"https://127.0.0.1:{tls_router.port}/",
                headers={"Host": host},
                ssl=ssl.create_default_context(),
                server_hostname=host,
            )


def test_the_ca_is_kept_across_restarts(tmp_path: Path) -> None:
    first = LocalCertificateAuthority(tmp_path, "localhost")
    first.load_or_create()
    second = LocalCertificateAuthority(tmp_path, "localhost")
    second.load_or_create()
    assert first.ca_file.read_bytes() == second.ca_file.read_bytes()


async def test_a_given_certificate_is_used_as_is(
    storage: AdminStorage, serve_app: AppFactory, tmp_path: Path
) -> None:
    ca = LocalCertificateAuthority(tmp_path / "elsewhere", "dev.test")
    ca.load_or_create()
    chain = ca._issue(["shop-main.search.dev.test"])
    router = LocalEdgeRouter(
        LocalRouterSettings(
            port=0,
            tls=True,
            tls_cert_file=chain,
            base_domain="dev.test",
            health_interval_s=0,
            sync_interval_s=0,
        ),
        storage.routes,
    )
    await router.start()
    try:
        host = await routed(router, storage, serve_app)
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        async with (
            ClientSession() as session,
            session.get(
                f"https://127.0.0.1:{router.port}/",
                headers={"Host": host},
                ssl=trust,
                server_hostname=host,
            ) as response,
        ):
            assert response.status == 200
        assert router.ca_file is None
    finally:
        await router.close()


async def test_an_unreadable_certificate_is_unavailable(
    storage: AdminStorage, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    router = LocalEdgeRouter(
        LocalRouterSettings(port=0, tls=True, tls_cert_file=broken), storage.routes
    )
    with pytest.raises(Unavailable, match="TLS"):
        await router.start()
    assert not router.serving
    await router.close()
