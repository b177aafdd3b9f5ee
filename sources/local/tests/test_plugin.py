"""The local source registers itself as the ``source`` provider named ``local``."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from mastra_admin.core import hookspecs
from mastra_admin.core.plugins import ProviderContext
from mastra_admin.core.settings import MastraAdminSettings
from mastra_admin.sources.local import LocalProjectSource, LocalSourceSettings
from mastra_admin.sources.local import plugin as local_plugin


def resolved(path: Path) -> Path:
    return path.resolve()


def test_the_entry_point_names_the_plugin_module() -> None:
    found = [ep for ep in entry_points(group="mastra_admin") if ep.value == local_plugin.__name__]

    assert [ep.name for ep in found] == ["source-local"]
    assert found[0].load() is local_plugin


async def test_the_provider_spec_builds_a_source_from_settings(tmp_path: Path) -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(local_plugin, name="source-local")
    manager.check_pending()

    specs = [s for group in manager.hook.mastra_admin_providers() for s in group]
    (spec,) = [s for s in specs if s.kind == "source" and s.name == "local"]
    settings = spec.settings_model.model_validate({"base_paths": str(tmp_path), "max_depth": 2})
    context = ProviderContext(settings=MastraAdminSettings(), data_dir=tmp_path / "data")
    source = spec.factory(settings, context)

    try:
        assert isinstance(settings, LocalSourceSettings)
        assert isinstance(source, LocalProjectSource)
        assert source.type == "local"
        assert source.base_paths == (resolved(tmp_path),)
        assert await source.list_projects() == []
    finally:
        await source.close()
