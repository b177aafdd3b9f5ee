"""The UI's pages and static files as the server sends them: one page per entry of
the page table, each with its template and its ES module, under a strict CSP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mastra_admin.server import ui
from mastra_admin.server.ui import PAGES

STATIC = Path(ui.__file__).parent / "static"
TEMPLATES = Path(ui.__file__).parent / "templates"


def _example_path(path: str) -> str:
    return path.format(
        team_id="team-1",
        project_id="project-1",
        deployment_id="deployment-1",
        build_id="build-1",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


def test_every_page_has_a_template_and_a_module() -> None:
    for page in PAGES:
        assert (TEMPLATES / f"{page.name}.html").is_file(), page.name
        assert (STATIC / "js" / "pages" / f"{page.name}.js").is_file(), page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
async def test_each_page_is_a_skeleton_for_its_module(
    client: httpx.AsyncClient, page: ui.UiPage
) -> None:
    response = await client.get(_example_path(page.path))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert f'data-page="{page.name}"' in html
    assert '<script type="module" src="/ui/static/js/app.js">' in html
    assert "<script>" not in html  # nothing inline: the CSP would refuse it
    if not page.public:
        assert 'data-action="sign-out"' in html


async def test_path_ids_reach_the_page_and_are_escaped(client: httpx.AsyncClient) -> None:
    response = await client.get('/projects/"><img src=x onerror=y>/env')
    assert response.status_code == 200
    assert "<img src=x" not in response.text
    assert 'data-project-id="&#34;&gt;&lt;img src=x onerror=y&gt;"' in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/static/js/app.js", "text/javascript"),
        ("/ui/static/js/lib/sse.js", "text/javascript"),
        ("/ui/static/css/app.css", "text/css"),
        ("/ui/static/favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_are_revalidated(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["cache-control"] == "no-cache"
    etag = response.headers["etag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304


async def test_unknown_paths_stay_api_errors(client: httpx.AsyncClient) -> None:
    api = await client.get("/api/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    missing = await client.get("/ui/static/js/no-such-module.js")
    assert missing.status_code == 404


async def test_sign_in_config_without_an_identity_provider(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/config")
    assert response.status_code == 200
    assert response.json() == {"api_tokens": True, "oidc": None}
