"""The whole flow in a real browser against the real platform: sign in, create a team,
pick a project from the source, create it, set an env var, create a deployment,
deploy, watch the live log to the end, open the deployed server through its URL,
and see its traces as a waterfall."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .._platform import ServedPlatform
from .conftest import ConsoleWatch, Screens
from .helpers import labelled, unique

BUILD_TIMEOUT_MS = 180_000


def test_from_sign_in_to_a_trace_waterfall(
    platform: ServedPlatform, page: Page, screens: Screens, console: ConsoleWatch
) -> None:
    base = platform.url

    # Sign in with the bootstrap token printed at first start.
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r"/sign-in\?next=%2F$"))
    expect(page.get_by_role("heading", name="Sign in to MastraAdmin")).to_be_visible()
    screens(page, "sign-in")
    labelled(page, "API token").fill(platform.token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_role("heading", name="Your teams")).to_be_visible()
    screens(page, "teams")

    # Create a team.
    team_name = unique("Walk")
    labelled(page, "Name").fill(team_name)
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(re.compile(r"/teams/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(team_name)
    expect(page.get_by_text("No projects yet")).to_be_visible()
    screens(page, "team-without-projects")

    # Pick a project from the source: the valid one, and the invalid one says why.
    page.get_by_role("link", name="New project").first.click()
    page.wait_for_url(re.compile(r"/projects/new$"))
    weather = page.locator('[data-source-name="weather-agent"]')
    broken = page.locator('[data-source-name="broken-agent"]')
    expect(weather).to_contain_text("npm")
    expect(weather).to_contain_text(str(platform.projects_dir / "weather-agent"))
    expect(weather).to_contain_text("Mastra")
    expect(broken).to_contain_text("no Mastra entry file")
    expect(broken.locator("input")).to_be_disabled()
    weather.locator("input").check()
    screens(page, "source-picker")

    # Create the project.
    expect(labelled(page, "Name")).to_have_value("weather-agent")
    labelled(page, "Name").fill("Weather")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}$"))
    project_id = page.url.rstrip("/").split("/")[-1]
    expect(page.get_by_role("heading", level=1)).to_have_text("Weather")
    expect(page.get_by_text("No deployments yet")).to_be_visible()

    # Set an env var: hidden in the list until revealed.
    page.get_by_role("link", name="Environment").click()
    page.wait_for_url(f"{base}/projects/{project_id}/env")
    labelled(page, "Key").fill("OPENAI_API_KEY")
    labelled(page, "Value").fill("sk-walkthrough-123")
    page.get_by_role("button", name="Save variable").click()
    row = page.locator('tr[data-env-key="OPENAI_API_KEY"]')
    expect(row).to_contain_text("every type")
    expect(row.locator(".hidden-value")).to_be_visible()
    expect(page.get_by_text("sk-walkthrough-123")).to_have_count(0)
    row.get_by_role("button", name="Reveal").click()
    expect(row.locator('[data-revealed="OPENAI_API_KEY"]')).to_have_text("sk-walkthrough-123")
    screens(page, "env-vars")

    # Create a production deployment.
    page.get_by_role("link", name="Deployments").click()
    page.wait_for_url(f"{base}/projects/{project_id}")
    labelled(page, "Type").select_option("production")
    page.get_by_role("button", name="Create deployment").click()
    deployment_row = page.locator('tr[data-deployment-type="production"]')
    expect(deployment_row).to_contain_text("production · main")
    expect(deployment_row).to_contain_text("pending")
    screens(page, "deployments")

    # Deploy, and watch the live log to its end.
    deployment_row.get_by_role("button", name="Deploy").click()
    page.wait_for_url(re.compile(r"/builds/[0-9a-f-]{36}$"))
    log = page.locator("pre.log")
    expect(log).to_contain_text("==> build", timeout=30_000)
    screens(page, "build-log-live")
    expect(page.locator('[data-log-end="succeeded"]')).to_be_visible(timeout=BUILD_TIMEOUT_MS)
    expect(log).to_contain_text("npm ci")
    expect(log).to_contain_text("mastra build")
    expect(log).to_contain_text("==> build succeeded")
    assert log.locator(".log-line").count() > 8
    at_bottom = log.evaluate("el => el.scrollTop + el.clientHeight >= el.scrollHeight - 30")
    assert at_bottom, "the log did not follow its last line"
    expect(page.locator("[data-build-status]")).to_have_attribute("data-build-status", "succeeded")
    screens(page, "build-log-finished")

    # Open the deployed server through the router at its public URL.
    open_link = page.get_by_role("link", name="Open the server")
    public_url = open_link.get_attribute("href")
    assert public_url is not None
    assert re.fullmatch(
        rf"http://weather-main\.[a-z0-9-]+\.localhost:{platform.router_port}/?", public_url
    ), public_url
    # The Mastra server has no favicon; that 404 is the deployed server's, not the UI's.
    console.allow(rf"localhost:{platform.router_port}/favicon\.ico")
    page.goto(public_url)
    expect(page.locator("body")).to_contain_text("Hello to the Mastra API!")
    screens(page, "deployed-server")
    # Ask its agent something, from the server's own origin, so that it records a trace.
    reply = page.evaluate(
        """async () => {
            const response = await fetch('/api/agents/weather/generate', {
                method: 'POST',
                headers: {'content-type': 'application/json'},
                body: JSON.stringify({messages: [{role: 'user', content: 'Will it rain in Lisbon?'}]}),
            });
            return response.json();
        }"""
    )
    assert "Will it rain in Lisbon?" in reply["text"]

    # The trace arrives (the list looks again while empty) and opens as a waterfall.
    page.goto(f"{base}/projects/{project_id}/traces")
    trace_link = page.get_by_role("link", name="agent run: 'weather'")
    expect(trace_link).to_be_visible(timeout=60_000)
    screens(page, "traces")
    trace_link.click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/traces/[0-9a-f]+$"))
    rows = page.locator(".wf-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("aria-pressed", "true")
    rows.filter(has_text="llm: 'fixture-model'").click()
    detail = page.locator(".span-detail")
    expect(detail.get_by_role("heading", name="llm: 'fixture-model'")).to_be_visible()
    expect(detail.locator('[data-part="input"]')).to_contain_text("Will it rain in Lisbon?")
    expect(detail.locator('[data-part="output"]')).to_contain_text("weather heard")
    expect(detail.locator('[data-part="attributes"]')).to_contain_text("fixture-model")
    screens(page, "trace-waterfall")
