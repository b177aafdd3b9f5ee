"""Custom domains: a team claims a host name for a deployment, proves it owns it with
a TXT record, and the router serves it; removing it or the deployment stops that.

DNS is a real server on 127.0.0.1 (``dns``) asked through the real resolver. The
router is the real local router (``RecordingLocalRouter``), whose ``set_domains``
calls are recorded: the local router serves no custom domains of its own (it proxies
only ``{subdomain}.{base_domain}`` and has no certificates for other names), so the
subclass turns on that one switch and records what the core tells it; everything else
about it is the real adapter, not a mock of the interface. Storage is memory, or
PostgreSQL with ``MASTRA_ADMIN_TEST_STORAGE=pg`` (tests/test_core_rules_on_postgres.py).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from mastra_admin.core.domain_dns import DnsUnavailable
from mastra_admin.core.errors import NotFound, PermissionDenied, Unavailable
from mastra_admin.core.hostnames import HOSTNAME_REASONS, InvalidHostname
from mastra_admin.core.inputs import AddDomain, CreateDeployment, CreateProject, CreateTeam
from mastra_admin.core.models import DeploymentType, DomainStatus
from mastra_admin.core.router import CertificateState
from mastra_admin.core.services.domains import (
    TOKEN_PREFIX,
    CustomDomainsUnsupported,
    DomainLimitReached,
    DomainTaken,
)
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.dns import LocalDnsServer, silent_nameserver
from mastra_admin.core.views import DomainView
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings

from .conftest import World

BASE_DOMAIN = "apps.mastra-platform.net"
EDGE = "edge.mastra-platform.net"
EDGE_ADDRESSES = ["203.0.113.10", "2001:db8::10"]


class RecordingLocalRouter(LocalEdgeRouter):
    """The local router, told that it serves custom domains, recording each
    ``set_domains`` call (see the module's docstring for why)."""

    serves_custom_domains: ClassVar[bool] = True

    def __init__(self, storage: AdminStorage) -> None:
        super().__init__(
            LocalRouterSettings(listen="never", port=0, base_domain=BASE_DOMAIN),
            storage.routes,
        )
        self.domain_calls: list[tuple[str, list[str]]] = []
        self.certificates: dict[str, CertificateState] = {}
        self.failure: Exception | None = None

    async def set_domains(self, deployment_id: str, hostnames: Sequence[str]) -> None:
        if self.failure is not None:
            raise self.failure
        self.domain_calls.append((deployment_id, list(hostnames)))

    async def certificate_state(self, hostname: str) -> CertificateState | None:
        if self.failure is not None:
            raise self.failure
        return self.certificates.get(hostname)


def _settings(resolver: str, **domains: object) -> MastraAdminSettings:
    return MastraAdminSettings(
        base_domain=BASE_DOMAIN,
        public_url="https://admin.mastra-platform.net",
        domains={
            "resolver": [resolver],
            "resolver_timeout_s": 1.0,
            "edge_cname": EDGE,
            "edge_addresses": EDGE_ADDRESSES,
            **domains,
        },
    )


@pytest.fixture
def router(world: World) -> RecordingLocalRouter:
    """The world's admin with the recording local router and DNS on 127.0.0.1."""
    return RecordingLocalRouter(world.storage)


@pytest.fixture
def domains(world: World, router: RecordingLocalRouter, dns: LocalDnsServer) -> World:
    world.admin.router = router
    world.admin.settings = _settings(dns.address)
    return world


async def _add(w: World, hostname: str = "shop.example.com", deployment_id: str = "") -> DomainView:
    return await w.admin.add_domain(
        w.owner.id, deployment_id or w.deployment.id, AddDomain(hostname=hostname)
    )


def _txt_name(domain: DomainView) -> str:
    return f"_mastra-admin.{domain.hostname}"


# --- adding ---------------------------------------------------------------------------


async def test_an_added_domain_is_pending_with_the_records_it_needs(
    domains: World, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains, "Shop.Example.COM.")
    assert domain.hostname == "shop.example.com"
    assert domain.status is DomainStatus.PENDING
    assert domain.verified_at is None
    assert domain.last_checked_at is None
    assert domain.deployment_id == domains.deployment.id
    assert domain.project_id == domains.project.id
    assert domain.team_id == domains.team.id
    assert domain.created_by == domains.owner.id
    token = domain.verification_token
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) == len(TOKEN_PREFIX) + 32
    assert [(r.type, r.name, r.value, r.purpose) for r in domain.dns_records] == [
        ("CNAME", "shop.example.com", EDGE, "routing"),
        ("TXT", "_mastra-admin.shop.example.com", token, "verification"),
    ]
    assert domain.certificate is None
    assert router.domain_calls == []  # nothing is served before it is verified
    again = await domains.admin.get_domain(domains.viewer.id, domain.id)
    assert again == domain


