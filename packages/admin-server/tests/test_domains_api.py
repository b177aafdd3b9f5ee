"""The custom domains API: add, list, verify against real DNS, remove; who may do it;
every refusal in the API's error format.

DNS is the conftest's real server on 127.0.0.1. The router is the real local router
with its custom-domain switch on, recording what it is told (``conftest.DomainRouter``
says why).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.hostnames import HOSTNAME_REASONS
from mastra_admin.core.inputs import CreateDeployment, CreateProject
from mastra_admin.core.models import Deployment, DeploymentType
from mastra_admin.core.router import EdgeRouterProvider
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.dns import LocalDnsServer, silent_nameserver
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings

from .conftest import DomainRouter, World

BASE_DOMAIN = "apps.mastra-platform.net"
EDGE = "edge.mastra-platform.net"


@pytest.fixture
def admin_router(fresh_storage: AdminStorage) -> EdgeRouterProvider:
    return DomainRouter(fresh_storage, BASE_DOMAIN)


@pytest.fixture
def admin_settings(tmp_path: Any, dns: LocalDnsServer) -> MastraAdminSettings:
    return MastraAdminSettings(
        data_dir=tmp_path,
        base_domain=BASE_DOMAIN,
        domains={"resolver": [dns.address], "resolver_timeout_s": 1.0, "edge_cname": EDGE},
    )


def _router(admin: MastraAdmin) -> DomainRouter:
    assert isinstance(admin.router, DomainRouter)
    return admin.router


async def _add(
    client: httpx.AsyncClient, world: World, deployment: Deployment, hostname: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/deployments/{deployment.id}/domains",
        headers=world.owner.headers,
        json={"hostname": hostname},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_domain_is_added_pending_with_the_dns_records_it_needs(
    client: httpx.AsyncClient, world: World, deployment: Deployment, admin: MastraAdmin
) -> None:
    domain = await _add(client, world, deployment, "Shop.Example.com.")
    assert domain["hostname"] == "shop.example.com"
    assert domain["status"] == "pending"
    assert domain["verified_at"] is None
    assert domain["last_error"] is None
    assert domain["certificate"] is None
    token = domain["verification_token"]
    assert token.startswith("mastra-admin-verify=")
    assert domain["dns_records"] == [
        {"type": "CNAME", "name": "shop.example.com", "value": EDGE, "purpose": "routing"},
        {
            "type": "TXT",
            "name": "_mastra-admin.shop.example.com",
            "value": token,
            "purpose": "verification",
        },
    ]
    for path in (
        f"/api/deployments/{deployment.id}/domains",
        f"/api/projects/{deployment.project_id}/domains",
    ):
        listed = await client.get(path, headers=world.viewer.headers)
        assert listed.status_code == 200
        assert [d["id"] for d in listed.json()] == [domain["id"]]
    one = await client.get(f"/api/domains/{domain['id']}", headers=world.viewer.headers)
    assert one.json() == domain
    assert _router(admin).domain_calls == []


@pytest.mark.parametrize(
    ("hostname", "reason"),
    [
        ("*.x.com", "wildcard"),
        ("1.2.3.4", "ip_address"),
        ("[::1]", "ip_address"),
        ("localhost", "reserved"),
        (f"shop.{BASE_DOMAIN}", "platform_domain"),
        ("a" * 300 + ".com", "too_long"),
        ("a" * 64 + ".com", "label_too_long"),
        ("a..b.com", "empty_label"),
        ("my_app.example.com", "underscore"),
        ("sh\u202eop.example.com", "invisible_character"),
        ("shop.example.com\r\nX-Injected: 1", "invisible_character"),
        ("xn--zzzz.example.com", "idna"),
        ("https://shop.example.com/", "not_a_hostname"),
    ],
)
async def test_a_hostname_no_team_may_claim_is_422_with_its_reason(
    client: httpx.AsyncClient, world: World, deployment: Deployment, hostname: str, reason: str
) -> None:
    response = await client.post(
        f"/api/deployments/{deployment.id}/domains",
        headers=world.owner.headers,
        json={"hostname": hostname},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_hostname"
    assert error["details"] == {"field": "hostname", "reason": reason}
    assert error["message"] == HOSTNAME_REASONS[reason]  # never an echo of the input


async def test_an_international_name_is_stored_in_its_ascii_form(
    client: httpx.AsyncClient, world: World, deployment: Deployment
) -> None:
    domain = await _add(client, world, deployment, "\u0430pple.com")  # Cyrillic "a"
    assert domain["hostname"] == "xn--pple-43d.com"


async def test_verification_follows_what_dns_says(
    client: httpx.AsyncClient,
    world: World,
    deployment: Deployment,
    admin: MastraAdmin,
    dns: LocalDnsServer,
) -> None:
    domain = await _add(client, world, deployment, "shop.example.com")
    verify = f"/api/domains/{domain['id']}/verify"
    txt = "_mastra-admin.shop.example.com"

    absent = await client.post(verify, headers=world.member.headers)
    assert absent.status_code == 200, absent.text
    assert absent.json()["status"] == "pending"
    assert "does not exist" in absent.json()["last_error"]

    dns.set_txt(txt, "mastra-admin-verify=not-this-one")
    wrong = await client.post(verify, headers=world.member.headers)
    assert wrong.json()["status"] == "failed"
    assert "not-this-one" in wrong.json()["last_error"]
    assert _router(admin).domain_calls == []

    dns.set_txt(txt, domain["verification_token"])
    right = await client.post(verify, headers=world.member.headers)
    assert right.json()["status"] == "verified"
    assert right.json()["verified_at"] is not None
    assert right.json()["last_error"] is None
    assert right.json()["certificate"] == {
        "state": "pending",
        "issuer": None,
        "not_after": None,
        "error": None,
    }
    assert _router(admin).domain_calls == [(deployment.id, ["shop.example.com"])]


async def test_removal_tells_the_router_without_the_domain(
    client: httpx.AsyncClient,
    world: World,
    deployment: Deployment,
    admin: MastraAdmin,
    dns: LocalDnsServer,
) -> None:
    kept = await _add(client, world, deployment, "api.example.com")
    gone = await _add(client, world, deployment, "shop.example.com")
    for domain in (kept, gone):
        dns.set_txt(f"_mastra-admin.{domain['hostname']}", domain["verification_token"])
        await client.post(f"/api/domains/{domain['id']}/verify", headers=world.owner.headers)
    response = await client.delete(f"/api/domains/{gone['id']}", headers=world.admin.headers)
    assert response.status_code == 204
    assert _router(admin).domain_calls[-1] == (deployment.id, ["api.example.com"])
    missing = await client.get(f"/api/domains/{gone['id']}", headers=world.owner.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_members_cannot_add_or_remove_and_other_teams_cannot_see(
    client: httpx.AsyncClient, world: World, deployment: Deployment
) -> None:
    domain = await _add(client, world, deployment, "shop.example.com")
    added = await client.post(
        f"/api/deployments/{deployment.id}/domains",
        headers=world.member.headers,
        json={"hostname": "other.example.com"},
    )
    assert added.status_code == 403
    assert added.json()["error"]["code"] == "permission_denied"
    removed = await client.delete(f"/api/domains/{domain['id']}", headers=world.member.headers)
    assert removed.status_code == 403
    viewer_verify = await client.post(
        f"/api/domains/{domain['id']}/verify", headers=world.viewer.headers
    )
    assert viewer_verify.status_code == 403
    for method, path in (
        ("GET", f"/api/domains/{domain['id']}"),
        ("POST", f"/api/domains/{domain['id']}/verify"),
        ("DELETE", f"/api/domains/{domain['id']}"),
        ("GET", f"/api/deployments/{deployment.id}/domains"),
        ("GET", f"/api/projects/{deployment.project_id}/domains"),
    ):
        response = await client.request(method, path, headers=world.outsider.headers)
        assert response.status_code == 404, (method, path, response.text)
    support = await client.get(
        f"/api/deployments/{deployment.id}/domain-support", headers=world.member.headers
    )
    assert support.json()["may_manage"] is False
    assert support.json()["may_verify"] is True
    assert support.json()["serves_custom_domains"] is True
    assert support.json()["edge_cname"] == EDGE


async def test_a_hostname_of_another_team_is_409(
    client: httpx.AsyncClient, world: World, deployment: Deployment, admin: MastraAdmin
) -> None:
    await _add(client, world, deployment, "shop.example.com")
    outsider = world.outsider.user.id
    project = await admin.create_project(
        outsider, world.other_team_id, CreateProject(name="Theirs", source_id="support-bot")
    )
    theirs = await admin.create_deployment(
        outsider, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    response = await client.post(
        f"/api/deployments/{theirs.id}/domains",
        headers=world.outsider.headers,
        json={"hostname": "SHOP.example.com"},
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "domain_taken"
    assert deployment.id not in response.text
    assert world.team_id not in response.text


async def test_dns_that_cannot_be_reached_is_503_and_changes_nothing(
    client: httpx.AsyncClient, world: World, deployment: Deployment, admin: MastraAdmin
) -> None:
    domain = await _add(client, world, deployment, "shop.example.com")
    with silent_nameserver() as hanging:
        admin.settings = MastraAdminSettings(
            domains={"resolver": [hanging], "resolver_timeout_s": 0.3}
        )
        response = await client.post(
            f"/api/domains/{domain['id']}/verify", headers=world.owner.headers
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    error = response.json()["error"]
    assert error["code"] == "dns_unavailable"
    assert error["message"].startswith("no answer from DNS within 0.3 s")
    assert "the domain was not checked" in error["message"]
    after = await client.get(f"/api/domains/{domain['id']}", headers=world.owner.headers)
    assert after.json()["status"] == "pending"
    assert after.json()["last_checked_at"] is None


async def test_a_router_without_custom_domains_is_409(
    client: httpx.AsyncClient, world: World, deployment: Deployment, admin: MastraAdmin
) -> None:
    admin.router = LocalEdgeRouter(
        LocalRouterSettings(listen="never", port=0), admin.storage.routes
    )
    response = await client.post(
        f"/api/deployments/{deployment.id}/domains",
        headers=world.owner.headers,
        json={"hostname": "shop.example.com"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "custom_domains_unsupported"
    support = await client.get(
        f"/api/deployments/{deployment.id}/domain-support", headers=world.owner.headers
    )
    assert support.json()["serves_custom_domains"] is False


async def test_deleting_the_deployment_removes_its_domains(
    client: httpx.AsyncClient,
    world: World,
    deployment: Deployment,
    admin: MastraAdmin,
    dns: LocalDnsServer,
) -> None:
    domain = await _add(client, world, deployment, "shop.example.com")
    dns.set_txt("_mastra-admin.shop.example.com", domain["verification_token"])
    await client.post(f"/api/domains/{domain['id']}/verify", headers=world.owner.headers)
    response = await client.delete(f"/api/deployments/{deployment.id}", headers=world.owner.headers)
    assert response.status_code == 204
    assert _router(admin).domain_calls[-1] == (deployment.id, [])
    gone = await client.get(f"/api/domains/{domain['id']}", headers=world.owner.headers)
    assert gone.status_code == 404


def test_the_document_states_the_hostname_rules(client: httpx.AsyncClient) -> None:
    from mastra_admin.server.openapi import openapi_document
    from mastra_admin.server.routes import all_endpoints

    document = openapi_document(all_endpoints())
    operation = document["paths"]["/api/deployments/{deployment_id}/domains"]["post"]
    assert {"201", "409", "413", "422"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["AddDomain"]["properties"]["hostname"]
    assert schema["maxLength"] == 240
    assert "pattern" in schema
    verify = document["paths"]["/api/domains/{domain_id}/verify"]["post"]
    assert "dns_unavailable" in verify["responses"]["503"]["description"]
