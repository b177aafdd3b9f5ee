"""The proxy's own answers: an HTML page for browsers, JSON for everything else.

JSON errors have the shape of the admin API's: ``{"error": {"code", "message"}}``.
Messages name the host that was asked for and nothing else (no other routes, no
upstream addresses).
"""

from __future__ import annotations

import html
import json
from email.utils import formatdate

from mastra_admin.core.routing import error_page, status_reason

__all__ = ["error_response"]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    accept: bytes,
    request_id: bytes,
    close: bool,
    head_only: bool = False,
) -> bytes:
    """A complete HTTP/1.1 response (head and body) for an error the proxy answers
    itself; only the head for a ``HEAD`` request."""
    rid = request_id.decode("latin-1")
    if b"text/html" in accept:
        content_type = b"text/html; charset=utf-8"
        footer = (
            f"MastraAdmin router &middot; <code>{html.escape(code)}</code> &middot;\n"
            f"request <code>{html.escape(rid)}</code>"
        )
        body = error_page(status, status_reason(status), message, footer).encode()
    else:
        content_type = b"application/json"
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        b"HTTP/1.1 %d %s\r\n"
        b"Content-Type: %s\r\n"
        b"Content-Length: %d\r\n"
        b"Cache-Control: no-store\r\n"
        b"Date: %s\r\n"
        b"X-Request-Id: %s\r\n"
        b"%s\r\n"
    ) % (
        status,
        status_reason(status).encode(),
        content_type,
        len(body),
        formatdate(usegmt=True).encode(),
        request_id,
        b"Connection: close\r\n" if close else b"",
    )
    return head if head_only else head + body
