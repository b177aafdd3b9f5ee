"""Which settings and env var names change what a project's builds and servers execute."""

from __future__ import annotations

import pytest

from mastra_admin.core.execution_rules import (
    COMMANDS_PERMISSION,
    EXECUTION_SETTINGS,
    changed_execution_env,
    changed_execution_settings,
    changes_execution,
)
from mastra_admin.core.models import ProjectSettings
from mastra_admin.core.rbac import PERMISSIONS


@pytest.mark.parametrize(
    "key",
    [
        "NODE_OPTIONS",
        "node_options",
        "NODE_PATH",
        "NODE_REPL_EXTERNAL_MODULE",
        "NODE_EXTRA_CA_CERTS",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "npm_config_script_shell",
        "NPM_CONFIG_NODE_OPTIONS",
        "YARN_RC_FILENAME",
        "PNPM_HOME",
        "BUN_INSTALL",
        "COREPACK_NPM_REGISTRY",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "PATH",
        "Path",
    ],
)
def test_names_that_change_how_code_loads(key: str) -> None:
    assert changes_execution(key)


@pytest.mark.parametrize(
    "key",
    ["OPENAI_API_KEY", "NODE_ENV", "PORT", "DATABASE_URL", "MY_PATH", "ENVIRONMENT", "XLD_X"],
)
def test_ordinary_names(key: str) -> None:
    assert not changes_execution(key)


def test_the_permission_is_in_the_catalogue() -> None:
    assert COMMANDS_PERMISSION in PERMISSIONS


def test_changed_settings_are_named_in_order() -> None:
    before = ProjectSettings(install_command=["npm", "ci"], node_options="--x")
    after = ProjectSettings(
        install_command=["npm", "ci"], start_command=["node", "a.js"], health_path="/ready"
    )
    assert changed_execution_settings(before, after) == ["start_command", "node_options"]
    assert changed_execution_settings(before, before) == []
    assert set(EXECUTION_SETTINGS) <= set(ProjectSettings.model_fields)


def test_unset_and_empty_settings_are_the_same() -> None:
    empty = ProjectSettings(install_command=[], node_options="")
    assert changed_execution_settings(ProjectSettings(), empty) == []


def test_changed_env_counts_additions_changes_and_removals() -> None:
    before = {"NODE_OPTIONS": "--a", "PATH": "/bin", "TOKEN": "1"}
    after = {"NODE_OPTIONS": "--b", "LD_PRELOAD": "x.so", "TOKEN": "2"}
    assert changed_execution_env(before, after) == ["LD_PRELOAD", "NODE_OPTIONS", "PATH"]
    assert changed_execution_env(before, before) == []
