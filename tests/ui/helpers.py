"""Steps the UI tests share: signing in through the sign-in page, unique names."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Locator, Page, expect


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def labelled(scope: Page | Locator, text: str) -> Locator:
    """The control labelled ``text`` (a required one's label ends in "(required)")."""
    return scope.get_by_label(re.compile(rf"^{re.escape(text)}( \(required\))?$"))


def sign_in(page: Page, base_url: str, token: str, next_path: str = "/") -> None:
    """Sign in the way a person does: open a page, get sent to sign-in, paste the token."""
    page.goto(f"{base_url}{next_path}")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    labelled(page, "API token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}{next_path}")
    expect(page.locator("[data-slot=whoami] a")).to_have_text("admin@example.com")


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
