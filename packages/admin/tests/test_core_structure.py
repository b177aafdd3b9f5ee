"""The core's shape: a small facade over services, an orchestrator that depends on
the deployments service only, typed hooks, and one owner of the env contract."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from mastra_admin.core import admin as admin_module
from mastra_admin.core import env_contract, hookspecs
from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.hooks import Hooks
from mastra_admin.core.plugins import EVENT_HOOKS
from mastra_admin.core.testing.memory import InMemoryAdminStorage

FACADE_MAX_LINES = 450
"""``admin.py`` was one 2,049-line class. The facade (constructor, lifecycle, one
line per operation) is about 370 lines; 450 leaves room for a few more operations
and says "this is growing back into a god class" long before it is one."""


def _imports_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_the_orchestrator_does_not_import_the_facade() -> None:
    loaded = _imports_after("mastra_admin.core.orchestrator")
    assert "mastra_admin.core.admin" not in loaded
    assert not {m for m in loaded if m.startswith("mastra_admin.core.services.")} - {
        "mastra_admin.core.services.context"
    }, "the orchestrator sees the services' context, not the services"


@pytest.mark.parametrize(
    "module",
    [
        "mastra_admin.core.services.context",
        "mastra_admin.core.services.deployments",
        "mastra_admin.core.services.teams",
        "mastra_admin.core.services.projects",
        "mastra_admin.core.services.identity",
        "mastra_admin.core.services.observability",
        "mastra_admin.core.services.domains",
        "mastra_admin.core.orchestrator",
        "mastra_admin.core.hooks",
        "mastra_admin.core.env_contract",
    ],
)
def test_core_modules_import_on_their_own_without_the_facade(module: str) -> None:
    """Each imports first in a fresh interpreter (a cycle would fail here) and none
    of them needs ``MastraAdmin``: the facade sits on top, nothing calls back up."""
    assert "mastra_admin.core.admin" not in _imports_after(module)


def test_the_facade_stays_small() -> None:
    lines = Path(inspect.getfile(admin_module)).read_text().count("\n")
    assert lines < FACADE_MAX_LINES, f"admin.py has {lines} lines: put logic in a service"


def test_every_facade_operation_is_a_method_of_the_service_it_names() -> None:
    admin = MastraAdmin(storage=InMemoryAdminStorage())
    forwarded = {
        name: value
        for name, value in vars(MastraAdmin).items()
        if type(value).__name__ == "_ServiceMethod"
    }
    assert len(forwarded) > 80
    for name, forward in forwarded.items():
        owner_name = forward.method.__qualname__.split(".")[0]
        owner = getattr(sys.modules[forward.method.__module__], owner_name)
        service = getattr(admin, forward.service)
        assert isinstance(service, owner), f"MastraAdmin.{name} forwards to {owner_name}"
        bound = getattr(admin, name)
        assert bound.__self__ is service
        assert bound.__doc__ == forward.method.__doc__


def test_provider_attributes_are_the_services_context() -> None:
    admin = MastraAdmin(storage=InMemoryAdminStorage())
    replacement = object()
    admin.observability = replacement  # type: ignore[assignment]
    assert admin.context.observability is replacement
    assert admin.observability_queries.context.observability is replacement


def test_hooks_has_one_typed_call_per_event_hook() -> None:
    for hook in EVENT_HOOKS:
        method = getattr(Hooks, hook.removeprefix("mastra_admin_"))
        spec = inspect.signature(getattr(hookspecs, hook))
        expected = [p for p in spec.parameters if p != "admin"]
        assert [p for p in inspect.signature(method).parameters if p != "self"] == expected


def test_the_platform_pair_carries_the_same_token_and_url_as_the_cloud_pair() -> None:
    env = env_contract.core_env(
        project_id="p", deployment_id="d", collector_token="mac_x", collector_endpoint="http://c"
    )
    assert env["MASTRA_CLOUD_ACCESS_TOKEN"] == env["MASTRA_PLATFORM_ACCESS_TOKEN"] == "mac_x"
    assert (
        env["MASTRA_CLOUD_TRACES_ENDPOINT"]
        == env["MASTRA_PLATFORM_OBSERVABILITY_ENDPOINT"]
        == "http://c"
    )
    assert set(env) == env_contract.CORE_VARS
    without = env_contract.core_env(project_id="p", deployment_id="d")
    assert set(without) == {
        "MASTRA_PROJECT_ID",
        "MASTRA_DEPLOYMENT_ID",
        "MASTRA_TELEMETRY_DISABLED",
    }
