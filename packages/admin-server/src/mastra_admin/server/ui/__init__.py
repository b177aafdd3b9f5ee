"""The web UI: server-rendered pages and small ES modules, served at ``/``."""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["ui_routes"]


def ui_routes() -> list[BaseRoute]:
    return []
