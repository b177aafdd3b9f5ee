"""The web UI's pages: one table of paths, each rendered from a Jinja2 template into
a page skeleton that an ES module of the same name fills from the JSON API.

Pages carry no data and need no credentials: the browser holds the API token and
every request for data goes to ``/api`` with it. The server only says which page
this is and which ids the path names (as ``data-*`` attributes on ``<body>``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from mastra_admin.server.oidc import OidcAuthProvider
from mastra_admin.server.version import __version__

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin

__all__ = ["PAGES", "UiPage", "ui_routes"]

STATIC_PREFIX = "/ui/static"


@dataclass(frozen=True)
class UiPage:
    """One page: its path, its module and template name, its title, the part of the
    site it belongs to and the tab it highlights (its own name by default)."""

    path: str
    name: str
    title: str
    section: str = ""
    tab: str = ""
    public: bool = False


PAGES: tuple[UiPage, ...] = (
    UiPage("/sign-in", "signin", "Sign in", public=True),
    UiPage("/auth/callback", "callback", "Signing in", public=True),
    UiPage("/", "teams", "Teams", section="teams"),
    UiPage("/teams/{team_id}", "team_projects", "Projects", section="team"),
    UiPage(
        "/teams/{team_id}/projects/new",
        "project_new",
        "New project",
        section="team",
        tab="team_projects",
    ),
    UiPage("/teams/{team_id}/members", "team_members", "Members", section="team"),
    UiPage("/teams/{team_id}/roles", "team_roles", "Roles", section="team"),
    UiPage("/teams/{team_id}/settings", "team_settings", "Team settings", section="team"),
    UiPage("/projects/{project_id}", "project_deployments", "Deployments", section="project"),
    UiPage("/projects/{project_id}/env", "project_env", "Environment", section="project"),
    UiPage("/projects/{project_id}/tokens", "project_tokens", "API tokens", section="project"),
    UiPage(
        "/projects/{project_id}/routes", "project_routes", "Routes and servers", section="project"
    ),
    UiPage("/projects/{project_id}/traces", "project_traces", "Traces", section="project"),
    UiPage(
        "/projects/{project_id}/traces/{trace_id}",
        "trace",
        "Trace",
        section="project",
        tab="project_traces",
    ),
    UiPage("/projects/{project_id}/logs", "project_logs", "Logs", section="project"),
    UiPage("/projects/{project_id}/metrics", "project_metrics", "Metrics", section="project"),
    UiPage("/projects/{project_id}/scores", "project_scores", "Scores", section="project"),
    UiPage(
        "/projects/{project_id}/settings", "project_settings", "Project settings", section="project"
    ),
    UiPage("/deployments/{deployment_id}", "deployment", "Deployment", section="deployment"),
    UiPage("/builds/{build_id}", "build", "Build", section="deployment"),
    UiPage("/account", "account", "Account", section="account"),
    UiPage("/settings", "settings", "Licence and settings", section="settings"),
)

TEAM_TABS: tuple[tuple[str, str, str], ...] = (
    ("team_projects", "Projects", ""),
    ("team_members", "Members", "/members"),
    ("team_roles", "Roles", "/roles"),
    ("team_settings", "Settings", "/settings"),
)
PROJECT_TABS: tuple[tuple[str, str, str], ...] = (
    ("project_deployments", "Deployments", ""),
    ("project_env", "Environment", "/env"),
    ("project_tokens", "API tokens", "/tokens"),
    ("project_routes", "Routes and servers", "/routes"),
    ("project_traces", "Traces", "/traces"),
    ("project_logs", "Logs", "/logs"),
    ("project_metrics", "Metrics", "/metrics"),
    ("project_scores", "Scores", "/scores"),
    ("project_settings", "Settings", "/settings"),
)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mastra_admin.server.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        static=lambda path: f"{STATIC_PREFIX}/{path}",
        version=__version__,
        team_tabs=TEAM_TABS,
        project_tabs=PROJECT_TABS,
    )
    return env


def _content_security_policy(admin: MastraAdmin | None) -> str:
    """Scripts and styles from this origin only; the browser may also post the
    sign-in code to the identity provider's token endpoint."""
    connect = ["'self'"]
    auth = admin.auth if admin is not None else None
    if isinstance(auth, OidcAuthProvider):
        sign_in = auth.browser_sign_in()
        if sign_in is not None:
            parts = urlsplit(sign_in.token_url)
            if parts.scheme in ("http", "https") and parts.netloc:
                connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _page_endpoint(page: UiPage, env: Environment) -> Route:
    template = env.get_template(f"{page.name}.html")

    async def render(request: Request) -> Response:
        params = {key: str(value) for key, value in request.path_params.items()}
        html = template.render(page=page, params=params)
        headers = {
            **_SECURITY_HEADERS,
            "Content-Security-Policy": _content_security_policy(
                getattr(request.app.state, "admin", None)
            ),
        }
        return HTMLResponse(html, headers=headers)

    render.__name__ = f"ui_{page.name}"
    return Route(page.path, render, methods=["GET", "HEAD"], name=f"ui:{page.name}")


class _RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate (ETag) on every load: ES modules import
    each other by plain relative URLs, so a new release must never meet a stale
    module in the cache."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def ui_routes() -> list[BaseRoute]:
    """The pages and ``/ui/static/...``."""
    env = _environment()
    routes: list[BaseRoute] = [_page_endpoint(page, env) for page in PAGES]
    routes.append(
        Mount(
            STATIC_PREFIX,
            app=_RevalidatedStaticFiles(packages=[("mastra_admin.server.ui", "static")]),
            name="ui:static",
        )
    )
    return routes
