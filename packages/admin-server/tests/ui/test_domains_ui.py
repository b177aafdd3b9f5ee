"""The Domains panel of a deployment's page, in real Chromium against the real app: an
owner adds a domain, copies the DNS records it shows, verifies it once the test's DNS
server holds the TXT record, and removes it; a member sees the domains but neither
the form nor the Remove button. Screenshots go to ``test-artifacts/ui/``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import AddDomain
from mastra_admin.core.models import Deployment
from mastra_admin.core.router import EdgeRouterProvider
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.core.storage import AdminStorage
from mastra_admin.core.testing.dns import LocalDnsServer

from ..conftest import DomainRouter, Person, World
from .conftest import CHROMIUM, CHROMIUM_ARGS

EDGE = "edge.mastra-platform.net"
SCREENSHOTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "ui"


@pytest.fixture
def admin_router(fresh_storage: AdminStorage) -> EdgeRouterProvider:
    return DomainRouter(fresh_storage, "apps.mastra-platform.net")


@pytest.fixture
def admin_settings(tmp_path: Any, dns: LocalDnsServer) -> MastraAdminSettings:
    return MastraAdminSettings(
        data_dir=tmp_path,
        base_domain="apps.mastra-platform.net",
        domains={"resolver": [dns.address], "resolver_timeout_s": 1.0, "edge_cname": EDGE},
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _signed_in(
    browser: Browser, live_url: str, person: Person, path: str, *, width: int = 1280
) -> Page:
    context: BrowserContext = await browser.new_context(
        viewport={"width": width, "height": 900}, locale="en-GB", timezone_id="UTC"
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(f"{live_url}{path}")
    await page.wait_for_url(re.compile(r"/sign-in\?next="))
    await page.get_by_label(re.compile(r"^API token")).fill(person.token)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{live_url}{path}")
    return page


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"domains-{name}.png"), full_page=True)


async def test_add_copy_verify_and_remove_a_domain(
    admin: MastraAdmin,
    world: World,
    deployment: Deployment,
    live_url: str,
    dns: LocalDnsServer,
    browser: Browser,
) -> None:
    router = admin.router
    assert isinstance(router, DomainRouter)
    page = await _signed_in(browser, live_url, world.owner, f"/deployments/{deployment.id}")
    panel = page.locator("section.panel", has=page.get_by_role("heading", name="Domains"))
    await expect(panel.get_by_text("No custom domains")).to_be_visible()

    await panel.get_by_label(re.compile(r"^Host name")).fill("  Shop.Example.com. ")
    await panel.get_by_role("button", name="Add domain").click()
    card = panel.get_by_role("region", name="shop.example.com")
    await expect(card).to_be_visible()
    await expect(card.locator(".badge").first).to_have_text("pending")
    [stored] = await admin.storage.domains.list_for_deployment(deployment.id)
    token = stored.verification_token
    txt_row = card.locator("tr[data-record-type=TXT]")
    await expect(txt_row.locator("code[data-record=name]")).to_have_text(
        "_mastra-admin.shop.example.com"
    )
    await expect(txt_row.locator("code[data-record=value]")).to_have_text(token)
    cname_row = card.locator("tr[data-record-type=CNAME]")
    await expect(cname_row.locator("code[data-record=value]")).to_have_text(EDGE)
    await _shot(page, "01-pending")

    await txt_row.get_by_role("button", name="Copy the value of the TXT record").click()
    await expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == token

    await card.get_by_role("button", name="Verify shop.example.com").click()
    await expect(card.get_by_text(re.compile("does not exist"))).to_be_visible()
    await expect(card.locator(".badge").first).to_have_text("pending")

    dns.set_txt("_mastra-admin.shop.example.com", token)
    await card.get_by_role("button", name="Verify shop.example.com").click()
    await expect(card.locator(".badge").first).to_have_text("verified")
    await expect(card.get_by_text("certificate pending")).to_be_visible()
    await expect(card.get_by_role("button", name="Verify shop.example.com")).to_have_count(0)
    assert router.domain_calls == [(deployment.id, ["shop.example.com"])]
    await _shot(page, "02-verified")

    # A member sees the domain, and neither the form nor Remove.
    member = await _signed_in(browser, live_url, world.member, f"/deployments/{deployment.id}")
    member_panel = member.locator(
        "section.panel", has=member.get_by_role("heading", name="Domains")
    )
    await expect(member_panel.get_by_role("region", name="shop.example.com")).to_be_visible()
    await expect(
        member_panel.get_by_text("Team owners and admins add and remove custom domains.")
    ).to_be_visible()
    await expect(member_panel.get_by_role("button", name="Add domain")).to_have_count(0)
    await expect(member_panel.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    assert member.errors == []  # type: ignore[attr-defined]

    await card.get_by_role("button", name="Remove shop.example.com").click()
    await page.get_by_role("button", name="Remove domain").click()
    await expect(panel.get_by_text("No custom domains")).to_be_visible()
    assert router.domain_calls[-1] == (deployment.id, [])
    assert await admin.storage.domains.list_for_deployment(deployment.id) == []
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_refused_hostname_is_explained_at_the_field(
    admin: MastraAdmin, world: World, deployment: Deployment, live_url: str, browser: Browser
) -> None:
    page = await _signed_in(browser, live_url, world.owner, f"/deployments/{deployment.id}")
    panel = page.locator("section.panel", has=page.get_by_role("heading", name="Domains"))
    page.on("console", lambda m: None)
    await panel.get_by_label(re.compile(r"^Host name")).fill("*.example.com")
    await panel.get_by_role("button", name="Add domain").click()
    await expect(panel.get_by_text("wildcard host names are not supported").first).to_be_visible()
    assert await admin.storage.domains.list_for_deployment(deployment.id) == []


async def test_the_records_fit_a_phone(
    admin: MastraAdmin, world: World, deployment: Deployment, live_url: str, browser: Browser
) -> None:
    long_name = "checkout-" + "x" * 50 + ".shop.example.com"
    await admin.add_domain(world.owner.user.id, deployment.id, AddDomain(hostname=long_name))
    page = await _signed_in(
        browser, live_url, world.owner, f"/deployments/{deployment.id}", width=390
    )
    card = page.get_by_role("region", name=long_name)
    await expect(card.locator("tr[data-record-type=TXT]")).to_be_visible()
    await _shot(page, "03-phone")
    fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert fits, "the Domains panel scrolls sideways at phone width"
    assert page.errors == []  # type: ignore[attr-defined]
