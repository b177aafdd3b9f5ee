"""Every page of the UI, with data, at 1280x800 and at phone width; the actions of
each page (people, roles, tokens, deployments, builds, observability filters); and
keyboard use. A screenshot of every page is kept under test-artifacts/ui/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .._platform import ServedPlatform, wait_for
from .conftest import ConsoleWatch, Screens
from .helpers import labelled, no_horizontal_scroll, sign_in, unique


@dataclass
class Seeded:
    team: dict[str, Any]
    project: dict[str, Any]
    deployment: dict[str, Any]
    build: dict[str, Any]
    trace_id: str

    def pages(self) -> list[tuple[str, str]]:
        t, p, d = self.team["id"], self.project["id"], self.deployment["id"]
        return [
            ("teams", "/"),
            ("team-projects", f"/teams/{t}"),
            ("new-project", f"/teams/{t}/projects/new"),
            ("members", f"/teams/{t}/members"),
            ("roles", f"/teams/{t}/roles"),
            ("team-settings", f"/teams/{t}/settings"),
            ("deployments", f"/projects/{p}"),
            ("env", f"/projects/{p}/env"),
            ("project-tokens", f"/projects/{p}/tokens"),
            ("routes-and-servers", f"/projects/{p}/routes"),
            ("traces", f"/projects/{p}/traces"),
            ("trace", f"/projects/{p}/traces/{self.trace_id}"),
            ("logs", f"/projects/{p}/logs"),
            ("metrics", f"/projects/{p}/metrics"),
            ("scores", f"/projects/{p}/scores"),
            ("project-settings", f"/projects/{p}/settings"),
            ("deployment", f"/deployments/{d}"),
            ("build", f"/builds/{self.build['id']}"),
            ("account", "/account"),
            ("licence-and-settings", "/settings"),
        ]


@pytest.fixture(scope="module")
def seeded(platform: ServedPlatform) -> Seeded:
    """A team with a deployed project that has answered a request (so it has a trace)."""
    team = platform.post("/api/teams", {"name": unique("Tour")}, expect=201)
    sources = platform.get("/api/sources/projects", params={"team_id": team["id"]})
    source = next(s for s in sources if s["name"] == "weather-agent")
    project = platform.post(
        f"/api/teams/{team['id']}/projects",
        {"name": "Weather", "source_id": source["id"]},
        expect=201,
    )
    pid = project["id"]
    platform.request("PUT", f"/api/projects/{pid}/env", json={"key": "MODEL", "value": "gpt-x"})
    platform.request(
        "PUT",
        f"/api/projects/{pid}/env",
        json={"key": "MODEL", "value": "gpt-prod", "deployment_type": "production"},
    )
    deployment = platform.post(f"/api/projects/{pid}/deployments", {"type": "production"})
    build = platform.deploy(deployment["id"])
    deployment = platform.get(f"/api/deployments/{deployment['id']}")
    host = deployment["public_url"].split("//", 1)[1]
    reply = platform.routed(
        host,
        "/api/agents/weather/generate",
        method="POST",
        json={"messages": [{"role": "user", "content": "Sunny in Porto?"}]},
    )
    assert reply.status_code == 200, reply.text
    trace_id = reply.json()["traceId"]
    wait_for(
        "the trace to be ingested",
        lambda: platform.get(f"/api/projects/{pid}/traces", params={"trace_id": trace_id})["items"],
        timeout=60,
    )
    return Seeded(team, project, deployment, build, trace_id)


def settle(page: Page) -> None:
    """Wait until the page's data has loaded: no loading state, nothing busy."""
    expect(page.locator("main .state.loading")).to_have_count(0)
    expect(page.locator("main [aria-busy='true']")).to_have_count(0)


def test_every_page_at_desktop_width(
    platform: ServedPlatform, seeded: Seeded, page: Page, screens: Screens
) -> None:
    sign_in(page, platform.url, platform.token)
    for name, path in seeded.pages():
        page.goto(f"{platform.url}{path}")
        settle(page)
        expect(page.locator("main .state.error")).to_have_count(0)
        assert no_horizontal_scroll(page), f"{name} scrolls sideways at 1280 px"
        screens(page, name)


