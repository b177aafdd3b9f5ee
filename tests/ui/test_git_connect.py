"""The UI on the git source: the new project page connects a private repository (the
token and webhook secret typed into password fields, never shown again), and a build's
page shows the commit it built, with its message and author."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .._git import SECRET, TOKEN, GitPlatform, git, served_git_platform
from .helpers import labelled, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def git_platform() -> Iterator[GitPlatform]:
    with served_git_platform() as made:
        yield made


def test_connect_a_repository_and_see_the_commit_a_build_built(
    git_platform: GitPlatform, page: Page
) -> None:
    platform = git_platform.platform
    assert platform.token is not None
    team = platform.post("/api/teams", {"name": "Git UI"}, expect=201)
    sign_in(page, platform.url, platform.token, f"/teams/{team['id']}/projects/new")

    expect(page.get_by_text("Projects on this platform come from git repositories")).to_be_visible()
    labelled(page, "Name").fill("Weather")
    labelled(page, "Repository URL").fill(git_platform.url)
    token_field = labelled(page, "Access token")
    expect(token_field).to_have_attribute("type", "password")
    token_field.fill(TOKEN)
    labelled(page, "Webhook secret").fill(SECRET)
    expect(page.get_by_text(f"{platform.url}/api/webhooks/git")).to_be_visible()
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]+$"))
    project_id = page.url.rsplit("/", 1)[1]
    assert TOKEN not in page.content()

    project = platform.get(f"/api/projects/{project_id}")
    assert project["source_config"]["url"] == git_platform.url
    deployment = platform.post(
        f"/api/projects/{project_id}/deployments", {"type": "production"}, expect=201
    )
    build = platform.deploy(deployment["id"])
    sha = git(git_platform.repo, "rev-parse", "main")

    page.goto(f"{platform.url}/builds/{build['id']}")
    facts = page.locator("dl.facts")
    expect(facts.get_by_text(sha[:12])).to_be_visible()
    expect(facts.get_by_text("Test <test@example.com>")).to_be_visible()
    expect(facts.get_by_text("first commit")).to_be_visible()
    page.goto(f"{platform.url}/deployments/{deployment['id']}")
    expect(page.get_by_text(sha[:10])).to_be_visible()
    assert TOKEN not in page.content()
