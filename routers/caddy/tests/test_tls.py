"""HTTPS through Caddy with the internal CA: HTTP/2, redirects, compression, and
certificates issued on demand only for hosts the platform serves."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from mastra_admin.core.errors import Conflict, InvalidInput
from mastra_admin.core.models import Domain, DomainStatus, Route
from mastra_admin.core.storage import AdminStorage
from mastra_admin.routers.caddy import CaddyEdgeRouter

from .conftest import (
    AppFactory,
    RouterFactory,
    host_of,
    https_client,
    https_get,
    named_app,
)

RouteTo = Callable[..., Awaitable[Route]]
TEXT = "sunny, 21 degrees. " * 200


def text_app() -> web.Application:
    async def text(request: web.Request) -> web.Response:
        return web.Response(text=TEXT, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{tail:.*}", text)
    return app


@pytest.fixture
async def tls_router(make_router: RouterFactory) -> CaddyEdgeRouter:
    return await make_router(tls="internal")


async def test_https_with_http2_verified_against_the_internal_ca(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    route = await route_to(tls_router, *await serve_app(named_app("a")))
    host = host_of(tls_router, route)

    async with https_client(tls_router) as client:
        response = await https_get(client, tls_router, host, "/api/agents")

    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert response.text == "a"
    assert route.public_url == f"https://{host}:{tls_router.https_port}"
    assert route.tls_enabled
    state = await tls_router.certificate_state(host)
    assert state is not None
    assert state.state == "issued"
    assert state.not_after is not None


async def test_plain_http_redirects_to_https(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    route = await route_to(tls_router, *await serve_app(named_app("a")))
    host = host_of(tls_router, route)

    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://127.0.0.1:{tls_router.http_port}/api/agents?x=1",
            headers={"Host": host},
        )

    assert response.status_code == 308
    assert response.headers["location"] == f"https://{host}:{tls_router.https_port}/api/agents?x=1"


async def test_answers_are_compressed_when_asked(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    route = await route_to(tls_router, *await serve_app(text_app()))
    host = host_of(tls_router, route)

    async with https_client(tls_router) as client:
        zipped = await client.send(
            client.build_request(
                "GET",
                f"https://127.0.0.1:{tls_router.https_port}/",
                headers={"Host": host, "Accept-Encoding": "gzip"},
                extensions={"sni_hostname": host},
            ),
            stream=True,
        )
        raw = b"".join([chunk async for chunk in zipped.aiter_raw()])
        plain = await https_get(client, tls_router, host, headers={"Accept-Encoding": "identity"})

    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw).decode() == TEXT
    assert len(raw) < len(TEXT) / 10
    assert "content-encoding" not in plain.headers
    assert plain.text == TEXT


async def test_no_certificate_for_a_host_the_platform_does_not_serve(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    await route_to(tls_router, *await serve_app(named_app("a")))
    stranger = f"evil.{tls_router.base_domain}"

    async with https_client(tls_router) as client:
        with pytest.raises(httpx.ConnectError):
            await https_get(client, tls_router, stranger)

    assert not list((tls_router.storage_root / "certificates").glob(f"*/{stranger}"))
    state = await tls_router.certificate_state(stranger)
    assert state is not None
    assert state.state == "none"


async def test_a_verified_custom_domain_is_served_with_its_own_certificate(
    tls_router: CaddyEdgeRouter,
    serve_app: AppFactory,
    route_to: RouteTo,
    storage: AdminStorage,
) -> None:
    route = await route_to(tls_router, *await serve_app(named_app("shop")))
    domains = getattr(storage, "domains", None)
    if domains is not None:  # the storage is the source of truth where it has domains
        await domains.create(
            Domain(
                team_id="t",
                project_id=route.project_id,
                deployment_id=route.deployment_id,
                hostname="shop.acme-corp.com",
                verification_token="token",
                status=DomainStatus.VERIFIED,
            )
        )

    await tls_router.set_domains(route.deployment_id, ["Shop.Acme-Corp.com."])

    async with https_client(tls_router) as client:
        custom = await https_get(client, tls_router, "shop.acme-corp.com", "/")
    assert custom.status_code == 200
    assert custom.text == "shop"
    assert custom.http_version == "HTTP/2"
    state = await tls_router.certificate_state("shop.acme-corp.com")
    assert state is not None
    assert state.state == "issued"

    if domains is not None:
        for domain in await domains.list_for_deployment(route.deployment_id):
            await domains.delete(domain.id)
    await tls_router.set_domains(route.deployment_id, [])
    async with https_client(tls_router) as client:
        gone = await https_get(client, tls_router, "shop.acme-corp.com", "/")
    assert gone.status_code == 404  # the certificate stays; the route is gone


async def test_custom_domains_are_checked(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    upstream = await serve_app(named_app("a"))
    one = await route_to(tls_router, *upstream)
    two = await route_to(tls_router, *upstream)

    for hostile in ["localhost", f"x.{tls_router.base_domain}", "10.0.0.1", "a b.com", "*.x.com"]:
        with pytest.raises(InvalidInput):
            await tls_router.set_domains(one.deployment_id, [hostile])
    await tls_router.set_domains(one.deployment_id, ["shop.acme-corp.com"])
    with pytest.raises(Conflict):
        await tls_router.set_domains(two.deployment_id, ["shop.acme-corp.com"])


async def test_the_permission_endpoint_refuses_hostile_names(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    route = await route_to(tls_router, *await serve_app(named_app("a")))
    host = host_of(tls_router, route)
    permission = tls_router._permission
    assert permission is not None
    assert permission.url is not None

    async def ask(url: str, *domains: str) -> int:
        async with httpx.AsyncClient() as client:
            params = [("domain", d) for d in domains]
            return (await client.get(url, params=params)).status_code

    assert await ask(permission.url, host) == 200
    for hostile in [
        host.upper(),
        host + ".",
        " " + host,
        "127.0.0.1",
        "[::1]",
        "1.2.3.4.5",
        "a." * 130 + "com",
        "nothing-here." + tls_router.base_domain,
        host + "/../x",
        "",
    ]:
        assert 400 <= await ask(permission.url, hostile) < 500, hostile
    assert await ask(permission.url, host, host) == 400
    assert await ask(permission.url.replace("/ask", "x/ask"), host) == 404


async def test_a_stopped_route_answers_503_over_https(
    tls_router: CaddyEdgeRouter, serve_app: AppFactory, route_to: RouteTo
) -> None:
    from mastra_admin.core.models import RouteStatus

    route = await route_to(tls_router, *await serve_app(named_app("a")))
    await tls_router.set_route_status(route.id, RouteStatus.STOPPED)

    async with https_client(tls_router) as client:
        page = await https_get(
            client, tls_router, host_of(tls_router, route), headers={"Accept": "text/html"}
        )

    assert page.status_code == 503
    assert "text/html" in page.headers["content-type"]
    assert host_of(tls_router, route) in page.text
    assert "{" not in page.text.split("<style>")[0]


async def test_files_mode_serves_the_supplied_certificate(
    make_router: RouterFactory, serve_app: AppFactory, route_to: RouteTo, tmp_path: Path
) -> None:
    cert_file, key_file, ca = _wildcard_certificate(tmp_path, "files.test")
    router = await make_router(
        tls="files", base_domain="files.test", tls_cert_file=cert_file, tls_key_file=key_file
    )
    route = await route_to(router, *await serve_app(named_app("a")))
    host = host_of(router, route)

    context = ssl.create_default_context(cadata=ca)
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        response = await https_get(client, router, host)

    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    state = await router.certificate_state(host)
    assert state is not None
    assert state.state == "issued"
    assert await router.certificate_state("elsewhere.example.org") is None


def _wildcard_certificate(folder: Path, domain: str) -> tuple[Path, Path, str]:
    """A CA and a ``*.*.{domain}`` certificate it signed (PEM files), and the CA's PEM."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(f"*.team1.{domain}"), x509.DNSName(f"*.{domain}")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = folder / "edge.crt", folder / "edge.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM).decode()