def test_every_page_at_phone_width(
    platform: ServedPlatform, seeded: Seeded, phone_page: Page, screens: Screens
) -> None:
    page = phone_page
    sign_in(page, platform.url, platform.token)
    for name, path in seeded.pages():
        page.goto(f"{platform.url}{path}")
        settle(page)
        expect(page.locator("main .state.error")).to_have_count(0)
        assert no_horizontal_scroll(page), f"{name} scrolls sideways at phone width"
        screens(page, name)


def test_data_shows_where_it_belongs(platform: ServedPlatform, seeded: Seeded, page: Page) -> None:
    sign_in(page, platform.url, platform.token)
    p = seeded.project["id"]

    # Env vars per deployment type: production's own value wins over "every type".
    page.goto(f"{platform.url}/projects/{p}/env")
    settle(page)
    expect(page.locator('tr[data-env-key="MODEL"]')).to_have_count(2)
    page.get_by_label("Show", exact=True).select_option("production")
    rows = page.locator('tr[data-env-key="MODEL"]')
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("production")
    page.get_by_role("button", name="Reveal all").click()
    expect(rows.locator("[data-revealed]")).to_have_text("gpt-prod")

    # Servers: health, memory and CPU of the running server.
    page.goto(f"{platform.url}/deployments/{seeded.deployment['id']}")
    settle(page)
    servers = page.get_by_role("region", name="Servers")
    expect(servers).to_contain_text("healthy")
    expect(servers.get_by_text(re.compile(r"\d+(\.\d)? MB"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("link", name=seeded.deployment["public_url"])).to_be_visible()

    # Routes and running servers of the project.
    page.goto(f"{platform.url}/projects/{p}/routes")
    settle(page)
    expect(page.get_by_role("region", name="Routes")).to_contain_text("active")
    expect(page.get_by_role("region", name="Running servers")).to_contain_text("production · main")

    # Logs: the level filter and the text search.
    page.goto(f"{platform.url}/projects/{p}/logs")
    settle(page)
    # The line arrives twice: posted by the server's exporter, and printed to its
    # stdout (the runner captures it); the list shows the exporter's copy only.
    expect(page.get_by_text("agent weather generated a reply").first).to_be_visible()
    # What the server printed as pino-pretty text with colours: one warn record, its
    # colour codes gone and its indented field an attribute.
    printed = page.locator("tr", has_text="No `storage` configured on Mastra").first
    expect(printed).to_be_visible()
    expect(printed).to_contain_text("warn")
    assert "\x1b" not in printed.inner_text()
    expect(printed.locator("details pre")).to_contain_text("https://mastra.ai/docs/storage")
    labelled(page, "Search messages").fill("no such message anywhere")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No log matches these filters")).to_be_visible()
    labelled(page, "Search messages").fill("generated a reply")
    labelled(page, "Level").select_option("error")
    expect(page.get_by_text("No log matches these filters")).to_be_visible()
    labelled(page, "Level").select_option("info")
    expect(page.get_by_text("agent weather generated a reply").first).to_be_visible()
    assert "level=info" in page.url
    assert "text=generated" in page.url

    # Traces: the status filter.
    page.goto(f"{platform.url}/projects/{p}/traces?status=error")
    settle(page)
    expect(page.get_by_text("No trace matches these filters")).to_be_visible()
    labelled(page, "Status").select_option("ok")
    expect(page.locator(f'tr[data-trace-id="{seeded.trace_id}"]')).to_be_visible()

    # Metrics: SVG charts of counts, latency and error rate.
    page.goto(f"{platform.url}/projects/{p}/metrics")
    settle(page)
    expect(page.locator("figure.chart-figure")).to_have_count(3)
    expect(page.locator("svg.chart rect.series").first).to_be_visible()
    expect(page.locator("svg.chart path.line").first).to_be_attached()

    # Project settings: the memory and CPU limits per server, saved and shown.
    page.goto(f"{platform.url}/projects/{p}/settings")
    settle(page)
    labelled(page, "Memory limit per server (MB)").fill("384")
    labelled(page, "CPU limit per server").fill("0.5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Project settings saved")).to_be_visible()
    saved = platform.get(f"/api/projects/{p}")["settings"]
    assert (saved["memory_limit_mb"], saved["cpu_limit"]) == (384, 0.5)
    page.reload()
    settle(page)
    expect(labelled(page, "Memory limit per server (MB)")).to_have_value("384")

    # Licence and settings.
    page.goto(f"{platform.url}/settings")
    settle(page)
    expect(page.get_by_role("region", name="Licence")).to_contain_text("enterprise")
    expect(page.get_by_role("region", name="Plugins")).to_contain_text("runner:local")
    expect(page.get_by_role("region", name="Users")).to_contain_text("admin@example.com")


def test_people_roles_and_tokens(
    platform: ServedPlatform, seeded: Seeded, page: Page, screens: Screens
) -> None:
    sign_in(page, platform.url, platform.token)
    t, p = seeded.team["id"], seeded.project["id"]

    # Invite someone: the token is shown once; the invite waits until revoked.
    page.goto(f"{platform.url}/teams/{t}/members")
    settle(page)
    expect(page.get_by_role("region", name="Members")).to_contain_text("admin@example.com (you)")
    invite = page.get_by_role("region", name="Invite someone")
    labelled(invite, "Email").fill("grace@example.com")
    labelled(invite, "Role").select_option("viewer")
    invite.get_by_role("button", name="Send invite").click()
    expect(page.locator("[data-secret]")).to_have_text(re.compile(r"\S{16,}"))
    invites = page.get_by_role("region", name="Pending invites")
    expect(invites).to_contain_text("grace@example.com")
    screens(page, "invite-shown-once")
    invites.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(invites.get_by_text("No pending invites")).to_be_visible()

    # A custom role, given on one project, then taken away.
    page.goto(f"{platform.url}/teams/{t}/roles")
    settle(page)
    role = unique("deployer")
    create = page.get_by_role("region", name="Create a custom role")
    labelled(create, "Name").fill(role)
    labelled(create, "Permissions").fill("deployment:deploy\nbuild:read")
    create.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("region", name="Roles")).to_contain_text(role)
    assign = page.get_by_role("region", name="Give someone a role")
    labelled(assign, "Role").select_option(label=role)
    labelled(assign, "On").select_option(label="Project Weather")
    assign.get_by_role("button", name="Give role").click()
    assignments = page.get_by_role("region", name="Role assignments")
    expect(assignments).to_contain_text("project Weather")
    screens(page, "custom-role-given")
    assignments.get_by_role("button", name="Take away").click()
    expect(assignments.get_by_text("No custom roles given out")).to_be_visible()

    # A project token: shown once, then listed by its prefix only.
    page.goto(f"{platform.url}/projects/{p}/tokens")
    settle(page)
    labelled(page, "Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("[data-secret]").inner_text()
    tokens = page.get_by_role("region", name="API tokens")
    expect(tokens).to_contain_text("ci")
    expect(tokens).not_to_contain_text(secret)
    page.reload()
    settle(page)
    expect(page.get_by_text(secret)).to_have_count(0)

    # My own API token: created (shown once) and revoked.
    page.goto(f"{platform.url}/account")
    settle(page)
    labelled(page, "Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("[data-secret]")).to_be_visible()
    mine = page.get_by_role("region", name="Your API tokens")
    row = mine.get_by_role("row").filter(has_text="laptop")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
    expect(mine.get_by_role("row").filter(has_text="laptop")).to_contain_text("revoked")


def test_deploy_rollback_stop_restart_and_cancel(
    platform: ServedPlatform, seeded: Seeded, page: Page, screens: Screens
) -> None:
    sign_in(page, platform.url, platform.token)
    deployment = f"{platform.url}/deployments/{seeded.deployment['id']}"

    # A second build, so that the first can be rolled back to.
    page.goto(deployment)
    settle(page)
    page.get_by_role("region", name="Overview").get_by_role("button", name="Deploy").click()
    page.wait_for_url(re.compile(r"/builds/"))
    expect(page.locator('[data-log-end="succeeded"]')).to_be_visible(timeout=180_000)

    page.goto(deployment)
    settle(page)
    first = page.locator(f'tr[data-build-id="{seeded.build["id"]}"]')
    first.get_by_role("button", name="Roll back to this").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    page.wait_for_url(re.compile(r"/builds/"))
    expect(page.locator('[data-log-end="succeeded"]')).to_be_visible(timeout=120_000)
    expect(page.get_by_role("region", name="Build")).to_contain_text(
        f"rollback to {seeded.build['id'][:8]}"
    )
    screens(page, "rollback-build")

    # Stop: the server goes away; restart brings the current build back.
    page.goto(deployment)
    settle(page)
    overview = page.get_by_role("region", name="Overview")
    overview.get_by_role("button", name="Stop").click()
    page.get_by_role("dialog").get_by_role("button", name="Stop server").click()
    expect(overview).to_contain_text("stopped")
    expect(page.get_by_role("region", name="Servers")).to_contain_text("No server is running")
    screens(page, "stopped")
    overview.get_by_role("button", name="Restart").click()
    page.wait_for_url(re.compile(r"/builds/"))
    expect(page.locator('[data-log-end="succeeded"]')).to_be_visible(timeout=120_000)

    # Cancel: a project whose server never turns healthy is cancelled while deploying.
    sleepy = next(
        s
        for s in platform.get("/api/sources/projects", params={"team_id": seeded.team["id"]})
        if s["name"] == "sleepy-agent"
    )
    project = platform.post(
        f"/api/teams/{seeded.team['id']}/projects",
        {"name": "Sleepy", "source_id": sleepy["id"]},
        expect=201,
    )
    page.goto(f"{platform.url}/projects/{project['id']}")
    settle(page)
    page.get_by_role("button", name="Create deployment").click()
    row = page.locator('tr[data-deployment-type="production"]')
    row.get_by_role("button", name="Deploy").click()
    page.wait_for_url(re.compile(r"/builds/"))
    expect(page.locator("pre.log")).to_contain_text("==> build")
    page.get_by_role("button", name="Cancel build").click()
    expect(page.locator('[data-log-end="cancelled"]')).to_be_visible(timeout=60_000)
    screens(page, "cancelled-build")


def test_keyboard_only(platform: ServedPlatform, page: Page) -> None:
    """Sign in and create a team without a mouse; focus is always visible."""
    page.goto(f"{platform.url}/")
    page.wait_for_url(re.compile(r"/sign-in"))
    # The token field has focus on arrival.
    expect(labelled(page, "API token")).to_be_focused()
    page.keyboard.type(platform.token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{platform.url}/")
    expect(page.get_by_role("heading", name="Your teams")).to_be_visible()

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.evaluate("el => el.getBoundingClientRect().top >= 0"), "skip link stays hidden"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    name_field = labelled(page, "Name")
    for _ in range(80):
        page.keyboard.press("Tab")
        if name_field.evaluate("el => el === document.activeElement"):
            break
    expect(name_field).to_be_focused()
    outline = name_field.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none", "a focused field shows no focus ring"
    page.keyboard.type(unique("Keys"))
    page.keyboard.press("Tab")  # the slug
    page.keyboard.press("Tab")  # the button
    create = page.get_by_role("button", name="Create team")
    expect(create).to_be_focused()
    assert create.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/teams/[0-9a-f-]{36}$"))

    # Tabs of the team are links reachable in order; the current one is marked.
    expect(
        page.get_by_role("navigation", name="Team sections").get_by_role("link", name="Projects")
    ).to_have_attribute("aria-current", "page")


def test_a_wrong_token_is_refused_with_a_reason(
    platform: ServedPlatform, page: Page, console: ConsoleWatch, screens: Screens
) -> None:
    console.allow(r"status of 401")  # the refusal this test provokes
    page.goto(f"{platform.url}/sign-in")
    labelled(page, "API token").fill("mat_not-a-real-token-at-all")
    page.get_by_role("button", name="Sign in", exact=True).click()
    error = page.locator(".field-error")
    expect(error).to_contain_text("That token was not accepted")
    expect(labelled(page, "API token")).to_have_attribute("aria-invalid", "true")
    screens(page, "wrong-token")
    assert page.url.endswith("/sign-in")


def test_signing_out_forgets_the_token(platform: ServedPlatform, page: Page) -> None:
    sign_in(page, platform.url, platform.token)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/sign-in"))
    assert page.evaluate("localStorage.getItem('mastraAdmin.token')") is None
    page.goto(f"{platform.url}/account")
    page.wait_for_url(re.compile(r"/sign-in\?next=%2Faccount"))


def test_a_missing_project_says_so(
    platform: ServedPlatform, page: Page, console: ConsoleWatch, screens: Screens
) -> None:
    console.allow(r"status of 404")  # the answer this test asks for
    sign_in(page, platform.url, platform.token)
    page.goto(f"{platform.url}/projects/00000000-0000-4000-8000-000000000000/env")
    expect(page.get_by_role("heading", level=1)).to_have_text("Project not available")
    alert = page.get_by_role("alert").first
    expect(alert).to_contain_text("Not found")
    expect(alert).to_contain_text("it may have been deleted")
    screens(page, "missing-project")
