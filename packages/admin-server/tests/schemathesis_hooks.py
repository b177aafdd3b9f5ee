"""Schemathesis hooks for the API's property-based tests (``test_schemathesis.py`` here,
``tests/test_api_schemathesis.py`` on the real platform); schemathesis loads this file
(``SCHEMATHESIS_HOOKS``), it is no test of its own.

The OpenAPI document states every rule on a request that JSON Schema can (patterns,
enums, ``anyOf`` between fields). The rules below it cannot: they depend on the clock,
on the stored state, on the path or on another parameter. A request breaking one is
answered 422 with exactly the message listed (or with field errors all of which are
listed). Schemathesis generates such requests as schema-valid, so its
``positive_data_acceptance`` check (ST202) would report them: that one check drops
that one answer, on that one operation, and nothing else. Any other 422 to a
schema-valid request still fails the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from mastra_admin.core.hostnames import HOSTNAME_REASONS

_CLOCK = "expires_at is compared with the clock"
_BOUNDS = (
    "JSON Schema bounds no date-time (formatMinimum is an extension no generator reads):"
    " the observability stores hold 1970-2261"
)
_ORDER = "JSON Schema cannot compare two parameters"
_SOURCE = (
    "which settings `source` takes is the configured source's own schema (a git source's"
    " repository URL, say); the document is the same for every source, and a source that"
    " lists its projects takes none"
)
_LISTS = ("traces", "spans", "logs", "metrics", "scores", "feedback")
_IDNA = (
    "IDNA 2008 decides which non-ASCII characters a label may hold, and in which"
    " combinations (scripts, joiners, right-to-left labels); no pattern can"
)
_HOSTNAME_RULES = {
    "invisible_character": "Unicode's invisible and format characters are spread over"
    " the non-ASCII range the pattern allows; the core names them by their category",
    "too_long": "lengths count the xn-- form of international labels (and the trailing"
    " dot, which maxLength allows, is not counted)",
    "label_too_long": "lengths count the xn-- form of international labels",
    "idna": _IDNA,
    "reserved": "a non-ASCII character can lowercase into ASCII (the Kelvin sign to k)",
    "platform_domain": "the platform's own domains are settings (base_domain, public_url,"
    " domains.edge_cname, domains.blocked)",
}

UNSTATED_RULES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/teams/{team_id}/projects"): {
        f"projects of the {source!r} source are picked by source_id": _SOURCE
        for source in ("fake", "local")
    },
    ("POST", "/api/me/tokens"): {
        "the expiry must be in the future": _CLOCK,
    },
    ("POST", "/api/projects/{project_id}/tokens"): {
        "the expiry must be in the future": _CLOCK,
    },
    ("POST", "/api/projects/{project_id}/deployments"): {
        "the expiry must be in the future": _CLOCK,
    },
    ("PATCH", "/api/deployments/{deployment_id}"): {
        "the expiry must be in the future": _CLOCK,
        "only preview deployments expire": "depends on the stored deployment's type",
        "a preview deployment must expire": "depends on the stored deployment's type",
    },
    ("POST", "/api/deployments/{deployment_id}/domains"): {
        HOSTNAME_REASONS[reason]: why for reason, why in _HOSTNAME_RULES.items()
    },
    ("POST", "/api/teams/{team_id}/role-assignments"): {
        "a team-scoped assignment must name this team": "resource_id must equal the path's"
        " team_id: JSON Schema cannot compare the body with the path",
    },
    ("POST", "/api/teams/{team_id}/role-assignments/remove"): {
        "a team-scoped assignment must name this team": "resource_id must equal the path's"
        " team_id: JSON Schema cannot compare the body with the path",
    },
    **{
        ("GET", f"/api/projects/{{project_id}}/{name}"): {
            "start must not be after end": _ORDER,
            "must be between 1970-01-01 and 2261-12-31": _BOUNDS,
        }
        for name in _LISTS
    },
    ("GET", "/api/projects/{project_id}/timeseries"): {
        "start must be before end": _ORDER,
        "too many buckets: widen interval_s": _ORDER,
        "must be between 1970-01-01 and 2261-12-31": _BOUNDS,
    },
}
"""(method, path) -> {the 422's message: why no schema can state the rule}."""


def _messages(response: Any) -> list[str]:
    """The error's message, or those of its field errors when it has them."""
    try:
        error = response.json()["error"]
        fields = error["details"].get("fields")
        if fields:
            return [str(f["message"]).removeprefix("Value error, ") for f in fields]
        return [str(error["message"])]
    except Exception:
        return ["(not the API's error format)"]


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a 422 that names only the operation's unstated rules."""
    if failure.code != "ST202" or response.status_code != 422:
        return True
    rules = UNSTATED_RULES.get((case.operation.method.upper(), case.operation.path), {})
    return not all(message in rules for message in _messages(response))
