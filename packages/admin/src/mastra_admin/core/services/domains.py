"""Custom domains of deployments: claiming a host name, proving ownership in DNS, and
telling the router which verified names each deployment is served at.

A domain is added pending, with a random token. It is verified once DNS shows the
token in a TXT record at ``_mastra-admin.{hostname}``; only then does the router serve
it (``EdgeRouterProvider.set_domains``, always with the deployment's whole verified
set, so a lost or repeated call repairs itself). Host names are unique in the whole
installation: one team's verified domain can never be claimed by another. The storage
is the source of truth: the router restores every verified domain when it starts.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from mastra_admin.core.domain_dns import DomainDns
from mastra_admin.core.errors import Conflict, MastraAdminError, NotFound, Unavailable
from mastra_admin.core.hostnames import VERIFICATION_LABEL, normalise_hostname, verification_name
from mastra_admin.core.inputs import AddDomain
from mastra_admin.core.models import Domain, DomainStatus, utcnow
from mastra_admin.core.rbac import Actor, user_id_of
from mastra_admin.core.router import CertificateState, EdgeRouterProvider
from mastra_admin.core.services._service import Service, validated
from mastra_admin.core.storage import DomainUpdate
from mastra_admin.core.views import DnsRecord, DomainSupport, DomainView

if TYPE_CHECKING:
    from mastra_admin.core.services.context import ServiceContext

__all__ = [
    "TOKEN_PREFIX",
    "CustomDomainsUnsupported",
    "DomainLimitReached",
    "DomainService",
    "DomainTaken",
    "PendingDomainChecks",
    "new_verification_token",
]

_log = structlog.get_logger("mastra_admin.core.services.domains")

TOKEN_PREFIX = "mastra-admin-verify="
"""How a verification token starts, so that the TXT record says what it is for."""


def new_verification_token() -> str:
    """``mastra-admin-verify=`` and 32 URL-safe random characters (192 bits): nobody
    can guess another team's token and so claim a domain they do not control."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


class CustomDomainsUnsupported(Conflict):
    """The installation's router does not serve custom domains (or there is none)."""

    code = "custom_domains_unsupported"


class DomainTaken(Conflict):
    """The host name is a custom domain of a deployment already (of any team)."""

    code = "domain_taken"


class DomainLimitReached(Conflict):
    """The deployment has ``domains.max_per_deployment`` domains already."""

    code = "domain_limit_reached"


