"""The core's router conformance suite, run against the Caddy router (driving the
session's Caddy through its admin API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mastra_admin.core.router import EdgeRouterProvider
from mastra_admin.core.storage import RouteStore
from mastra_admin.core.testing.router import RouterConformance, RouterRequest
from mastra_admin.routers.caddy import CaddyEdgeRouter

from .conftest import OperatorCaddy, send_through, settings_for


class TestCaddyRouterConformance(RouterConformance):
    __test__ = True

    @pytest.fixture
    def router_factory(
        self, operator_caddy: OperatorCaddy, tmp_path: Path
    ) -> Callable[[RouteStore], Awaitable[EdgeRouterProvider]]:
        made = 0

        async def make(routes: RouteStore) -> EdgeRouterProvider:
            nonlocal made
            made += 1
            router = CaddyEdgeRouter(
                settings_for(tmp_path / f"router{made}", operator_caddy.address), routes
            )
            await router.start()
            return router

        return make

    @pytest.fixture
    def router_request(self) -> RouterRequest:
        return send_through
