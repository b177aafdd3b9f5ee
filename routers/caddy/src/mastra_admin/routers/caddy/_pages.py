"""The edge's own answers (no route, stopped deployment, upstream failure) as Caddy
handlers: an HTML page for browsers, JSON for everything else.

JSON errors have the shape of the admin API's (``{"error": {"code", "message"}}``) and
of the local router's. Messages name the host that was asked for (Caddy's
``{http.request.host}``, which Go has already checked holds no quote or angle
bracket) and nothing else: no other routes, no upstream addresses.
"""

from __future__ import annotations

import json
from typing import Any

from mastra_admin.core.routing import error_page, status_reason

__all__ = ["error_handlers", "status_error_handlers"]

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


def _responses(status: int | str, title: str, code: str, message: str) -> list[dict[str, Any]]:
    page = error_page(status, title, message, f"MastraAdmin edge &middot; <code>{code}</code>")
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
    return [
        {"handler": "subroute", "routes": _responses(status, status_reason(status), code, message)}
    ]


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