class DomainService(Service):
    """Custom domains: add, list, verify, remove, and the periodic re-check of
    pending ones (``pending_checks``, started by the processes that run workers)."""

    def __init__(self, context: ServiceContext) -> None:
        super().__init__(context)
        self.pending_checks = PendingDomainChecks(self)

    # --- providers and settings -------------------------------------------------------

    def _router(self) -> EdgeRouterProvider | None:
        """The router, if it serves custom domains (``None`` otherwise: nothing to tell)."""
        router = self.context.router
        return router if router is not None and router.serves_custom_domains else None

    def _require_router(self) -> EdgeRouterProvider:
        router = self.context.router
        if router is None:
            raise CustomDomainsUnsupported(
                "custom domains need a router that serves them, and this installation has"
                " no router",
                details={"router": None},
            )
        if not router.serves_custom_domains:
            raise CustomDomainsUnsupported(
                f"the {router.type!r} router does not serve custom domains: the platform's"
                " operator must configure a router that does (such as caddy)",
                details={"router": router.type},
            )
        return router

    def platform_domains(self) -> list[str]:
        """Domains no team may claim (nor anything under them): the base domain that
        deployments are routed below (the installation's and the router's own, when
        it names one), the admin's own host, the edge's name and ``domains.blocked``."""
        settings = self.settings
        found = [settings.base_domain, *settings.domains.blocked]
        router_domain = getattr(self.context.router, "base_domain", None)
        if isinstance(router_domain, str):
            found.append(router_domain)
        if settings.public_url:
            host = urlsplit(settings.public_url).hostname
            if host:
                found.append(host)
        if settings.domains.edge_cname:
            found.append(settings.domains.edge_cname)
        return [domain for domain in found if domain.strip(". ")]

    def _dns(self) -> DomainDns:
        return DomainDns(self.settings.domains)

    # --- views --------------------------------------------------------------------------

    def dns_records(self, domain: Domain) -> list[DnsRecord]:
        """What the domain's owner creates in DNS: a CNAME to the edge (A/AAAA records
        to its addresses for a zone apex, which DNS allows no CNAME at, or when the
        edge has no name), then the TXT record that proves ownership."""
        settings = self.settings.domains
        records: list[DnsRecord] = []
        apex = domain.hostname.count(".") == 1
        if settings.edge_cname and not (apex and settings.edge_addresses):
            records.append(
                DnsRecord(
                    type="CNAME",
                    name=domain.hostname,
                    value=settings.edge_cname,
                    purpose="routing",
                )
            )
        else:
            for address in settings.edge_addresses:
                records.append(
                    DnsRecord(
                        type="AAAA" if ":" in address else "A",
                        name=domain.hostname,
                        value=address,
                        purpose="routing",
                    )
                )
        records.append(
            DnsRecord(
                type="TXT",
                name=verification_name(domain.hostname),
                value=domain.verification_token,
                purpose="verification",
            )
        )
        return records

    async def _certificate(self, domain: Domain) -> CertificateState | None:
        """The router's word on the domain's certificate; ``None`` when it is not
        served yet, or the router cannot say (a router that is down must not make the
        domains unreadable)."""
        router = self._router()
        if router is None or domain.status is not DomainStatus.VERIFIED:
            return None
        try:
            return await router.certificate_state(domain.hostname)
        except Exception as exc:
            _log.warning("domain.certificate_unknown", hostname=domain.hostname, error=str(exc))
            return None

    async def view(self, domain: Domain) -> DomainView:
        return DomainView(
            **domain.model_dump(),
            dns_records=self.dns_records(domain),
            certificate=await self._certificate(domain),
        )

    async def _views(self, domains: list[Domain]) -> list[DomainView]:
        return list(await asyncio.gather(*(self.view(domain) for domain in domains)))

    # --- lookups ------------------------------------------------------------------------

    async def _domain_for(self, actor: Actor, domain_id: str, permission: str) -> Domain:
        hidden = NotFound("domain not found", details={"domain_id": domain_id})
        domain = await self.storage.domains.get(domain_id)
        if domain is None:
            raise hidden
        await self.authorizer.ensure(
            actor, permission, domain.team_id, domain.project_id, hidden=hidden
        )
        return domain

    # --- operations ---------------------------------------------------------------------

    async def add_domain(
        self, actor: Actor, deployment_id: str, data: AddDomain | str
    ) -> DomainView:
        """Claim a host name for the deployment (``domain:manage``). It is added
        pending, with the DNS records it needs; the router serves it once verified.

        ``CustomDomainsUnsupported`` (409) when the router serves no custom domains,
        ``InvalidHostname`` (422) for a host name a team may not claim, ``DomainTaken``
        (409) when any deployment of the installation has it already,
        ``DomainLimitReached`` (409) past ``domains.max_per_deployment``."""
        deployment, project, team = await self._deployment_for(
            actor, deployment_id, "domain:manage"
        )
        if isinstance(data, str):
            data = validated(AddDomain, hostname=data)
        self._require_router()
        hostname = normalise_hostname(data.hostname, platform_domains=self.platform_domains())
        taken = DomainTaken(
            f"{hostname} is a custom domain of a deployment already: remove it there first",
            details={"field": "hostname", "hostname": hostname},
        )
        if await self.storage.domains.get_by_hostname(hostname) is not None:
            raise taken
        limit = self.settings.domains.max_per_deployment
        exceeded = DomainLimitReached(
            f"a deployment has at most {limit} custom domains (domains.max_per_deployment)",
            details={"field": "hostname", "limit": limit, "deployment_id": deployment.id},
        )
        if len(await self.storage.domains.list_for_deployment(deployment.id)) >= limit:
            raise exceeded
        try:
            created = await self.storage.domains.create(
                Domain(
                    team_id=team.id,
                    project_id=project.id,
                    deployment_id=deployment.id,
                    hostname=hostname,
                    verification_token=new_verification_token(),
                    created_by=user_id_of(actor),
                )
            )
        except Conflict as exc:
            if exc.details.get("field") == "hostname":
                raise taken from None
            raise
        # Two adds racing past the count: the later ones give way.
        siblings = await self.storage.domains.list_for_deployment(deployment.id)
        order = sorted(siblings, key=lambda d: (d.created_at, d.id))
        if [d.id for d in order].index(created.id) >= limit:
            await self.storage.domains.delete(created.id)
            raise exceeded
        _log.info(
            "domain.added",
            domain_id=created.id,
            hostname=hostname,
            deployment_id=deployment.id,
            actor_id=user_id_of(actor),
        )
        return await self.view(created)

    async def list_domains(self, actor: Actor, deployment_id: str) -> list[DomainView]:
        """The deployment's custom domains, by host name (``domain:read``)."""
        await self._deployment_for(actor, deployment_id, "domain:read")
        return await self._views(await self.storage.domains.list_for_deployment(deployment_id))

    async def list_project_domains(self, actor: Actor, project_id: str) -> list[DomainView]:
        """The custom domains of all of the project's deployments, by host name."""
        await self._project_for(actor, project_id, "domain:read")
        return await self._views(await self.storage.domains.list_for_project(project_id))

    async def get_domain(self, actor: Actor, domain_id: str) -> DomainView:
        return await self.view(await self._domain_for(actor, domain_id, "domain:read"))

    async def domain_support(self, actor: Actor, deployment_id: str) -> DomainSupport:
        """Whether the router serves custom domains, what the caller may do with the
        deployment's, and the edge that their records point at."""
        _, project, team = await self._deployment_for(actor, deployment_id, "domain:read")
        access = await self.authorizer.access(actor, team.id, project.id)
        settings = self.settings.domains
        return DomainSupport(
            serves_custom_domains=self._router() is not None,
            may_manage=access.allows("domain:manage"),
            may_verify=access.allows("domain:verify"),
            max_per_deployment=settings.max_per_deployment,
            verification_label=VERIFICATION_LABEL,
            edge_cname=settings.edge_cname,
            edge_addresses=list(settings.edge_addresses),
        )

    async def verify_domain(self, actor: Actor, domain_id: str) -> DomainView:
        """Check the domain's TXT record now (``domain:verify``): the token there makes
        it verified and served; other values make it failed; no record (yet) leaves it
        pending, with ``last_error`` saying what DNS said. ``DnsUnavailable`` (503)
        when DNS cannot be asked: then nothing changes.

        A verified domain stays verified (its TXT record may go); verifying it again
        asks no DNS and tells the router its deployment's domains once more."""
        domain = await self._domain_for(actor, domain_id, "domain:verify")
        if domain.status is DomainStatus.VERIFIED:
            return await self.view(await self._tell_router(domain))
        return await self.view(await self.check_domain(domain))

    async def remove_domain(self, actor: Actor, domain_id: str) -> None:
        """Remove the domain (``domain:manage``): the router stops serving it first, so
        a router that cannot be told (``Unavailable``) leaves the domain in place."""
        domain = await self._domain_for(actor, domain_id, "domain:manage")
        router = self._router()
        if router is not None and domain.status is DomainStatus.VERIFIED:
            remaining = [
                other.hostname
                for other in await self.storage.domains.list_for_deployment(domain.deployment_id)
                if other.status is DomainStatus.VERIFIED and other.id != domain.id
            ]
            try:
                await router.set_domains(domain.deployment_id, remaining)
            except MastraAdminError:
                raise
            except Exception as exc:
                _log.warning("domain.router_failed", hostname=domain.hostname, error=str(exc))
                raise Unavailable(
                    f"the router could not be told to stop serving {domain.hostname}: the"
                    " domain was kept; try again",
                    details={"domain_id": domain.id},
                ) from exc
        await self.storage.domains.delete(domain.id)
        _log.info(
            "domain.removed",
            domain_id=domain.id,
            hostname=domain.hostname,
            deployment_id=domain.deployment_id,
            actor_id=user_id_of(actor),
        )

    # --- DNS checks and the router ------------------------------------------------------

    async def check_domain(self, domain: Domain) -> Domain:
        """Ask DNS for the domain's TXT record and record the outcome (no permission
        check: the caller's, or a system task). ``DnsUnavailable`` leaves it as it was."""
        name = verification_name(domain.hostname)
        lookup = await self._dns().txt(name)
        now = utcnow()
        token = domain.verification_token
        if any(hmac.compare_digest(value.encode(), token.encode()) for value in lookup.values):
            verified = await self.storage.domains.update(
                domain.id,
                DomainUpdate(
                    status=DomainStatus.VERIFIED,
                    verified_at=domain.verified_at or now,
                    last_checked_at=now,
                    last_error=None,
                ),
            )
            _log.info(
                "domain.verified",
                domain_id=domain.id,
                hostname=domain.hostname,
                deployment_id=domain.deployment_id,
            )
            return await self._tell_router(verified)
        if lookup.values:
            shown = ", ".join(repr(value[:80]) for value in lookup.values[:3])
            more = f" and {len(lookup.values) - 3} more" if len(lookup.values) > 3 else ""
            status = DomainStatus.FAILED
            error = (
                f"the TXT record at {name} holds {shown}{more}, not this domain's token:"
                " set it to the value shown, then verify again"
            )
        elif not lookup.exists:
            status = DomainStatus.PENDING
            error = (
                f"{name} does not exist (yet): create its TXT record; new DNS records can"
                " take a while to show"
            )
        else:
            status = DomainStatus.PENDING
            error = f"{name} has no TXT record (yet): create it with the value shown"
        checked = await self.storage.domains.update(
            domain.id, DomainUpdate(status=status, last_checked_at=now, last_error=error)
        )
        _log.info(
            "domain.checked",
            domain_id=domain.id,
            hostname=domain.hostname,
            status=status.value,
            found=len(lookup.values),
            exists=lookup.exists,
        )
        return checked

    async def sync_router(self, deployment_id: str) -> list[str]:
        """Tell the router every verified domain of the deployment (the whole set, so
        the call repairs whatever it missed before); the host names told."""
        router = self._router()
        if router is None:
            return []
        hostnames = [
            domain.hostname
            for domain in await self.storage.domains.list_for_deployment(deployment_id)
            if domain.status is DomainStatus.VERIFIED
        ]
        await router.set_domains(deployment_id, hostnames)
        return hostnames

    async def _tell_router(self, domain: Domain) -> Domain:
        """``sync_router`` for the domain's deployment. A router that cannot be told
        now leaves the domain verified, with ``last_error`` saying so (verifying again
        retries; the router also restores every verified domain when it starts)."""
        try:
            await self.sync_router(domain.deployment_id)
        except Exception as exc:
            reason = exc.message if isinstance(exc, MastraAdminError) else type(exc).__name__
            _log.warning("domain.router_failed", hostname=domain.hostname, error=str(exc))
            return await self.storage.domains.update(
                domain.id,
                DomainUpdate(
                    last_error=f"verified, but the router could not be told yet ({reason}):"
                    " verify again to retry"
                ),
            )
        if domain.last_error is not None:
            return await self.storage.domains.update(domain.id, DomainUpdate(last_error=None))
        return domain

    async def recheck_pending_domains(self) -> list[Domain]:
        """Check every pending domain's DNS again (a system task, see
        ``PendingDomainChecks``); the domains checked. The round ends at the first
        lookup DNS cannot answer: the next round tries again."""
        checked: list[Domain] = []
        for domain in await self.storage.domains.list_by_status([DomainStatus.PENDING]):
            try:
                checked.append(await self.check_domain(domain))
            except NotFound:
                continue  # removed meanwhile
            except Unavailable as exc:
                _log.warning("domain.recheck_stopped", error=exc.message, checked=len(checked))
                break
        return checked


class PendingDomainChecks:
    """Checks pending domains again every ``domains.verify_interval_s`` (0: never) in
    a background task of this process, so that a domain turns verified soon after its
    TXT record appears without anyone pressing Verify. Several processes may run it:
    a check is idempotent."""

    def __init__(self, domains: DomainService) -> None:
        self.domains = domains
        self._task: asyncio.Task[None] | None = None

    @property
    def interval_s(self) -> float:
        return self.domains.settings.domains.verify_interval_s

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start checking (a no-op when the interval is 0 or it runs already)."""
        if self._task is not None or self.interval_s <= 0:
            return
        self._task = asyncio.create_task(self._run(), name="domain-checks")
        _log.info("domain.checks_started", interval_s=self.interval_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.domains.recheck_pending_domains()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("domain.recheck_failed", error=str(exc))
