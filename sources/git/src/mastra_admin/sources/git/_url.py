"""Repository URLs as users type them: which ones may reach git, and in what form.

Only https, ssh (URL or scp-like) and local repositories under ``file_base_paths`` pass;
remote helpers, plain http, git://, credentials in the URL, option injection and hosts
on private networks are refused before git ever sees the URL.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from mastra_admin.core.errors import InvalidInput
from mastra_admin.sources.git._errors import GitHostUnreachable
from mastra_admin.sources.git._settings import GitSourceSettings

__all__ = [
    "MAX_URL_LENGTH",
    "RepositoryUrl",
    "Resolver",
    "check_repository_url",
    "is_public_address",
    "redact_url",
    "resolve_host",
]

MAX_URL_LENGTH = 2048

Resolver = Callable[[str], list[str]]
"""Host name to addresses, as text (``socket.getaddrinfo`` by default)."""

Scheme = Literal["https", "ssh", "file", "http"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NETWORK_SCHEMES: dict[str, Scheme] = {"https": "https", "ssh": "ssh", "http": "http"}
_TRANSPORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*::")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP = re.compile(r"(?P<user>[^@/\[\]]+)@(?P<host>\[[^\]/]*\]|[^:/\[\]@]+):(?P<path>.*)", re.S)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_USERINFO = re.compile(r"(?<=//)[^/@]*@")
_SCP_USERINFO = re.compile(r"\A[^/@]*:[^/@]*@")


@dataclass(frozen=True)
class RepositoryUrl:
    """A repository URL that passed ``check_repository_url``.

    ``url`` is what git is given (normalised, never with a credential); ``display`` is
    safe to log and show. ``addresses`` are the addresses ``host`` resolved to when it
    was checked (empty for literal addresses and local repositories); fetches connect
    to these and nothing else, so a DNS answer that changes later cannot redirect git.
    """

    scheme: Scheme
    host: str
    url: str
    display: str
    port: int | None = None
    user: str | None = None
    path: str = ""
    addresses: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"


def redact_url(text: str) -> str:
    """``text`` with any ``user:password@`` removed and control characters escaped, cut
    to a length fit for messages: what error details may carry of a refused URL."""
    text = _USERINFO.sub("***@", text)
    if "://" not in text:
        text = _SCP_USERINFO.sub("***@", text)
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return shown if len(shown) <= 300 else shown[:300] + "…"


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``). Blocking."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address. IPv4 addresses carried inside
    IPv6 ones (mapped, NAT64, 6to4, Teredo) are judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address.teredo is not None and not all(map(is_public_address, address.teredo)):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


class _Check:
    """One URL being checked; ``refuse`` raises with the URL, redacted, in details."""

    def __init__(self, url: str, settings: GitSourceSettings, resolve: Resolver | None) -> None:
        self.url = url
        self.settings = settings
        self.resolve = resolve or resolve_host
        self.shown = redact_url(url)

    def refuse(self, reason: str) -> InvalidInput:
        return InvalidInput(f"repository URL refused: {reason}", details={"url": self.shown})

    # -- the whole URL -----------------------------------------------------------

    def run(self) -> RepositoryUrl:
        url = self.url
        if not url:
            raise self.refuse("it is empty")
        if len(url) > MAX_URL_LENGTH:
            raise self.refuse(f"it is longer than {MAX_URL_LENGTH} characters")
        transport = _TRANSPORT.match(url)
        if transport:
            raise self.refuse(
                f"{transport.group(0)!r} runs a git remote helper; only https://, ssh://, "
                "user@host:path and local paths are allowed"
            )
        if url.startswith("-"):
            raise self.refuse("it starts with '-' and would be read as a git option")
        if any(ch.isspace() or not ch.isprintable() for ch in url):
            raise self.refuse("it contains whitespace or control characters")
        if "\\" in url:
            raise self.refuse("it contains a backslash")
        scheme = _SCHEME.match(url)
        if scheme:
            name = scheme.group(1).lower()
            rest = url[scheme.end() :]
            if name == "file":
                if not rest.startswith("/"):
                    raise self.refuse("a file:// URL names no host: write file:///absolute/path")
                return self.local(rest)
            network = _NETWORK_SCHEMES.get(name)
            if network is not None and (network != "http" or self.insecure_http_allowed(rest)):
                return self.network(network, rest)
            if name == "http":
                raise self.refuse("plain http:// sends everything in clear; use https://")
            if name == "git":
                raise self.refuse(
                    "git:// is neither authenticated nor encrypted; use https:// or ssh://"
                )
            raise self.refuse(f"{name}:// URLs are not allowed; use https:// or ssh://")
        if url.startswith("/"):
            return self.local(url)
        scp = _SCP.fullmatch(url)
        if scp:
            return self.scp(scp.group("user"), scp.group("host"), scp.group("path"))
        raise self.refuse(
            "not a repository URL: use https://host/path, ssh://user@host/path, "
            "user@host:path or an absolute local path"
        )

    def insecure_http_allowed(self, rest: str) -> bool:
        authority = rest.partition("/")[0].rpartition("@")[2]
        if authority.startswith("["):
            host = authority[1:].partition("]")[0]
        else:
            host = authority.partition(":")[0]
        allowed = {entry.strip("[]").lower() for entry in self.settings.allow_insecure_http_hosts}
        return host.lower() in allowed

    # -- https://, http://, ssh:// ---------------------------------------------------

    def network(self, scheme: Scheme, rest: str) -> RepositoryUrl:
        if "?" in rest or "#" in rest:
            raise self.refuse("query strings and fragments are not allowed")
        authority, slash, path = rest.partition("/")
        path = slash + path
        userinfo, at, hostport = authority.rpartition("@")
        user: str | None = None
        if at:
            if scheme != "ssh" or ":" in userinfo:
                raise self.refuse(
                    "it carries credentials; give the token or key as the credential, "
                    "never in the URL"
                )
            user = self.user(userinfo)
        host, port = self.host_and_port(hostport)
        if scheme == "ssh" and "%" in path:
            raise self.refuse("'%' escapes are not allowed in ssh URLs")
        self.repository_path(unquote(path) if scheme != "ssh" else path)
        addresses = self.addresses(host)
        bracketed = f"[{host}]" if ":" in host else host
        authority = (f"{user}@" if user else "") + bracketed + (f":{port}" if port else "")
        normalised = f"{scheme}://{authority}{path}"
        return RepositoryUrl(
            scheme=scheme,
            host=host,
            port=port,
            user=user,
            path=path,
            url=normalised,
            display=normalised,
            addresses=addresses,
        )

    def scp(self, user: str, host_text: str, path: str) -> RepositoryUrl:
        if ":" in user:
            raise self.refuse(
                "it carries credentials; give the key as the credential, never in the URL"
            )
        user = self.user(user)
        host = self.host(host_text)
        self.repository_path(path)
        addresses = self.addresses(host)
        bracketed = f"[{host}]" if ":" in host else host
        normalised = f"{user}@{bracketed}:{path}"
        return RepositoryUrl(
            scheme="ssh",
            host=host,
            user=user,
            path=path,
            url=normalised,
            display=normalised,
            addresses=addresses,
        )

    def user(self, text: str) -> str:
        if text.startswith("-"):
            raise self.refuse("the user name starts with '-' and would be read as an ssh option")
        if not _USER.fullmatch(text):
            raise self.refuse("the user name may hold only letters, digits, '.', '_' and '-'")
        return text

    def host_and_port(self, text: str) -> tuple[str, int | None]:
        if text.startswith("["):
            inside, bracket, after = text[1:].partition("]")
            if not bracket:
                raise self.refuse("an IPv6 address is missing its closing ']'")
            host, port_text = self.host(f"[{inside}]"), after
        else:
            host_text, _, port_text = text.partition(":")
            port_text = ":" + port_text if ":" in text else ""
            host = self.host(host_text)
        if not port_text:
            return host, None
        digits = port_text[1:]
        if not port_text.startswith(":") or not _PORT.fullmatch(digits):
            raise self.refuse("the port is not a number")
        port = int(digits)
        if not 1 <= port <= 65535:
            raise self.refuse("the port is not between 1 and 65535")
        return host, port

    def host(self, text: str) -> str:
        """The host, lower case and without brackets, after checking literal addresses."""
        if text.startswith("["):
            inside = text[1:-1] if text.endswith("]") else ""
            if "%" in inside:
                raise self.refuse("IPv6 zone ids are not allowed")
            try:
                address: IPAddress = ipaddress.IPv6Address(inside)
            except ValueError:
                raise self.refuse("the host in brackets is not an IPv6 address") from None
            self.check_address(address, literal=True)
            return str(address)
        if not text:
            raise self.refuse("it names no host")
        if text.startswith("-"):
            raise self.refuse("the host starts with '-' and would be read as an option")
        if not text.isascii():
            raise self.refuse("the host is not ASCII; write an international name in its xn-- form")
        host = text.lower().removesuffix(".")
        try:
            # inet_aton also reads 127.1, 0x7f.0.0.1 and 2130706433: hosts many tools
            # would take for addresses, so they are judged as addresses.
            packed = socket.inet_aton(host)
        except OSError:
            pass
        else:
            ipv4 = ipaddress.IPv4Address(packed)
            self.check_address(ipv4, literal=True)
            return str(ipv4)
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise self.refuse("the host is not a valid host name")
        if labels[-1].isdigit():
            raise self.refuse("the host is neither a host name nor an IPv4 address")
        return host

    def check_address(self, address: IPAddress, *, literal: bool) -> None:
        if self.settings.allow_private_addresses or is_public_address(address):
            return
        how = "is" if literal else "resolves to"
        raise self.refuse(
            f"the host {how} {address}, a loopback, private, link-local, multicast or "
            "reserved address (set allow_private_addresses for git servers on your network)"
        )

    def addresses(self, host: str) -> tuple[str, ...]:
        """The checked addresses of a host name (none for literal addresses)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return ()
        try:
            answers = self.resolve(host)
        except (OSError, UnicodeError) as exc:
            raise GitHostUnreachable(
                f"the host {host} does not resolve", details={"url": self.shown, "host": host}
            ) from exc
        found: list[str] = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer.partition("%")[0])
            except ValueError:
                raise self.refuse(
                    f"the host resolves to {answer!r}, which is not an address"
                ) from None
            self.check_address(address, literal=False)
            if str(address) not in found:
                found.append(str(address))
        if not found:
            raise GitHostUnreachable(
                f"the host {host} does not resolve", details={"url": self.shown, "host": host}
            )
        return tuple(found)

    def repository_path(self, path: str) -> None:
        if not path.strip("/"):
            raise self.refuse("it names no repository path")
        if any(not ch.isprintable() for ch in path):
            raise self.refuse("its path contains control characters")
        segments = path.split("/")
        if any(segment.startswith("-") for segment in segments):
            raise self.refuse("a path segment starts with '-' and could be read as an option")
        if ".." in segments:
            raise self.refuse("'..' path segments are not allowed")

    # -- local repositories ----------------------------------------------------------

    def local(self, path: str) -> RepositoryUrl:
        bases = self.settings.file_base_paths
        if not bases:
            raise self.refuse("local repositories are refused unless file_base_paths allows them")
        if "%" in path:
            raise self.refuse("'%' is not allowed in a local path")
        if path.startswith("//"):
            raise self.refuse("a local path starts with a single '/'")
        if ".." in path.split("/"):
            raise self.refuse("'..' is not allowed in a local path")
        real = os.path.realpath(path)
        if any(ch.isspace() or not ch.isprintable() for ch in real) or "%" in real:
            raise self.refuse("the real path contains whitespace, control characters or '%'")
        for base in bases:
            root = os.path.realpath(os.path.expanduser(base))
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return RepositoryUrl(
                    scheme="file", host="", path=real, url=f"file://{real}", display=real
                )
        raise self.refuse("the repository is not under any of file_base_paths")


def check_repository_url(
    url: str, settings: GitSourceSettings, *, resolve: Resolver | None = None
) -> RepositoryUrl:
    """Check a repository URL typed by a user and give the form git may be handed.

    Accepts ``https://host/path``, ``ssh://[user@]host[:port]/path``, scp-like
    ``user@host:path``, and ``file:///path`` or ``/path`` when the real path (symlinks
    resolved) lies under one of ``settings.file_base_paths``. Host names are resolved
    with ``resolve`` (``socket.getaddrinfo`` by default: blocking, call it from a
    thread in async code); every address must be public unless
    ``allow_private_addresses``. Raises ``InvalidInput`` with the reason, and
    ``details["url"]`` the URL with any credential removed; ``GitHostUnreachable``
    when the host does not resolve.
    """
    if not isinstance(url, str):
        raise InvalidInput("repository URL refused: it is not text", details={"url": ""})
    return _Check(url, settings, resolve).run()
