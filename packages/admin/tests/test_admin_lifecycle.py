"""MastraAdmin.init and close: providers prepared and released, plugins told."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from mastra_admin.core.errors import LicenceLimit
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.inputs import CreateDeployment, CreateProject, CreateTeam
from mastra_admin.core.licence import LicenceTier, LicenceValidator
from mastra_admin.core.models import DeploymentType
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.testing.fakes import FakeRouter, FakeRunner, FakeSource

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
    await admin.close()  # a no-op
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


class KubernetesLikeRunner(FakeRunner):
    type: ClassVar[str] = "k8s"
    licence_feature: ClassVar[str | None] = "k8s-runner"


async def test_a_licence_gated_runner_needs_its_feature(
    make_admin: AdminFactory, enterprise_licence: LicenceValidator
) -> None:
    community = await make_admin(runner=KubernetesLikeRunner())  # starts, with a warning
    root, _ = await community.bootstrap_admin("root@example.com")
    team = await community.create_team(root.id, CreateTeam(name="Search"))
    project = await community.create_project(
        root.id, team.id, CreateProject(name="Weather", source_id="weather-agent")
    )
    deployment = await community.create_deployment(
        root.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    with pytest.raises(LicenceLimit, match="k8s-runner"):
        await community.deploy(root.id, deployment.id)

    licensed = await make_admin(runner=KubernetesLikeRunner(), licence=enterprise_licence)
    root, _ = await licensed.bootstrap_admin("root@example.com")
    team = await licensed.create_team(root.id, CreateTeam(name="Search"))
    project = await licensed.create_project(
        root.id, team.id, CreateProject(name="Weather", source_id="weather-agent")
    )
    deployment = await licensed.create_deployment(
        root.id, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    build = await licensed.deploy(root.id, deployment.id)
    assert build.status.value == "queued"
