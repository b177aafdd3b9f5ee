"""The core's router conformance suite, run against the local router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from mastra_admin.core.router import EdgeRouterProvider
from mastra_admin.core.storage import RouteStore
from mastra_admin.core.testing.router import RouterConformance, RouterRequest
from mastra_admin.routers.local import LocalEdgeRouter, LocalRouterSettings

from .conftest import send_through


class TestLocalRouterConformance(RouterConformance):
    __test__ = True

    @pytest.fixture
    def router_factory(self) -> Callable[[RouteStore], Awaitable[EdgeRouterProvider]]:
        async def make(routes: RouteStore) -> EdgeRouterProvider:
            router = LocalEdgeRouter(
                LocalRouterSettings(port=0, health_interval_s=0, sync_interval_s=0), routes
            )
            await router.start()
            return router

        return make

    @pytest.fixture
    def router_request(self) -> RouterRequest:
        return send_through
