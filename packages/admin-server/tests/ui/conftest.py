"""The UI's pages served by the real app (``ui`` on), and headless Chromium from
Debian, driven by Playwright with its executable path (no browser download)."""

from __future__ import annotations

import shutil

import pytest

from mastra_admin.server.settings import ServerSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]


@pytest.fixture
def server_settings() -> ServerSettings:
    return ServerSettings(ui=True, auth_failure_limit=50)
