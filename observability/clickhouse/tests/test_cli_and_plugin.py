"""The plugin as the platform loads it (entry point, provider spec, settings from the
environment) and the commands it adds: ``ingest`` and ``clickhouse migrate``."""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mastra_admin.core.compose import provider_settings
from mastra_admin.core.plugins import PluginManager, ProviderContext
from mastra_admin.core.settings import load_settings
from mastra_admin.observability.clickhouse import ClickHouseObservability, ClickHouseSettings
from mastra_admin.observability.clickhouse import _schema as schema_module
from mastra_admin.observability.clickhouse._cli import main
from mastra_admin.observability.clickhouse.plugin import mastra_admin_cli

from .conftest import fixture_records, jsonl


def test_the_entry_point_names_the_plugin_module() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="mastra_admin")}
    assert found["observability-clickhouse"] == "mastra_admin.observability.clickhouse.plugin"


async def test_the_platform_builds_the_provider_from_its_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLICKHOUSE_URL", "clickhouse://ingest:pw@clickhouse.internal:9000/obs")
    monkeypatch.setenv("MASTRA_ADMIN_OBSERVABILITY__RETENTION_DAYS", "14")
    settings = load_settings(data_dir=tmp_path)
    manager = PluginManager.from_settings(settings)
    spec = manager.get_provider("observability", "clickhouse")
    config = provider_settings(spec, settings)
    assert isinstance(config, ClickHouseSettings)
    assert config.url == "clickhouse://ingest:pw@clickhouse.internal:9000/obs"
    assert config.retention_days == 14
    backend = spec.factory(config, ProviderContext(settings=settings, data_dir=tmp_path))
    assert isinstance(backend, ClickHouseObservability)
    assert backend.transport.kind == "server"
    assert "pw" not in backend.description
    await backend.close()


def test_the_cli_hook_adds_ingest_and_the_clickhouse_group() -> None:
    @click.group()
    def root() -> None: ...

    mastra_admin_cli(root)
    assert {"ingest", "clickhouse"} <= set(root.commands)
    clickhouse = root.commands["clickhouse"]
    assert isinstance(clickhouse, click.Group)
    assert {"migrate", "ingest"} <= set(clickhouse.commands)


@pytest.fixture
def cli_env(tmp_path: Path, chdb_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    return {
        "MASTRA_ADMIN_DATA_DIR": str(tmp_path / "data"),
        "MASTRA_ADMIN_FILE_STORAGE__PATH": str(tmp_path / "files"),
        "MASTRA_ADMIN_OBSERVABILITY__PATH": str(chdb_path),
        "MASTRA_ADMIN_OBSERVABILITY__DATABASE": f"cli_{uuid.uuid4().hex[:8]}",
        "MASTRA_ADMIN_OBSERVABILITY__RETENTION_DAYS": "3650",
        "MASTRA_ADMIN_OBSERVABILITY__LOG_RETENTION_DAYS": "3650",
    }


def test_migrate_check_then_migrate(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    check = runner.invoke(main, ["migrate", "--check"], env=cli_env)
    assert check.exit_code == 1, check.output
    assert "pending  0001" in check.output
    done = runner.invoke(main, ["migrate"], env=cli_env)
    assert done.exit_code == 0, done.output
    assert "applied  0001" in done.output
    again = runner.invoke(main, ["migrate", "--check"], env=cli_env)
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output


def test_migrate_check_reports_migration_5_on_a_database_at_4(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:4])
    assert runner.invoke(main, ["migrate"], env=cli_env).exit_code == 0
    monkeypatch.undo()
    check = runner.invoke(main, ["migrate", "--check"], env=cli_env)
    assert check.exit_code == 1, check.output
    assert "pending  0005 distinct span ids per trace" in check.output
    assert "missing  mastra_admin_trace_span_ids\n" in check.output
    assert "missing  mastra_admin_trace_span_ids_view\n" in check.output
    assert "ttl " not in check.output
    done = runner.invoke(main, ["migrate"], env=cli_env)
    assert done.exit_code == 0, done.output
    assert "applied  0005" in done.output
    assert "(1 migration(s) applied now)" in done.output
    again = runner.invoke(main, ["migrate", "--check"], env=cli_env)
    assert again.exit_code == 0, again.output
    assert "up to date (migrations 1, 2, 3, 4, 5)" in again.output
    # Retention changed: the span ids' TTL follows the spans'.
    shorter = {**cli_env, "MASTRA_ADMIN_OBSERVABILITY__RETENTION_DAYS": "30"}
    drift = runner.invoke(main, ["migrate", "--check"], env=shorter)
    assert drift.exit_code == 1, drift.output
    assert "ttl      mastra_admin_trace_span_ids differs from the settings" in drift.output
    assert runner.invoke(main, ["migrate"], env=shorter).exit_code == 0
    assert runner.invoke(main, ["migrate", "--check"], env=shorter).exit_code == 0


def test_ingest_once_shows_progress_and_a_summary(cli_env: dict[str, str], tmp_path: Path) -> None:
    spans = [
        {**r, "project_id": "proj_abc", "deployment_id": "dep_1"} for r in fixture_records("spans")
    ]
    target = tmp_path / "files" / "spans" / "proj_abc"
    target.mkdir(parents=True)
    (target / "1_a.jsonl").write_bytes(jsonl(spans))
    (target / "2_b.jsonl").write_bytes(jsonl(spans[:1]) + b"oops\n")
    build = tmp_path / "builds" / "b1" / "observability" / "runtime"
    build.mkdir(parents=True)
    (build / "stdout-1-1.log").write_text("server started\n")
    result = CliRunner().invoke(
        main,
        ["ingest", "--once", "--batch-size", "1", "--build-dir", str(tmp_path / "builds")],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    assert "ingesting" in result.output
    assert "event(s) (logs 1, spans 3)" in result.output
    assert "1 bad line(s)" in result.output
    processed = sorted(
        p.name for p in (tmp_path / "files" / "processed" / "spans" / "proj_abc").iterdir()
    )
    assert processed == ["1_a.jsonl", "2_b.jsonl"]
    assert json.loads(
        (tmp_path / "builds" / "b1" / "observability" / ".ingest-state.json").read_text()
    )["files"]
