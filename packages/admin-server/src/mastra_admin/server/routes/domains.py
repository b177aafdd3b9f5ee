"""Custom domains of deployments: add, list, verify (a DNS check), remove.

Not served from the response cache: a domain's view carries the router's certificate
state, which no stored row holds.
"""

from __future__ import annotations

from mastra_admin.core.inputs import AddDomain
from mastra_admin.core.views import DomainSupport, DomainView
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["endpoints"]


async def list_project_domains(call: Call) -> list[DomainView]:
    return await call.admin.list_project_domains(call.actor, call.params["project_id"])


async def list_deployment_domains(call: Call) -> list[DomainView]:
    return await call.admin.list_domains(call.actor, call.params["deployment_id"])


async def add_domain(call: Call) -> DomainView:
    return await call.admin.add_domain(call.actor, call.params["deployment_id"], call.body)


async def domain_support(call: Call) -> DomainSupport:
    return await call.admin.domain_support(call.actor, call.params["deployment_id"])


async def get_domain(call: Call) -> DomainView:
    return await call.admin.get_domain(call.actor, call.params["domain_id"])


async def verify_domain(call: Call) -> DomainView:
    return await call.admin.verify_domain(call.actor, call.params["domain_id"])


async def remove_domain(call: Call) -> None:
    await call.admin.remove_domain(call.actor, call.params["domain_id"])


D = "/api/deployments/{deployment_id}"
DOMAIN = "/api/domains/{domain_id}"

endpoints = [
    Endpoint(
        "GET",
        "/api/projects/{project_id}/domains",
        list_project_domains,
        "The custom domains of a project's deployments, by host name",
        "domains",
        permission="domain:read",
        response=list[DomainView],
    ),
    Endpoint(
        "GET",
        f"{D}/domains",
        list_deployment_domains,
        "A deployment's custom domains, by host name",
        "domains",
        permission="domain:read",
        response=list[DomainView],
    ),
    Endpoint(
        "POST",
        f"{D}/domains",
        add_domain,
        "Add a custom domain (pending until its TXT record is verified)",
        "domains",
        permission="domain:manage",
        body=AddDomain,
        response=DomainView,
        status_code=201,
        extra_responses={
            409: "the host name is another deployment's already (domain_taken), the"
            " deployment has the most domains allowed (domain_limit_reached), or the router"
            " serves no custom domains (custom_domains_unsupported)",
            422: "the host name is not one a team may claim (invalid_hostname; details.reason"
            " says which rule)",
        },
    ),
    Endpoint(
        "GET",
        f"{D}/domain-support",
        domain_support,
        "Whether the router serves custom domains and what the caller may do with them",
        "domains",
        permission="domain:read",
        response=DomainSupport,
    ),
    Endpoint(
        "GET",
        DOMAIN,
        get_domain,
        "A custom domain with the DNS records it needs",
        "domains",
        permission="domain:read",
        response=DomainView,
    ),
    Endpoint(
        "POST",
        f"{DOMAIN}/verify",
        verify_domain,
        "Check the domain's TXT record now; a verified domain is served",
        "domains",
        permission="domain:verify",
        response=DomainView,
        extra_responses={503: "DNS could not be asked (dns_unavailable); nothing changed"},
    ),
    Endpoint(
        "DELETE",
        DOMAIN,
        remove_domain,
        "Remove a custom domain; the router stops serving it first",
        "domains",
        permission="domain:manage",
        status_code=204,
    ),
]
