"""The web UI: server-rendered page skeletons and small ES modules, served at ``/``.

No front-end build step and no third-party front-end code: the templates are
Jinja2, the scripts are ES modules under ``static/js`` that call the JSON API with
the API token the browser keeps in ``localStorage``.
"""

from __future__ import annotations

from mastra_admin.server.ui._pages import PAGES, UiPage, ui_routes

__all__ = ["PAGES", "UiPage", "ui_routes"]
