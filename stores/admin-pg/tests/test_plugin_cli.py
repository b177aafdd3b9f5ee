"""The plugin: storage provider ``pg`` through the entry point, and ``migrate``."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner

from mastra_admin.core.plugins import PluginManager
from mastra_admin.stores.pg import PgSettings, load_migrations
from mastra_admin.stores.pg._cli import main


def test_the_entry_point_offers_storage_pg() -> None:
    points = [
        p for p in importlib.metadata.entry_points(group="mastra_admin") if p.name == "storage-pg"
    ]
    assert len(points) == 1
    module = points[0].load()
    (spec,) = module.mastra_admin_providers()
    assert (spec.kind, spec.name, spec.settings_model) == ("storage", "pg", PgSettings)
    manager = PluginManager(builtins=False)
    manager.register(module, name="storage-pg")
    assert manager.get_provider("storage", "pg") is spec


def test_the_cli_hook_adds_migrate_without_replacing_one() -> None:
    from mastra_admin.stores.pg import plugin

    group = click.Group("mastra-admin")
    plugin.mastra_admin_cli(group)
    assert "migrate" in group.commands
    assert "pg" in group.commands

    @click.command("migrate")
    def theirs() -> None:
        """Migrates every schema."""

    other = click.Group("mastra-admin")
    other.add_command(theirs)
    plugin.mastra_admin_cli(other)
    assert other.commands["migrate"] is theirs
    assert isinstance(other.commands["pg"], click.Group)
    assert "migrate" in other.commands["pg"].commands


def test_the_root_commands_config_and_data_dir_are_honoured(
    pg_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mastra_admin.stores.pg import plugin

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = tmp_path / "admin.toml"
    config.write_text(f'[storage]\nprovider = "pg"\nurl = "{pg_database_url}"\n')

    @click.group()
    @click.option("--config", type=click.Path(path_type=Path))
    @click.pass_context
    def root(ctx: click.Context, config: Path | None) -> None:
        ctx.ensure_object(dict)["config"] = config

    plugin.mastra_admin_cli(root)
    result = CliRunner().invoke(root, ["--config", str(config), "pg", "migrate", "--check"])
    assert result.exit_code == 1, result.output
    assert "pending  0001_initial" in result.output


@pytest.fixture
def installation(pg_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_database_url)
    monkeypatch.setenv("MASTRA_ADMIN_DATA_DIR", str(tmp_path / "data"))
    for name in list(os.environ):
        if name.startswith("MASTRA_ADMIN_STORAGE__") or name == "MASTRA_ADMIN_CONFIG":
            monkeypatch.delenv(name)
    return pg_database_url


def test_migrate_check_then_migrate(installation: str) -> None:
    runner = CliRunner()
    pending = runner.invoke(main, ["migrate", "--check"])
    assert pending.exit_code == 1, pending.output
    assert "pending  0001_initial" in pending.output

    applied = runner.invoke(main, ["migrate"])
    assert applied.exit_code == 0, applied.output
    shipped = load_migrations()
    assert f"{len(shipped)} migration(s) applied now" in applied.output
    with psycopg.connect(installation) as conn:
        versions = conn.execute(
            "SELECT version FROM mastra_admin.admin_schema_migrations ORDER BY 1"
        ).fetchall()
    assert versions == [(m.version,) for m in shipped]

    again = runner.invoke(main, ["migrate"])
    assert "0 migration(s) applied now" in again.output
    clean = runner.invoke(main, ["migrate", "--check"])
    assert clean.exit_code == 0, clean.output
    assert "up to date" in clean.output


def test_python_dash_m_migrate_in_a_real_process(installation: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mastra_admin.stores.pg", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert "applied  0001_initial" in result.stdout


def test_migrate_refuses_another_storage_provider(
    installation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTRA_ADMIN_STORAGE__PROVIDER", "memory")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code != 0
    assert "applies to 'pg' only" in result.output
