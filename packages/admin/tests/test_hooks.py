"""Every hook, called the way MastraAdmin calls it, through a real plugin; and the rules
that keep hooks documented and tested (one ``## <hook>`` section in docs/plugins.md and
one ``test_hook_<hook>`` test here for each hookspec)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from mastra_admin.core import hookspecs
from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.compose import build_admin
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.models import Build, BuildStatus, Deployment, DeploymentStatus, Project
from mastra_admin.core.plugins import (
    EVENT_HOOKS,
    PluginManager,
    ProviderContext,
    ProviderSpec,
    hookspec_names,
)
from mastra_admin.core.recovery import CrashRecord, DeploymentEvent, DeploymentEventKind
from mastra_admin.core.settings import load_settings
from mastra_admin.core.testing.memory import InMemoryAdminStorage

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"
TESTS = Path(__file__).resolve().parent


class Recorder:
    """A notification plugin: remembers every event hook call it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    async def mastra_admin_startup(self, admin: MastraAdmin) -> None:
        self.calls.append(("startup", {"admin": admin}))

    @hookimpl
    async def mastra_admin_shutdown(self, admin: MastraAdmin) -> None:
        self.calls.append(("shutdown", {"admin": admin}))

    @hookimpl
    async def mastra_admin_build_finished(
        self, build: Build, deployment: Deployment, project: Project
    ) -> None:
        self.calls.append(("build", {"build": build, "deployment": deployment, "project": project}))

    @hookimpl
    def mastra_admin_deployment_status_changed(
        self, deployment: Deployment, previous: DeploymentStatus
    ) -> None:
        self.calls.append(("status", {"deployment": deployment, "previous": previous}))

    @hookimpl
    async def mastra_admin_deployment_event(
        self, event: DeploymentEvent, deployment: Deployment
    ) -> None:
        self.calls.append(("event", {"event": event, "deployment": deployment}))


class Failing:
    """A plugin whose every event hook fails: the others must still be told."""

    @hookimpl
    async def mastra_admin_startup(self) -> None:
        raise RuntimeError("webhook unreachable")

    @hookimpl
    def mastra_admin_build_finished(self) -> None:
        raise RuntimeError("webhook unreachable")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def manager(recorder: Recorder) -> PluginManager:
    manager = PluginManager()
    manager.register(recorder, "recorder")
    manager.register(Failing(), "failing")
    return manager


def _models() -> tuple[Build, Deployment, Project]:
    project = Project(team_id="team_1", name="Weather", slug="weather", source_type="local")
    deployment = Deployment(
        project_id=project.id,
        type="production",
        branch="main",
        slug="weather-main",
        status=DeploymentStatus.RUNNING,
    )
    build = Build(deployment_id=deployment.id, triggered_by="user_1", status=BuildStatus.FAILED)
    return build, deployment, project


# --- one test per hook -------------------------------------------------------------------


async def test_hook_mastra_admin_providers(tmp_path: Path, clean_env: Path) -> None:
    class NoSettings(BaseModel):
        pass

    class StoragePlugin:
        @hookimpl
        def mastra_admin_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("storage", "memory", NoSettings, self.create)]

        def create(self, settings: NoSettings, context: ProviderContext) -> InMemoryAdminStorage:
            return InMemoryAdminStorage()

    switched_off: dict[str, Any] = {
        kind: {"provider": "none"} for kind in ("runner", "router", "source", "observability")
    }
    settings = load_settings(
        data_dir=tmp_path / "data",
        plugins_allow=[],
        storage={"provider": "memory"},
        **switched_off,
    )

    admin = await build_admin(settings, plugins=[StoragePlugin()])

    assert isinstance(admin.storage, InMemoryAdminStorage)


def test_hook_mastra_admin_routes() -> None:
    class Route:  # what the server mounts is opaque to the core
        def __init__(self, path: str) -> None:
            self.path = path

    class RoutesPlugin:
        @hookimpl
        def mastra_admin_routes(self, admin: MastraAdmin) -> list[Route]:
            return [Route(f"/api/plugins/hello/{type(admin).__name__}")]

    manager = PluginManager()
    manager.register(RoutesPlugin(), "hello")
    admin = MastraAdmin(storage=InMemoryAdminStorage(), plugins=manager)

    routes = [
        route for batch in manager.call("mastra_admin_routes", admin=admin) for route in batch
    ]

    assert [route.path for route in routes] == ["/api/plugins/hello/MastraAdmin"]


