"""A third-party plugin distribution, pip-installed from a folder, is picked by name."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from mastra_admin.core.compose import build_admin
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderContext, ProviderSpec
from mastra_admin.core.settings import load_settings
from mastra_admin.core.testing.memory import InMemoryAdminStorage

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.0.1"
requires-python = ">=3.11"
dependencies = ["mastra-admin>=0.1,<0.2"]

[project.entry-points.mastra_admin]
tiny = "{module}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]
"""

PLUGIN = '''\
"""A runner that only says hello: the smallest provider a third party can ship."""

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from mastra_admin.core.errors import BuildFailed
from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ProviderSpec
from mastra_admin.core.runner import ProjectRunner, ServerStats


class TinySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "hello"


class TinyRunner(ProjectRunner):
    type = "tiny"

    def __init__(self, greeting, data_dir):
        self.greeting = greeting
        self.data_dir = data_dir

    async def build(self, ctx, log):
        await log(self.greeting)
        raise BuildFailed("build", "the tiny runner builds nothing")

    async def start(self, ctx, artifact, log):
        raise BuildFailed("start", "the tiny runner starts nothing")

    async def stop(self, server, *, grace_s=10.0):
        return None

    async def is_alive(self, server):
        return False

    async def stats(self, server):
        return ServerStats(alive=False, healthy=False)

    async def attach(self, server):
        return False

    async def has_artifact(self, build_id):
        return None

    async def prune_artifacts(self, keep: Sequence[str]):
        return []


def create_runner(settings, context):
    return TinyRunner(settings.greeting, context.data_dir)


@hookimpl
def mastra_admin_providers():
    return [ProviderSpec(kind="runner", name="tiny", settings_model=TinySettings,
                         factory=create_runner)]
'''


@dataclass
class Installed:
    dist: str
    module: str


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture
def tiny_distribution(tmp_path: Path) -> Iterator[Installed]:
    """Writes the ``tiny`` runner plugin as a distribution and installs it into this
    interpreter; uninstalls it afterwards. Names are unique to the run."""
    suffix = uuid.uuid4().hex[:8]
    installed = Installed(
        dist=f"mastra-admin-tiny-runner-{suffix}", module=f"mastra_admin_tiny_runner_{suffix}"
    )
    project = tmp_path / "tiny-runner"
    package = project / "src" / installed.module
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(dist=installed.dist, module=installed.module)
    )
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(PLUGIN)
    _pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(project))
    importlib.invalidate_caches()
    try:
        yield installed
    finally:
        _pip("uninstall", "--quiet", "--yes", installed.dist)
        for name in list(sys.modules):
            if name == installed.module or name.startswith(f"{installed.module}."):
                del sys.modules[name]
        importlib.invalidate_caches()


class MemoryStoragePlugin:
    """The storage for this test, given in code."""

    class Settings(BaseModel):
        pass

    @hookimpl
    def mastra_admin_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec("storage", "memory", self.Settings, self.create)]

    @staticmethod
    def create(settings: BaseModel, context: ProviderContext) -> InMemoryAdminStorage:
        return InMemoryAdminStorage()


async def test_build_admin_picks_an_installed_runner_by_name(
    tiny_distribution: Installed,
    tmp_path: Path,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (clean_env / "mastra-admin.toml").write_text(
        textwrap.dedent(
            f"""
            data_dir = "{tmp_path / "data"}"
            plugins_allow = ["tiny"]

            [storage]
            provider = "memory"

            [runner]
            greeting = "hello from the toml file"

            [source]
            provider = "none"
            [router]
            provider = "none"
            [observability]
            provider = "none"
            """
        )
    )
    monkeypatch.setenv("MASTRA_ADMIN_RUNNER__PROVIDER", "tiny")

    admin = await build_admin(load_settings(), plugins=[MemoryStoragePlugin()])

    runner = admin.runner
    assert type(runner).__module__ == f"{tiny_distribution.module}.plugin"
    assert type(runner).__name__ == "TinyRunner"
    assert runner.greeting == "hello from the toml file"  # type: ignore[union-attr]
    assert admin.plugins is not None
    [tiny] = [info for info in admin.plugins.list_plugins() if info.name == "tiny"]
    assert (tiny.distribution, tiny.version) == (tiny_distribution.dist, "0.0.1")
    assert tiny.providers == ["runner:tiny"]
