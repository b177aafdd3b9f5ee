"""Asking DNS about custom domains: the one module that queries nameservers outside the
platform (dnspython's async resolver).

It reads TXT records and tells three answers apart, because they mean different
things to the person waiting for a domain: the name does not exist (yet), it exists
without a TXT record, or it holds these values. A DNS server that cannot be reached,
fails (SERVFAIL, REFUSED) or does not answer in time is ``DnsUnavailable`` (HTTP 503):
nothing was learnt, so nothing about the domain may change.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import structlog

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.settings import DomainSettings

__all__ = ["DnsUnavailable", "DomainDns", "TxtLookup"]

_log = structlog.get_logger("mastra_admin.core.domain_dns")

RETRY_AFTER_S = 30
"""What a 503 of a failed lookup tells the client to wait."""


class DnsUnavailable(Unavailable):
    """DNS could not be asked: no nameserver reachable, none answered in time, or all
    failed."""

    code = "dns_unavailable"


@dataclass(frozen=True)
class TxtLookup:
    """What DNS said about the TXT records of ``name``."""

    name: str
    exists: bool
    """False: the name does not exist (NXDOMAIN)."""
    values: tuple[str, ...] = ()
    """Each TXT record's strings joined (long values are split into 255-byte strings
    on the wire), decoded as UTF-8."""


class DomainDns:
    """TXT lookups through ``settings.resolver`` (or the system's resolver), each
    bounded by ``settings.resolver_timeout_s``. No cache: every check asks again."""

    def __init__(self, settings: DomainSettings) -> None:
        self.settings = settings

    @property
    def nameservers(self) -> list[str]:
        """The nameservers asked, as ``address:port`` (empty: the system's)."""
        return [f"{host}:{port}" for host, port in self.settings.nameservers()]

    def _resolver(self) -> dns.asyncresolver.Resolver:
        servers = self.settings.nameservers()
        try:
            resolver = dns.asyncresolver.Resolver(configure=not servers)
        except dns.resolver.NoResolverConfiguration:
            raise DnsUnavailable(
                "this machine has no DNS resolver configured: set domains.resolver",
                details={"retry_after": RETRY_AFTER_S},
            ) from None
        if servers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in servers
            ]
        resolver.lifetime = self.settings.resolver_timeout_s
        resolver.timeout = self.settings.resolver_timeout_s
        resolver.cache = None
        return resolver

    async def txt(self, name: str) -> TxtLookup:
        """The TXT records at ``name`` (an absolute name; no search domains apply)."""
        where = ", ".join(self.nameservers) or "the system resolver"
        details = {"name": name, "nameservers": self.nameservers, "retry_after": RETRY_AFTER_S}
        try:
            answer = await self._resolver().resolve(
                dns.name.from_text(name), dns.rdatatype.TXT, search=False
            )
        except dns.resolver.NXDOMAIN:
            return TxtLookup(name, exists=False)
        except dns.resolver.NoAnswer:
            return TxtLookup(name, exists=True)
        except dns.exception.Timeout:
            _log.warning("domain.dns_timeout", name=name, nameservers=where)
            raise DnsUnavailable(
                f"no answer from DNS within {self.settings.resolver_timeout_s:g} s ({where}):"
                " the nameservers are unreachable or slow; the domain was not checked, try"
                " again later",
                details=details,
            ) from None
        except dns.resolver.NoNameservers as exc:
            _log.warning("domain.dns_failed", name=name, nameservers=where, error=str(exc))
            raise DnsUnavailable(
                f"no DNS server could answer ({where}): the domain was not checked; try"
                " again later",
                details={**details, "reason": _first_error(exc)},
            ) from None
        except dns.exception.DNSException as exc:
            _log.warning("domain.dns_failed", name=name, nameservers=where, error=str(exc))
            raise DnsUnavailable(
                f"DNS could not be asked ({where}): the domain was not checked; try again later",
                details={**details, "reason": type(exc).__name__},
            ) from None
        values: list[str] = []
        for record in answer:
            strings: tuple[bytes, ...] = getattr(record, "strings", ())
            values.append(b"".join(strings).decode("utf-8", errors="replace"))
        return TxtLookup(name, exists=True, values=tuple(values))


def _first_error(exc: dns.resolver.NoNameservers) -> str:
    """What the first nameserver said, in a few words (``connection refused``,
    ``SERVFAIL``)."""
    errors = exc.kwargs.get("errors") or []
    if not errors:
        return "no answer"
    server, _tcp, _port, error = errors[0][:4]
    what = (str(error) or type(error).__name__) if isinstance(error, Exception) else str(error)
    return f"{server}: {what}"[:200]
