"""Host names a team may claim as custom domains, and the one form they are kept in.

A host name comes from a person (or a script) and ends up in DNS queries, TLS
certificates and the edge router's configuration, so it is checked as hostile input
and stored as DNS has it: lowercase, international labels as A-labels (``xn--``,
IDNA 2008), no trailing dot. Showing the A-label back is also what defends against
homographs: ``apple.com`` spelt with a Cyrillic ``a`` (U+0430) is kept and shown as
``xn--pple-43d.com``.

Every refusal is an ``InvalidHostname`` whose message is one fixed sentence per rule
(never an echo of the input) and whose ``details["reason"]`` names the rule.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable

import idna

from mastra_admin.core.errors import InvalidInput

__all__ = [
    "HOSTNAME_MAX_LENGTH",
    "HOSTNAME_PATTERN",
    "HOSTNAME_REASONS",
    "RESERVED_TLDS",
    "VERIFICATION_LABEL",
    "InvalidHostname",
    "domain_of",
    "normalise_hostname",
    "verification_name",
]

VERIFICATION_LABEL = "_mastra-admin"
"""The label under a custom domain where its TXT record proves who owns it."""

HOSTNAME_MAX_LENGTH = 253 - len(VERIFICATION_LABEL) - 1
"""239: DNS names have at most 253 characters, and the verification record's name
(``_mastra-admin.{hostname}``) must be one too."""

RESERVED_TLDS = (
    "alt",
    "arpa",
    "corp",
    "example",
    "home",
    "internal",
    "intranet",
    "invalid",
    "lan",
    "local",
    "localdomain",
    "localhost",
    "onion",
    "private",
    "test",
)
"""Top-level domains for private or special use (RFC 6761, 6762, 7686, 9476, ICANN's
``.internal`` and the names it will never delegate): nobody can prove in public DNS that
they own a name under one, and the router must never be told to serve one."""

HOSTNAME_REASONS: dict[str, str] = {
    "empty": "hostname: give a host name, such as shop.example.com",
    "too_long": (
        f"hostname: a custom domain has at most {HOSTNAME_MAX_LENGTH} characters"
        f" ({253} with the {VERIFICATION_LABEL}. label of its TXT record), international"
        " labels counted in their xn-- form"
    ),
    "invisible_character": "hostname: contains a space, control or invisible character",
    "wildcard": "hostname: wildcard host names are not supported: add each host name on its own",
    "ip_address": (
        "hostname: an IP address (or a name ending in a number) is not a domain: add a"
        " domain name that points at the platform"
    ),
    "not_a_hostname": "hostname: give the host name alone, without a scheme, port or path",
    "underscore": "hostname: '_' is not allowed in a host name (letters, digits and '-' only)",
    "empty_label": "hostname: has an empty label (two dots in a row, or a dot at the start)",
    "single_label": "hostname: needs at least two labels, such as example.com",
    "label_too_long": (
        "hostname: a label (the part between two dots) has at most 63 characters,"
        " international labels counted in their xn-- form"
    ),
    "label_characters": (
        "hostname: a label holds letters, digits and '-' only, and neither starts nor ends with '-'"
    ),
    "idna": "hostname: is not a valid international host name (IDNA 2008)",
    "reserved": (
        "hostname: is under a domain reserved for private or special use (localhost, .local,"
        " .internal, .test and the like)"
    ),
    "platform_domain": (
        "hostname: is the platform's own domain or under it: deployments get those host"
        " names without asking"
    ),
}
"""The message of each refusal, by ``details["reason"]``."""


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


_CHAR = r"0-9A-Za-z\u00a1-\ud7ff\ue000-\ufffd"
_LABEL = rf"[{_CHAR}](?:[{_CHAR}-]{{0,61}}[{_CHAR}])?"
HOSTNAME_PATTERN = (
    r"^(?![\s\S]*\.(?:[0-9]+|0[Xx][0-9A-Fa-f]*)\.?$)"  # no numeric last label (an address)
    r"(?![\s\S]*\.(?:" + "|".join(_any_case(t) for t in RESERVED_TLDS) + r")\.?$)"
    rf"(?:{_LABEL}\.)+{_LABEL}\.?$"
)
"""What the API's document says a host name looks like, as a regex that ECMA-262 and
Python read alike: at least two dot-separated labels of letters, digits, '-' (not at
either end) or non-ASCII characters, an optional trailing dot, no numeric last label,
no reserved top-level domain. ``normalise_hostname`` enforces it and more (IDNA 2008,
lengths in A-label form, the platform's own domains), which no pattern can state."""

_HOSTNAME_RE = re.compile(HOSTNAME_PATTERN)
_LDH = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_URLISH = frozenset(":/\\@?#%")


class InvalidHostname(InvalidInput):
    """A host name that is not one a team may claim; ``details["reason"]`` says why."""

    code = "invalid_hostname"

    def __init__(self, reason: str) -> None:
        super().__init__(HOSTNAME_REASONS[reason], details={"field": "hostname", "reason": reason})
        self.reason = reason


def _invisible(char: str) -> bool:
    """Controls, format characters (zero-width, bidi overrides, soft hyphen),
    separators (spaces), surrogates, private use and unassigned code points."""
    return unicodedata.category(char)[0] in "CZ"


def _refuse_shape(text: str) -> None:
    """The specific rule a host name as sent breaks, if it breaks one of the rules of
    its shape; nothing when it has the shape of a host name."""
    if not text:
        raise InvalidHostname("empty")
    if any(_invisible(char) for char in text):
        raise InvalidHostname("invisible_character")
    if "*" in text:
        raise InvalidHostname("wildcard")
    bare = text[:-1] if text.endswith(".") else text
    if text.startswith("["):
        raise InvalidHostname("ip_address")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        raise InvalidHostname("ip_address")
    if any(char in _URLISH for char in text):
        raise InvalidHostname("not_a_hostname")
    if "_" in text:
        raise InvalidHostname("underscore")
    if len(bare) > HOSTNAME_MAX_LENGTH:
        raise InvalidHostname("too_long")
    labels = bare.split(".")
    if any(not label for label in labels):
        raise InvalidHostname("empty_label")
    if len(labels) < 2:
        raise InvalidHostname("reserved" if bare.lower() in RESERVED_TLDS else "single_label")
    if _NUMERIC.match(labels[-1].lower()):
        raise InvalidHostname("ip_address")
    for label in labels:
        if label.isascii():
            if len(label) > 63:
                raise InvalidHostname("label_too_long")
            if not _LDH.match(label.lower()):
                raise InvalidHostname("label_characters")
    if labels[-1].lower() in RESERVED_TLDS:
        raise InvalidHostname("reserved")
    if not _HOSTNAME_RE.fullmatch(text):
        raise InvalidHostname("label_characters")


def _a_label(label: str) -> str:
    """A label as DNS has it (lowercase ASCII; ``xn--`` for an international one)."""
    try:
        if label.isascii():
            # An A-label as sent must be one IDNA 2008 would have made.
            if label.startswith("xn--") and idna.alabel(idna.ulabel(label)).decode() != label:
                raise InvalidHostname("idna")
            return label
        return idna.alabel(label).decode("ascii")
    except idna.IDNAError:
        raise InvalidHostname("idna") from None


def domain_of(name: str) -> str:
    """A domain from the platform's own settings (base domain, edge name) in the form
    host names are compared in; best effort, never an error."""
    text = name.strip().rstrip(".").lower()
    try:
        return ".".join(_a_label(label) for label in text.split(".") if label)
    except InvalidHostname:
        return text


def normalise_hostname(value: str, *, platform_domains: Iterable[str] = ()) -> str:
    """The host name a team asked for, checked and in its stored form, or
    ``InvalidHostname``.

    Accepted: any case, one trailing dot, international labels (IDNA 2008, kept as
    A-labels). Refused: IP addresses (and names ending in a number, which browsers
    read as one), wildcards, ``_``, empty labels, single labels, labels over 63 and
    names over ``HOSTNAME_MAX_LENGTH`` characters (in A-label form), spaces, control
    and invisible characters, anything under a reserved top-level domain
    (``RESERVED_TLDS``), and ``platform_domains`` and everything under them.
    """
    text = value if isinstance(value, str) else ""
    _refuse_shape(text)
    bare = unicodedata.normalize("NFC", text.rstrip(".")).lower()
    labels = [_a_label(label) for label in bare.split(".")]
    if any(len(label) > 63 for label in labels):
        raise InvalidHostname("label_too_long")
    hostname = ".".join(labels)
    if len(hostname) > HOSTNAME_MAX_LENGTH:
        raise InvalidHostname("too_long")
    if labels[-1] in RESERVED_TLDS:
        raise InvalidHostname("reserved")
    for domain in platform_domains:
        mine = domain_of(domain)
        if mine and (hostname == mine or hostname.endswith("." + mine)):
            raise InvalidHostname("platform_domain")
    return hostname


def verification_name(hostname: str) -> str:
    """Where the TXT record that proves ownership of ``hostname`` lives."""
    return f"{VERIFICATION_LABEL}.{hostname}"
