"""Which package manager a project uses and what the runner runs for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mastra_admin.core.build_steps import build_command, detect_package_manager, install_command
from mastra_admin.core.errors import BuildFailed
from mastra_admin.runners.local._commands import resolve_executable


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "npm"),
        ({"package-lock.json": "{}"}, "npm"),
        ({"pnpm-lock.yaml": ""}, "pnpm"),
        ({"yarn.lock": ""}, "yarn"),
        ({"bun.lockb": ""}, "bun"),
        ({"bun.lock": ""}, "bun"),
        ({"package.json": json.dumps({"packageManager": "pnpm@9.1.0"}), "yarn.lock": ""}, "pnpm"),
        ({"package.json": "{not json", "yarn.lock": ""}, "yarn"),
    ],
)
def test_detects_the_package_manager(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert detect_package_manager(tmp_path) == expected


def test_what_the_source_found_wins(tmp_path: Path) -> None:
    (tmp_path / "yarn.lock").write_text("")
    assert detect_package_manager(tmp_path, "bun") == "bun"
    assert detect_package_manager(tmp_path, "not-a-tool") == "yarn"


def test_locked_installs_are_reproducible(tmp_path: Path) -> None:
    assert install_command(tmp_path, "npm")[:2] == ["npm", "install"]
    (tmp_path / "package-lock.json").write_text("{}")
    assert install_command(tmp_path, "npm")[:2] == ["npm", "ci"]
    (tmp_path / "pnpm-lock.yaml").write_text("")
    assert install_command(tmp_path, "pnpm") == ["pnpm", "install", "--frozen-lockfile"]
    assert build_command("npm") == ["npm", "exec", "--no", "--", "mastra", "build"]
    assert build_command("pnpm") == ["pnpm", "exec", "mastra", "build"]


def test_a_missing_tool_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed) as failed:
        resolve_executable("install", ["pnpm", "install"], str(tmp_path))
    assert failed.value.message.startswith("pnpm is not installed")
    assert failed.value.step == "install"
