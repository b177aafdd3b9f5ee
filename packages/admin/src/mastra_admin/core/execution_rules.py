"""What changes the code a project's builds and servers execute: the project settings
and the env var names that only holders of ``project:commands:write`` may change."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from mastra_admin.core.models import ProjectSettings

__all__ = [
    "COMMANDS_PERMISSION",
    "EXECUTION_ENV_PATTERNS",
    "EXECUTION_SETTINGS",
    "changed_execution_env",
    "changed_execution_settings",
    "changes_execution",
]

COMMANDS_PERMISSION = "project:commands:write"
"""The permission needed to change any of the settings or env vars below."""

EXECUTION_SETTINGS: tuple[str, ...] = (
    "install_command",
    "build_command",
    "start_command",
    "node_options",
    "fork_previews_get_secrets",
)
"""The ``ProjectSettings`` fields that say what builds and servers run, or what
secrets code from outside the team (a fork's pull request) is given."""

EXECUTION_ENV_PATTERNS: tuple[str, ...] = (
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_REPL_EXTERNAL_MODULE",
    "NODE_EXTRA_CA_CERTS",
    "LD_*",
    "DYLD_*",
    "npm_config_*",
    "YARN_*",
    "PNPM_*",
    "BUN_*",
    "COREPACK_*",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "PATH",
)
"""Env var names (``fnmatch`` patterns, matched in any case) with which Node, npm and
the other package managers, a shell or the dynamic loader find or run other code."""


def changes_execution(key: str) -> bool:
    """Whether the env var ``key`` changes how Node, npm or the loader load code.

    Matched in any case: npm reads ``NPM_CONFIG_*`` as well as ``npm_config_*``.
    """
    name = key.upper()
    return any(fnmatchcase(name, pattern.upper()) for pattern in EXECUTION_ENV_PATTERNS)


def changed_execution_settings(before: ProjectSettings, after: ProjectSettings) -> list[str]:
    """The ``EXECUTION_SETTINGS`` whose value differs between the two, in that order.

    Unset and empty are the same: either way the runner's default runs.
    """
    return [
        name
        for name in EXECUTION_SETTINGS
        if (getattr(before, name) or None) != (getattr(after, name) or None)
    ]


def changed_execution_env(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The env var names that ``changes_execution`` and that are added, removed or
    given another value from ``before`` to ``after``, sorted."""
    return sorted(
        key
        for key in before.keys() | after.keys()
        if changes_execution(key) and before.get(key) != after.get(key)
    )
