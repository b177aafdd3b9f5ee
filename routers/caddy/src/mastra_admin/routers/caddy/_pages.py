"""The edge's own answers (no route, stopped deployment, upstream failure) as Caddy
handlers: an HTML page for browsers, JSON for everything else.

JSON errors have the shape of the admin API's (``{"error": {"code", "message"}}``) and
of the local router's. Messages name the host that was asked for (Caddy's
``{http.request.host}``, which Go has already checked holds no quote or angle
bracket) and nothing else: no other routes, no upstream addresses.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus
from typing import Any

__all__ = ["error_handlers", "status_error_handlers"]

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
<p><small>MastraAdmin edge &middot; <code>{code}</code></small></p>
</main>
</body>
</html>
"""
_PLACEHOLDERS = ("{http.request.host}", "{http.error.status_code}")
"""The only placeholders Caddy may expand in a body; every other brace is literal."""

_HTML_ACCEPT = [{"header": {"Accept": ["*text/html*"]}}]
_NO_STORE = {"Cache-Control": ["no-store"], "X-Content-Type-Options": ["nosniff"]}


def _caddy_literal(text: str) -> str:
    """``text`` as a Caddy body: every brace escaped (``\\{``), so that CSS and JSON
    are never read as placeholders, except those of ``_PLACEHOLDERS``."""
    out = text.replace("{", "\\{").replace("}", "\\}")
    for placeholder in _PLACEHOLDERS:
        out = out.replace(placeholder.replace("{", "\\{").replace("}", "\\}"), placeholder)
    return out


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _responses(status: int | str, title: str, code: str, message: str) -> list[dict[str, Any]]:
    page = _PAGE.format(
        status=status, title=html.escape(title), message=html.escape(message), code=code
    )
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    return [
        {
            "match": _HTML_ACCEPT,
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": status,
                    "headers": {"Content-Type": ["text/html; charset=utf-8"], **_NO_STORE},
                    "body": _caddy_literal(page),
                }
            ],
            "terminal": True,
        },
        {
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": status,
                    "headers": {"Content-Type": ["application/json"], **_NO_STORE},
                    "body": _caddy_literal(body),
                }
            ],
            "terminal": True,
        },
    ]


def error_handlers(status: int, code: str, message: str) -> list[dict[str, Any]]:
    """A ``subroute`` handler answering ``status`` itself (``message`` may name
    ``{http.request.host}``)."""
    return [{"handler": "subroute", "routes": _responses(status, _reason(status), code, message)}]


def status_error_handlers() -> list[dict[str, Any]]:
    """The server's error routes: what a client sees when the upstream fails (Caddy's
    own 502 or 504 otherwise has an empty body)."""
    return [
        {
            "handler": "subroute",
            "routes": _responses(
                "{http.error.status_code}",
                "Upstream error",
                "upstream_error",
                "The deployment at {http.request.host} did not answer.",
            ),
        }
    ]
