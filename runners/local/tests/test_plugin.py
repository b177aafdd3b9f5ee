"""The runner registers itself as runner ``local`` through the entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.plugins import PluginManager, ProviderContext
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.runners.local import LocalProcessRunner, LocalRunnerSettings

from .conftest import FolderCopySource


def test_entry_point_offers_runner_local(tmp_path: Path) -> None:
    manager = PluginManager(builtins=False)
    manager.load_entrypoints(allow=["runner-local"])
    spec = manager.get_provider("runner", "local")
    assert spec.settings_model is LocalRunnerSettings

    settings = spec.settings_model.model_validate(
        {"port_range_start": 4300, "port_range_end": 4310}
    )
    context = ProviderContext(
        settings=MastraAdminSettings(), data_dir=tmp_path, source=FolderCopySource()
    )
    runner = spec.factory(settings, context)
    assert isinstance(runner, LocalProcessRunner)
    assert runner.builds_dir == (tmp_path / "builds").resolve()
    assert (runner.ports.start, runner.ports.end) == (4300, 4310)


def test_factory_needs_a_source(tmp_path: Path) -> None:
    from mastra_admin.runners.local.plugin import create_runner

    context = ProviderContext(settings=MastraAdminSettings(), data_dir=tmp_path)
    with pytest.raises(Unavailable):
        create_runner(LocalRunnerSettings(), context)


def test_settings_refuse_a_reversed_port_range() -> None:
    with pytest.raises(ValueError, match="below"):
        LocalRunnerSettings(port_range_start=5000, port_range_end=4000)
