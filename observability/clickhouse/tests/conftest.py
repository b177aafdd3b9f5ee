"""Fixtures on the real embedded engine: one chDB data folder for the whole run (chDB
serves one folder per process), one fresh database per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.observability.clickhouse import ClickHouseObservability, ClickHouseSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "mastra-exporter"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


def settings_for(**changes: object) -> ClickHouseSettings:
    """Test settings: a database of its own, retention long enough for fixed dates."""
    values: dict[str, object] = {
        "database": f"t_{uuid.uuid4().hex[:12]}",
        "retention_days": 3650,
        "log_retention_days": 3650,
        "poll_interval_s": 0.05,
        "lease_s": 2.0,
    }
    values.update(changes)
    return ClickHouseSettings.model_validate(values)


@pytest.fixture
async def backend(chdb_path: Path) -> AsyncIterator[ClickHouseObservability]:
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    await backend.init()
    try:
        yield backend
    finally:
        await backend.drop()
        await backend.close()


@pytest.fixture
def storage(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "files")


def fixture_records(signal: str) -> list[dict[str, object]]:
    """The records of one captured CloudExporter request."""
    body = json.loads((FIXTURES / f"{signal}.request.json").read_text())["body"]
    records: list[dict[str, object]] = body[signal]
    return records


def jsonl(records: list[dict[str, object]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)
