"""How the proxy rewrites message heads, header by header, as llhttp reports them.

Requests go upstream with hop-by-hop headers removed (and those the ``Connection``
header names), ``X-Forwarded-For/-Proto/-Host`` and ``X-Request-Id`` set (an incoming
request id is kept) and the original ``Host``. Responses come back with their own
hop-by-hop headers removed, re-framed for the client, and the request id added when
the upstream did not set one.

Each header name is lowered once; most are copied straight into the outgoing head
(``parts``: a flat list of name, ``": "``, value, CRLF, joined once).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HOP_BY_HOP",
    "REQUEST_SPECIAL",
    "RESPONSE_SPECIAL",
    "connection_tokens",
    "drop_named",
]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Request headers the proxy looks at (some kept, some replaced, hop-by-hop dropped).
REQUEST_SPECIAL: Final = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"accept",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-request-id",
}

# Response headers the proxy looks at.
RESPONSE_SPECIAL: Final = HOP_BY_HOP | {b"content-length", b"x-request-id"}

_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive", b"upgrade", b""})


def connection_tokens(value: bytes) -> set[bytes]:
    """The header names a ``Connection`` header makes hop-by-hop (rare in practice)."""
    value = value.lower()
    if value in _CONNECTION_OPTIONS:
        return set()
    tokens = {token.strip() for token in value.split(b",")}
    return tokens - _CONNECTION_OPTIONS


def drop_named(parts: list[bytes], names: set[bytes]) -> list[bytes]:
    """``parts`` without the headers called ``names`` (``parts`` holds 4 items per header)."""
    kept: list[bytes] = []
    for i in range(0, len(parts), 4):
        if parts[i].lower() not in names:
            kept += parts[i : i + 4]
    return kept
