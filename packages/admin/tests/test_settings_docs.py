"""Every setting is documented in one generated table, and the checked-in page is current."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mastra_admin.core.hookspecs import hookimpl
from mastra_admin.core.plugins import ENTRY_POINT_GROUP, PluginManager, ProviderSpec
from mastra_admin.core.settings_docs import REGENERATE_COMMAND, main, render_configuration

PAGE = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
_ROW = re.compile(r"^\| `(?P<name>[^`]+)`(?: \((?P<provider>[^)]+)\))? \|")


def _rows(page: str) -> dict[str, str]:
    """Table rows keyed by their first cell."""
    rows = {}
    for line in page.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group(0)] = line
    return rows


def _prose(page: str) -> list[str]:
    return [line for line in page.splitlines() if not line.startswith("|")]


def test_the_table_has_a_row_for_core_builtin_and_plugin_settings() -> None:
    class QueueSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")

        url: str = Field(description="Where the queue lives.", json_schema_extra={"env": ["Q_URL"]})

    class QueuePlugin:
        @hookimpl
        def mastra_admin_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("runner", "queue", QueueSettings, lambda s, c: None)]

    manager = PluginManager()
    manager.register(QueuePlugin(), "queue")

    lines = render_configuration(manager).splitlines()

    assert (
        "| `port` | `MASTRA_ADMIN_PORT`, `ADMIN_PORT` | `3000` | Port of the API and UI. |" in lines
    )
    assert (
        "| `builds.workers` | `MASTRA_ADMIN_BUILDS__WORKERS` | `2` "
        "| Build workers in this process. |" in lines
    )
    assert (
        "| `file_storage.path` (local) | `MASTRA_ADMIN_FILE_STORAGE__PATH`, `FILE_STORAGE_PATH` "
        "| `{data_dir}/files` | Folder under which build logs and observability files are kept. |"
        in lines
    )
    assert (
        "| `runner.provider` | `MASTRA_ADMIN_RUNNER__PROVIDER` | `local` "
        "| The runner provider, by name (`none`: no provider). |" in lines
    )
    assert (
        "| `runner.url` (queue) | `MASTRA_ADMIN_RUNNER__URL`, `Q_URL` | required "
        "| Where the queue lives. |" in lines
    )


def test_docs_configuration_is_current() -> None:
    """Compares the page with the settings of every installed distribution; rows of
    providers that are not installed here are left alone."""
    manager = PluginManager()
    manager.load_entrypoints()
    installed = set(manager.provider_specs())
    rendered = render_configuration(manager)
    page = PAGE.read_text(encoding="utf-8")
    stale = f"docs/configuration.md is out of date; regenerate it with `{REGENERATE_COMMAND}`"

    assert _prose(page) == _prose(rendered), stale
    expected, documented = _rows(rendered), _rows(page)
    for key, row in expected.items():
        assert documented.get(key) == row, f"{stale}\n  expected: {row}"
    for key, row in documented.items():
        match = _ROW.match(row)
        assert match is not None
        provider = match.group("provider")
        kind = match.group("name").split(".", 1)[0]
        if provider is None or (kind, provider) in installed:
            assert key in expected, f"{stale}\n  no such setting: {row}"


def test_the_regenerate_command_writes_the_page(tmp_path: Path) -> None:
    installed = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
    target = tmp_path / "configuration.md"

    status = main(
        ["--write", str(target), *(arg for name in installed for arg in ("--deny", name))]
    )

    assert status == 0
    assert target.read_text(encoding="utf-8") == render_configuration(PluginManager())