def test_hook_mastra_admin_cli() -> None:
    class Group:
        def __init__(self) -> None:
            self.commands: dict[str, Any] = {}

        def add_command(self, command: Any, name: str | None = None) -> None:
            self.commands[name or command.__name__] = command

    def ingest() -> str:
        return "ingested"

    class CliPlugin:
        @hookimpl
        def mastra_admin_cli(self, group: Group) -> None:
            group.add_command(ingest)

    manager = PluginManager()
    manager.register(CliPlugin(), "ingest")
    group = Group()

    assert manager.call("mastra_admin_cli", group=group) == []

    assert group.commands["ingest"]() == "ingested"


async def test_hook_mastra_admin_startup(
    make_admin: Any, manager: PluginManager, recorder: Recorder
) -> None:
    with capture_logs() as logs:
        admin = await make_admin(plugins=manager)  # init() tells the plugins

    assert recorder.calls == [("startup", {"admin": admin})]
    assert [e["plugin"] for e in logs if e["event"] == "plugin.hook_failed"] == ["failing"]


async def test_hook_mastra_admin_shutdown(
    make_admin: Any, manager: PluginManager, recorder: Recorder
) -> None:
    admin = await make_admin(plugins=manager)

    await admin.close()

    assert [name for name, _ in recorder.calls] == ["startup", "shutdown"]
    assert recorder.calls[1][1]["admin"] is admin


async def test_hook_mastra_admin_build_finished(manager: PluginManager, recorder: Recorder) -> None:
    admin = MastraAdmin(storage=InMemoryAdminStorage(), plugins=manager)
    build, deployment, project = _models()

    with capture_logs() as logs:
        await admin.fire(
            "mastra_admin_build_finished", build=build, deployment=deployment, project=project
        )

    assert recorder.calls == [
        ("build", {"build": build, "deployment": deployment, "project": project})
    ]
    [failure] = [e for e in logs if e["event"] == "plugin.hook_failed"]
    assert (failure["plugin"], failure["hook"]) == ("failing", "mastra_admin_build_finished")


async def test_hook_mastra_admin_deployment_status_changed(
    manager: PluginManager, recorder: Recorder
) -> None:
    admin = MastraAdmin(storage=InMemoryAdminStorage(), plugins=manager)
    _, deployment, _ = _models()

    await admin.fire(
        "mastra_admin_deployment_status_changed",
        deployment=deployment,
        previous=DeploymentStatus.BUILDING,
    )

    assert recorder.calls == [
        ("status", {"deployment": deployment, "previous": DeploymentStatus.BUILDING})
    ]


async def test_hook_mastra_admin_deployment_event(
    manager: PluginManager, recorder: Recorder
) -> None:
    admin = MastraAdmin(storage=InMemoryAdminStorage(), plugins=manager)
    _, deployment, _ = _models()
    event = DeploymentEvent(
        kind=DeploymentEventKind.CRASHED,
        deployment_id=deployment.id,
        project_id=deployment.project_id,
        message="server crashed: exited with code 1",
        crashes=[CrashRecord(reason="exited with code 1", exit_code=1)],
    )

    await admin.context.hooks.deployment_event(event=event, deployment=deployment)

    assert recorder.calls == [("event", {"event": event, "deployment": deployment})]


# --- hooks stay documented and tested -------------------------------------------------------


def _documented_hooks() -> set[str]:
    return set(re.findall(r"^## (mastra_admin_\w+)\s*$", DOCS.read_text(), flags=re.MULTILINE))


def test_every_hookspec_has_a_section_in_the_plugin_docs() -> None:
    documented = _documented_hooks()

    assert sorted(set(hookspec_names()) - documented) == [], "add a section to docs/plugins.md"
    assert sorted(documented - set(hookspec_names())) == [], "docs/plugins.md names no hook"


def test_every_hookspec_has_a_test_that_calls_it() -> None:
    tested: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_hook_"
            ):
                tested.add(node.name.removeprefix("test_hook_"))

    missing = sorted(set(hookspec_names()) - tested)

    assert missing == [], f"write test_hook_<name> for {missing}"


def test_every_hookspec_says_how_it_is_called_and_since_when() -> None:
    for name in hookspec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert ":calling:" in doc, name
        assert re.search(r":since: \d+\.\d+\.\d+", doc), name
        logs_errors = "errors are logged" in doc
        assert logs_errors == (name in EVENT_HOOKS), name
