"""The demo's projects and settings in ``examples/``: found by default from a source
checkout, and the stand-in projects in step with the fixture projects they were made
from and buildable with no network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mastra_admin.core.settings import load_settings
from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.sources.local import LocalProjectSource, default_base_paths

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PROJECTS = ("support-bot", "weather-agent")


def test_the_local_source_serves_the_examples_of_a_checkout_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PROJECTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # wherever the command is started from
    assert default_base_paths() == [EXAMPLES]


async def test_the_demo_lists_exactly_the_example_projects() -> None:
    """The two offline stand-ins, and the real Mastra project (which needs Node.js 22
    and the npm registry: ``tests/test_real_mastra.py`` builds it)."""
    source = LocalProjectSource()
    try:
        found = sorted(await source.list_projects(), key=lambda p: p.name)
    finally:
        await source.close()
    assert [p.name for p in found] == sorted([*PROJECTS, "mastra-real"])
    for project in found:
        assert project.metadata["valid"], project.metadata["problems"]
        assert project.metadata["package_manager"] == "npm"


def test_the_demo_settings_file_is_valid_and_points_at_the_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    for name in list(os.environ):
        if name.startswith("MASTRA_ADMIN_") or name in ("PROJECTS_DIR", "ADMIN_PORT"):
            monkeypatch.delenv(name)
    settings = load_settings(EXAMPLES / "mastra-admin.toml")
    assert settings.port == 3000
    source = settings.section("source")
    assert source.provider == "local"
    assert [Path(p).resolve() for p in source.provider_settings()["base_paths"]] == [EXAMPLES]
    assert settings.section("router").provider_settings()["port"] == 8080


@pytest.mark.parametrize("name", PROJECTS)
def test_an_example_is_the_fixture_project_it_was_made_from(name: str, tmp_path: Path) -> None:
    """Regenerated from ``mastra_admin.core.testing.projects``, only the agents differ:
    the bundled stand-ins stay in step with the ones the test suites use."""
    fresh = write_mastra_project(tmp_path / name, name=name)
    for relative in (
        "package.json",
        "package-lock.json",
        "vendor/mastra-core/index.mjs",
        "vendor/mastra-core/package.json",
        "vendor/mastra-cli/bin/mastra.mjs",
        "vendor/mastra-cli/package.json",
    ):
        assert (EXAMPLES / name / relative).read_text() == (fresh / relative).read_text(), relative


@pytest.mark.slow
@pytest.mark.parametrize("name", PROJECTS)
def test_an_example_installs_and_builds_offline(name: str, tmp_path: Path) -> None:
    project = shutil.copytree(EXAMPLES / name, tmp_path / name)
    env = {**os.environ, "npm_config_offline": "true", "npm_config_cache": str(tmp_path / "c")}
    for argv in (
        ["npm", "ci", "--no-audit", "--no-fund"],
        ["npm", "exec", "--no", "--", "mastra", "build"],
    ):
        result = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert (project / ".mastra" / "output" / "index.mjs").is_file()
