"""MastraAdmin.init and close: providers prepared and released, plugins told."""

from __future__ import annotations

from typing import Any

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.licence import LicenceTier
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.testing.fakes import FakeRouter, FakeSource

from .conftest import AdminFactory


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    async def mastra_admin_startup(self, admin: Any) -> None:
        self.calls.append(f"startup:{len(await admin.storage.rbac.list_roles())}")

    @hookimpl
    def mastra_admin_shutdown(self) -> None:
        self.calls.append("shutdown")


class BrokenSource(FakeSource):
    async def close(self) -> None:
        raise RuntimeError("cannot close")


async def test_init_prepares_and_close_releases(make_admin: AdminFactory) -> None:
    recorder = Lifecycle()
    plugins = PluginManager(builtins=False)
    plugins.register(recorder, "lifecycle")
    admin = await make_admin(plugins=plugins)
    assert recorder.calls == ["startup:5"], "system roles exist before plugins hear of it"
    assert isinstance(admin.router, FakeRouter)
    assert admin.router.started
    await admin.init()  # idempotent
    assert recorder.calls == ["startup:5"]
    await admin.close()
    assert recorder.calls == ["startup:5", "shutdown"]
    assert not admin.router.started


async def test_a_provider_failing_to_close_does_not_stop_the_others(
    make_admin: AdminFactory,
) -> None:
    admin = await make_admin(source=BrokenSource())
    await admin.close()
    assert isinstance(admin.router, FakeRouter)
    assert not admin.router.started


async def test_without_a_licence_the_community_tier_applies(make_admin: AdminFactory) -> None:
    admin = await make_admin()
    info = admin.licence_info()
    assert info.tier is LicenceTier.COMMUNITY
    assert not info.valid
