"""The proxy's own answers: an HTML page for browsers, JSON for everything else.

JSON errors have the shape of the admin API's: ``{"error": {"code", "message"}}``.
Messages name the host that was asked for and nothing else (no other routes, no
upstream addresses).
"""

from __future__ import annotations

import html
import json
from email.utils import formatdate
from http import HTTPStatus

__all__ = ["error_response"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{status} {title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; color: #1f2328; background: #f6f8fa;
       margin: 0; display: grid; place-items: center; min-height: 100vh; }}
main {{ background: #fff; border: 1px solid #d0d7de; border-radius: 8px;
        padding: 2rem 2.5rem; max-width: 36rem; }}
h1 {{ font-size: 1.25rem; margin: 0 0 .5rem; }}
p {{ margin: .5rem 0; }}
small {{ color: #656d76; }}
</style>
</head>
<body>
<main>
<h1>{status} &middot; {title}</h1>
<p>{message}</p>
<p><small>MastraAdmin router &middot; <code>{code}</code> &middot;
request <code>{request_id}</code></small></p>
</main>
</body>
</html>
"""


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
        body = _PAGE.format(
            status=status,
            title=html.escape(_reason(status)),
            message=html.escape(message),
            code=html.escape(code),
            request_id=html.escape(rid),
        ).encode()
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
        _reason(status).encode(),
        content_type,
        len(body),
        formatdate(usegmt=True).encode(),
        request_id,
        b"Connection: close\r\n" if close else b"",
    )
    return head if head_only else head + body