async def test_a_zone_apex_gets_address_records_and_each_domain_its_own_token(
    domains: World,
) -> None:
    apex = await _add(domains, "example.org")
    assert [(r.type, r.value) for r in apex.dns_records if r.purpose == "routing"] == [
        ("A", "203.0.113.10"),
        ("AAAA", "2001:db8::10"),
    ]
    other = await _add(domains, "www.example.org")
    assert other.verification_token != apex.verification_token


async def test_without_an_edge_only_the_txt_record_is_shown(
    domains: World, dns: LocalDnsServer
) -> None:
    domains.admin.settings = _settings(dns.address, edge_cname=None, edge_addresses=[])
    domain = await _add(domains)
    assert [r.type for r in domain.dns_records] == ["TXT"]


async def test_an_international_name_is_kept_in_its_ascii_form(domains: World) -> None:
    # "apple.com" with a Cyrillic "a": shown as DNS has it, so nobody mistakes it.
    domain = await _add(domains, "\u0430pple.com")
    assert domain.hostname == "xn--pple-43d.com"
    assert (await _add(domains, "MÜNCHEN.example.de")).hostname == "xn--mnchen-3ya.example.de"


HOSTILE = {
    "*.x.com": "wildcard",
    "1.2.3.4": "ip_address",
    "1.2.3.4.": "ip_address",
    "[::1]": "ip_address",
    "::1": "ip_address",
    "shop.example.123": "ip_address",
    "localhost": "reserved",
    "app.localhost": "reserved",
    "printer.local": "reserved",
    "db.internal": "reserved",
    "x.test": "reserved",
    f"shop.{BASE_DOMAIN}": "platform_domain",
    BASE_DOMAIN.upper(): "platform_domain",
    EDGE: "platform_domain",
    "admin.mastra-platform.net": "platform_domain",
    "a" * 300 + ".com": "too_long",
    ("a" * 63 + ".") * 3 + "a" * 60 + ".com": "too_long",
    "a" * 64 + ".com": "label_too_long",
    ".example.com": "empty_label",
    "a..b.com": "empty_label",
    "shop": "single_label",
    "example": "reserved",
    "my_app.example.com": "underscore",
    "-shop.example.com": "label_characters",
    "shop-.example.com": "label_characters",
    "sh!op.example.com": "label_characters",
    "https://shop.example.com/": "not_a_hostname",
    "shop.example.com:443": "not_a_hostname",
    "user@shop.example.com": "not_a_hostname",
    "shop example.com": "invisible_character",
    " shop.example.com": "invisible_character",
    "shop.example.com\n": "invisible_character",
    "shop\x00.example.com": "invisible_character",
    "sh\u200bop.example.com": "invisible_character",
    "sh\u202eop.example.com": "invisible_character",
    "sh\u00adop.example.com": "invisible_character",
    "xn--zzzz.example.com": "idna",
    "\U0001f600.example.com": "label_characters",
    "\u2603.example.com": "idna",
    "": "empty",
}


@pytest.mark.parametrize(("hostname", "reason"), HOSTILE.items(), ids=repr)
async def test_a_hostname_no_team_may_claim_is_refused_with_its_reason(
    domains: World, hostname: str, reason: str
) -> None:
    with pytest.raises(InvalidHostname) as caught:
        await _add(domains, hostname)
    assert caught.value.code == "invalid_hostname"
    assert caught.value.details == {"field": "hostname", "reason": reason}
    assert caught.value.message == HOSTNAME_REASONS[reason]  # one sentence, never the input
    assert await domains.storage.domains.list_for_deployment(domains.deployment.id) == []


