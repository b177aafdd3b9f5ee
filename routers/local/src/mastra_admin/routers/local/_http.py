"""HTTP/1.1 message heads as the proxy rewrites them.

Requests go upstream with hop-by-hop headers removed (and those the ``Connection``
header names), ``X-Forwarded-For/-Proto/-Host`` and ``X-Request-Id`` set (an incoming
request id is kept) and the original ``Host``. Responses come back with their own
hop-by-hop headers removed, re-framed for the client, and the request id added when
the upstream did not set one.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HOP_BY_HOP",
    "RequestScan",
    "ResponseScan",
    "request_head",
    "response_head",
    "scan_request",
    "scan_response",
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
# Set by the proxy itself on the way upstream.
_REPLACED: Final = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}
)
_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive", b"upgrade", b""})
_MAX_REQUEST_ID: Final = 128

Headers = list[tuple[bytes, bytes]]


class RequestScan:
    """What the proxy needs to know about a request's headers, found in one pass."""

    __slots__ = (
        "accept",
        "chunked",
        "drop",
        "expect_continue",
        "forwarded_for",
        "has_body",
        "host",
        "hosts",
        "request_id",
        "upgrade",
    )

    def __init__(self, headers: Headers) -> None:
        self.host: bytes | None = None
        self.hosts = 0
        self.request_id: bytes | None = None
        self.chunked = False
        self.accept = b""
        self.upgrade: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.has_body = False
        self.expect_continue = False
        drop: set[bytes] | None = None
        for name, value in headers:
            n = name.lower()
            if n == b"host":
                self.host = value
                self.hosts += 1
            elif n == b"x-request-id":
                if 0 < len(value) <= _MAX_REQUEST_ID:
                    self.request_id = value
            elif n == b"transfer-encoding":
                self.chunked = self.chunked or b"chunked" in value.lower()
                self.has_body = True
            elif n == b"content-length":
                self.has_body = self.has_body or value.strip() not in (b"0", b"")
            elif n == b"expect":
                self.expect_continue = value.strip().lower() == b"100-continue"
            elif n == b"accept":
                self.accept = value
            elif n == b"upgrade":
                self.upgrade = value
            elif n == b"x-forwarded-for":
                seen: bytes | None = self.forwarded_for
                self.forwarded_for = value if seen is None else seen + b", " + value
            elif n == b"connection":
                for token in value.lower().split(b","):
                    token = token.strip()
                    if token not in _CONNECTION_OPTIONS:
                        drop = drop or set(HOP_BY_HOP)
                        drop.add(token)
        self.drop: frozenset[bytes] | set[bytes] = drop or HOP_BY_HOP


scan_request = RequestScan


def request_head(
    method: bytes,
    path: bytes,
    headers: Headers,
    scan: RequestScan,
    *,
    peer: bytes,
    scheme: bytes,
    request_id: bytes,
    upgrade: bool,
) -> bytes:
    """The head of the request as sent upstream (always HTTP/1.1)."""
    drop = scan.drop
    parts = [method, b" ", path, b" HTTP/1.1\r\n"]
    append = parts.append
    for name, value in headers:
        n = name.lower()
        if n in drop or n in _REPLACED:
            continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    prior = scan.forwarded_for
    append(
        b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Host: %s\r\n"
        b"X-Request-Id: %s\r\n"
        % (prior + b", " + peer if prior else peer, scheme, scan.host or b"", request_id)
    )
    if scan.chunked:
        append(b"Transfer-Encoding: chunked\r\n")
    if upgrade and scan.upgrade is not None:
        append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % scan.upgrade)
    append(b"\r\n")
    return b"".join(parts)


class ResponseScan:
    """Framing and identity facts of an upstream response's headers."""

    __slots__ = ("chunked", "content_length", "drop", "request_id", "upgrade")

    def __init__(self, headers: Headers) -> None:
        self.content_length = False
        self.chunked = False
        self.request_id = False
        self.upgrade: bytes | None = None
        drop: set[bytes] | None = None
        for name, value in headers:
            n = name.lower()
            if n == b"content-length":
                self.content_length = True
            elif n == b"transfer-encoding":
                self.chunked = self.chunked or b"chunked" in value.lower()
            elif n == b"x-request-id":
                self.request_id = True
            elif n == b"upgrade":
                self.upgrade = value
            elif n == b"connection":
                for token in value.lower().split(b","):
                    token = token.strip()
                    if token not in _CONNECTION_OPTIONS:
                        drop = drop or set(HOP_BY_HOP)
                        drop.add(token)
        self.drop: frozenset[bytes] | set[bytes] = drop or HOP_BY_HOP


scan_response = ResponseScan


def response_head(
    status: int,
    reason: bytes,
    headers: Headers,
    scan: ResponseScan,
    *,
    request_id: bytes,
    chunked: bool,
    close: bool,
    upgrade: bool = False,
) -> bytes:
    """The head of the response as sent to the client.

    ``chunked``: the body is re-framed with chunked encoding (the upstream's was
    chunked or close-delimited and the client speaks HTTP/1.1). ``close``: the
    client connection ends after this response.
    """
    drop = scan.drop
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    append = parts.append
    for name, value in headers:
        if name.lower() in drop:
            continue
        if chunked and name.lower() == b"content-length":
            continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if not scan.request_id:
        append(b"X-Request-Id: %s\r\n" % request_id)
    if upgrade and scan.upgrade is not None:
        append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % scan.upgrade)
    elif chunked:
        append(b"Transfer-Encoding: chunked\r\n")
    if close:
        append(b"Connection: close\r\n")
    append(b"\r\n")
    return b"".join(parts)