async def test_a_hostname_is_unique_in_the_whole_installation(domains: World) -> None:
    await _add(domains, "shop.example.com")
    owner = domains.owner.id
    sibling = await domains.admin.create_deployment(
        owner, domains.project.id, CreateDeployment(type=DeploymentType.STAGING)
    )
    with pytest.raises(DomainTaken) as same_team:
        await _add(domains, "SHOP.example.com.", sibling.id)
    assert same_team.value.code == "domain_taken"
    # Another team (the outsider's) may not have it either, nor learn whose it is.
    other_team = await domains.admin.create_team(domains.outsider.id, CreateTeam(name="Other"))
    other_project = await domains.admin.create_project(
        domains.outsider.id,
        other_team.id,
        CreateProject(name="Other", source_id="support-bot"),
    )
    theirs = await domains.admin.create_deployment(
        domains.outsider.id, other_project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    with pytest.raises(DomainTaken) as other:
        await domains.admin.add_domain(
            domains.outsider.id, theirs.id, AddDomain(hostname="shop.example.com")
        )
    assert domains.team.id not in str(other.value.to_dict())
    assert domains.deployment.id not in str(other.value.to_dict())


async def test_a_deployment_has_at_most_the_configured_number(
    domains: World, dns: LocalDnsServer
) -> None:
    domains.admin.settings = _settings(dns.address, max_per_deployment=2)
    await _add(domains, "a.example.com")
    await _add(domains, "b.example.com")
    with pytest.raises(DomainLimitReached) as caught:
        await _add(domains, "c.example.com")
    assert caught.value.details["limit"] == 2


async def test_concurrent_adds_never_pass_the_limit(domains: World, dns: LocalDnsServer) -> None:
    domains.admin.settings = _settings(dns.address, max_per_deployment=3)
    results = await asyncio.gather(
        *(_add(domains, f"n{i}.example.com") for i in range(8)), return_exceptions=True
    )
    added = [r for r in results if isinstance(r, DomainView)]
    assert 1 <= len(added) <= 3
    assert all(isinstance(r, DomainView | DomainLimitReached) for r in results)
    assert len(await domains.storage.domains.list_for_deployment(domains.deployment.id)) <= 3


async def test_a_router_that_serves_no_custom_domains_refuses_them(
    domains: World, dns: LocalDnsServer
) -> None:
    domain = await _add(domains)
    plain = LocalEdgeRouter(LocalRouterSettings(listen="never", port=0), domains.storage.routes)
    domains.admin.router = plain
    with pytest.raises(CustomDomainsUnsupported) as caught:
        await _add(domains, "other.example.com")
    assert caught.value.code == "custom_domains_unsupported"
    assert "'local' router does not serve custom domains" in caught.value.message
    domains.admin.router = None
    with pytest.raises(CustomDomainsUnsupported):
        await _add(domains, "other.example.com")
    # What exists stays readable, checkable and removable without such a router.
    assert [
        d.id for d in await domains.admin.list_domains(domains.owner.id, domains.deployment.id)
    ] == [domain.id]
    dns.set_txt(_txt_name(domain), domain.verification_token)
    assert (
        await domains.admin.verify_domain(domains.owner.id, domain.id)
    ).status is DomainStatus.VERIFIED
    await domains.admin.remove_domain(domains.owner.id, domain.id)


# --- verifying ------------------------------------------------------------------------


async def test_verify_without_a_txt_record_leaves_it_pending_and_says_why(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    checked = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert checked.status is DomainStatus.PENDING
    assert checked.last_checked_at is not None
    assert checked.last_error is not None
    assert "does not exist" in checked.last_error
    assert ("_mastra-admin.shop.example.com", "TXT") in dns.queries
    dns.add_name(_txt_name(domain))  # the name exists now, without a TXT record
    checked = await domains.admin.verify_domain(domains.member.id, domain.id)
    assert checked.status is DomainStatus.PENDING
    assert checked.last_error is not None
    assert "has no TXT record" in checked.last_error
    assert router.domain_calls == []


async def test_a_txt_record_with_another_value_fails_it(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    dns.set_txt(_txt_name(domain), "mastra-admin-verify=someone-elses-token")
    checked = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert checked.status is DomainStatus.FAILED
    assert checked.last_error is not None
    assert "someone-elses-token" in checked.last_error
    assert router.domain_calls == []
    # Fixed in DNS: verified at the next check.
    dns.set_txt(_txt_name(domain), domain.verification_token)
    fixed = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert fixed.status is DomainStatus.VERIFIED
    assert fixed.last_error is None


async def test_the_right_txt_record_verifies_it_and_the_router_serves_it(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    shop = await _add(domains, "shop.example.com")
    api = await _add(domains, "api.example.com")
    dns.set_txt(_txt_name(shop), "v=spf1 -all", shop.verification_token)
    verified = await domains.admin.verify_domain(domains.member.id, shop.id)
    assert verified.status is DomainStatus.VERIFIED
    assert verified.verified_at is not None
    assert verified.last_error is None
    assert router.domain_calls == [(domains.deployment.id, ["shop.example.com"])]
    dns.set_txt(_txt_name(api), api.verification_token)
    await domains.admin.verify_domain(domains.owner.id, api.id)
    # Always the deployment's whole verified set, by host name.
    assert router.domain_calls[-1] == (
        domains.deployment.id,
        ["api.example.com", "shop.example.com"],
    )


async def test_a_verified_domain_stays_verified_and_verifying_it_again_asks_no_dns(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    dns.set_txt(_txt_name(domain), domain.verification_token)
    first = await domains.admin.verify_domain(domains.owner.id, domain.id)
    dns.clear()  # the owner tidied the TXT record away
    again = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert again.status is DomainStatus.VERIFIED
    assert again.verified_at == first.verified_at
    assert dns.queries == []
    assert router.domain_calls == [(domains.deployment.id, ["shop.example.com"])] * 2


async def test_dns_that_cannot_be_asked_is_unavailable_and_changes_nothing(
    domains: World, dns: LocalDnsServer
) -> None:
    domain = await _add(domains)
    with silent_nameserver() as hanging:
        domains.admin.settings = _settings(hanging, resolver_timeout_s=0.3)
        with pytest.raises(DnsUnavailable) as timed_out:
            await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert timed_out.value.code == "dns_unavailable"
    assert "no answer from DNS within 0.3 s" in timed_out.value.message
    assert timed_out.value.details["retry_after"] > 0
    domains.admin.settings = _settings(dns.address)
    dns.fail(_txt_name(domain))
    with pytest.raises(DnsUnavailable) as failing:
        await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert "SERVFAIL" in failing.value.details["reason"]
    stored = await domains.storage.domains.get(domain.id)
    assert stored is not None
    assert stored.status is DomainStatus.PENDING
    assert stored.last_checked_at is None
    assert stored.last_error is None


def test_a_silent_nameserver_takes_another_port_when_its_tcp_port_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel picks a free UDP port, but the TCP port of that number may be held by
    any process (a connection, a socket in TIME_WAIT): another number is tried."""
    held: list[int] = []

    class HeldOnce(socket.socket):
        def bind(self, address: Any, /) -> None:
            if self.type == socket.SOCK_STREAM and not held:
                held.append(address[1])
                raise OSError(errno.EADDRINUSE, "Address already in use")
            super().bind(address)

    monkeypatch.setattr(socket, "socket", HeldOnce)
    with silent_nameserver() as hanging:
        monkeypatch.undo()
        host, port = hanging.rsplit(":", 1)
        assert len(held) == 1
        assert int(port) != held[0]
        with socket.create_connection((host, int(port)), timeout=5):
            pass  # TCP listens on the same number as UDP


async def test_a_router_that_cannot_be_told_leaves_the_domain_verified_and_says_so(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    dns.set_txt(_txt_name(domain), domain.verification_token)
    router.failure = Unavailable("the edge's admin API is down")
    checked = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert checked.status is DomainStatus.VERIFIED
    assert checked.last_error is not None
    assert "the edge's admin API is down" in checked.last_error
    assert checked.certificate is None
    router.failure = None
    retried = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert retried.last_error is None
    assert router.domain_calls == [(domains.deployment.id, ["shop.example.com"])]


async def test_the_certificate_is_the_routers_word_once_verified(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    router.certificates["shop.example.com"] = CertificateState(state="issued", issuer="Test CA")
    assert (await domains.admin.get_domain(domains.owner.id, domain.id)).certificate is None
    dns.set_txt(_txt_name(domain), domain.verification_token)
    verified = await domains.admin.verify_domain(domains.owner.id, domain.id)
    assert verified.certificate == CertificateState(state="issued", issuer="Test CA")


# --- removing, and domains following their deployment ----------------------------------


async def _verified(
    w: World, dns: LocalDnsServer, hostname: str, deployment_id: str = ""
) -> DomainView:
    domain = await _add(w, hostname, deployment_id)
    dns.set_txt(_txt_name(domain), domain.verification_token)
    return await w.admin.verify_domain(w.owner.id, domain.id)


async def test_removing_a_verified_domain_tells_the_router_without_it(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    shop = await _verified(domains, dns, "shop.example.com")
    await _verified(domains, dns, "api.example.com")
    await domains.admin.remove_domain(domains.team_admin.id, shop.id)
    assert router.domain_calls[-1] == (domains.deployment.id, ["api.example.com"])
    with pytest.raises(NotFound):
        await domains.admin.get_domain(domains.owner.id, shop.id)
    # The host name is free again.
    assert (await _add(domains, "shop.example.com")).status is DomainStatus.PENDING


async def test_removing_a_pending_domain_does_not_bother_the_router(
    domains: World, router: RecordingLocalRouter
) -> None:
    domain = await _add(domains)
    router.failure = RuntimeError("unreachable")
    await domains.admin.remove_domain(domains.owner.id, domain.id)
    assert router.domain_calls == []


async def test_a_router_that_cannot_be_told_keeps_a_removed_domain(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _verified(domains, dns, "shop.example.com")
    router.failure = RuntimeError("connection refused")
    with pytest.raises(Unavailable) as caught:
        await domains.admin.remove_domain(domains.owner.id, domain.id)
    assert "the domain was kept" in caught.value.message
    assert await domains.storage.domains.get(domain.id) is not None


async def test_deleting_a_deployment_takes_its_domains_and_tells_the_router(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _verified(domains, dns, "shop.example.com")
    await _add(domains, "pending.example.com")
    await domains.admin.delete_deployment(domains.owner.id, domains.deployment.id)
    assert router.domain_calls[-1] == (domains.deployment.id, [])
    assert await domains.storage.domains.get(domain.id) is None
    assert await domains.storage.domains.list_for_project(domains.project.id) == []


async def test_deleting_the_project_or_team_does_too(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    await _verified(domains, dns, "shop.example.com")
    await domains.admin.delete_project(domains.owner.id, domains.project.id)
    assert router.domain_calls[-1] == (domains.deployment.id, [])
    assert await domains.storage.domains.get_by_hostname("shop.example.com") is None


async def test_a_stopped_deployment_keeps_its_domains(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    domain = await _verified(domains, dns, "shop.example.com")
    calls = len(router.domain_calls)
    await domains.admin.stop(domains.owner.id, domains.deployment.id)
    kept = await domains.admin.get_domain(domains.owner.id, domain.id)
    assert kept.status is DomainStatus.VERIFIED
    assert len(router.domain_calls) == calls


# --- who may do what --------------------------------------------------------------------


async def test_only_owners_and_admins_add_and_remove_domains(domains: World) -> None:
    for person in (domains.member, domains.viewer):
        with pytest.raises(PermissionDenied):
            await domains.admin.add_domain(
                person.id, domains.deployment.id, AddDomain(hostname="x.example.com")
            )
    domain = await domains.admin.add_domain(
        domains.team_admin.id, domains.deployment.id, AddDomain(hostname="x.example.com")
    )
    for person in (domains.member, domains.viewer):
        with pytest.raises(PermissionDenied):
            await domains.admin.remove_domain(person.id, domain.id)
    with pytest.raises(PermissionDenied):
        await domains.admin.verify_domain(domains.viewer.id, domain.id)
    listed = await domains.admin.list_domains(domains.viewer.id, domains.deployment.id)
    assert [d.id for d in listed] == [domain.id]
    projects = await domains.admin.list_project_domains(domains.viewer.id, domains.project.id)
    assert [d.id for d in projects] == [domain.id]


async def test_another_team_cannot_see_a_domain(domains: World) -> None:
    domain = await _add(domains)
    outsider = domains.outsider.id
    for attempt in (
        domains.admin.get_domain(outsider, domain.id),
        domains.admin.verify_domain(outsider, domain.id),
        domains.admin.remove_domain(outsider, domain.id),
        domains.admin.list_domains(outsider, domains.deployment.id),
        domains.admin.list_project_domains(outsider, domains.project.id),
        domains.admin.add_domain(
            outsider, domains.deployment.id, AddDomain(hostname="y.example.com")
        ),
    ):
        with pytest.raises(NotFound):
            await attempt


async def test_domain_support_says_what_the_caller_may_do(
    domains: World, router: RecordingLocalRouter
) -> None:
    owner = await domains.admin.domain_support(domains.owner.id, domains.deployment.id)
    assert owner.serves_custom_domains
    assert owner.may_manage
    assert owner.may_verify
    assert owner.edge_cname == EDGE
    assert owner.edge_addresses == EDGE_ADDRESSES
    member = await domains.admin.domain_support(domains.member.id, domains.deployment.id)
    assert (member.may_manage, member.may_verify) == (False, True)
    viewer = await domains.admin.domain_support(domains.viewer.id, domains.deployment.id)
    assert (viewer.may_manage, viewer.may_verify) == (False, False)
    domains.admin.router = None
    none = await domains.admin.domain_support(domains.owner.id, domains.deployment.id)
    assert not none.serves_custom_domains


# --- the periodic check -------------------------------------------------------------------


async def test_pending_domains_are_checked_again_by_the_system(
    domains: World, dns: LocalDnsServer, router: RecordingLocalRouter
) -> None:
    ready = await _add(domains, "ready.example.com")
    waiting = await _add(domains, "waiting.example.com")
    wrong = await _add(domains, "wrong.example.com")
    dns.set_txt(_txt_name(wrong), "nope")
    await domains.admin.verify_domain(domains.owner.id, wrong.id)  # failed: not re-checked
    dns.set_txt(_txt_name(ready), ready.verification_token)
    checked = await domains.admin.recheck_pending_domains()
    assert sorted(d.hostname for d in checked) == ["ready.example.com", "waiting.example.com"]
    by_name = {d.hostname: d for d in checked}
    assert by_name["ready.example.com"].status is DomainStatus.VERIFIED
    assert by_name["waiting.example.com"].status is DomainStatus.PENDING
    assert router.domain_calls == [(domains.deployment.id, ["ready.example.com"])]
    assert waiting.id in {d.id for d in checked}


async def test_the_periodic_check_runs_in_the_background_and_stops(
    domains: World, dns: LocalDnsServer
) -> None:
    domain = await _add(domains)
    dns.set_txt(_txt_name(domain), domain.verification_token)
    checks = domains.admin.domains.pending_checks
    domains.admin.settings = _settings(dns.address, verify_interval_s=0)
    checks.start()
    assert not checks.running  # 0: off
    domains.admin.settings = _settings(dns.address, verify_interval_s=0.05)
    checks.start()
    try:
        for _ in range(100):
            stored = await domains.storage.domains.get(domain.id)
            if stored is not None and stored.status is DomainStatus.VERIFIED:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the pending domain was not checked again")
    finally:
        await checks.stop()
    assert not checks.running


async def test_the_periodic_check_stops_its_round_when_dns_is_down(
    domains: World, dns: LocalDnsServer
) -> None:
    await _add(domains, "a.example.com")
    await _add(domains, "b.example.com")
    with silent_nameserver() as hanging:
        domains.admin.settings = _settings(hanging, resolver_timeout_s=0.2)
        assert await domains.admin.recheck_pending_domains() == []
