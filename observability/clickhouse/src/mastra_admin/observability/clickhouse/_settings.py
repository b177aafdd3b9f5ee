"""Settings of the ClickHouse observability provider (the ``[observability]`` section)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ClickHouseSettings"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ClickHouseSettings(BaseModel):
    """Where the events are stored, how long they are kept, and how they are ingested.

    Without ``url`` the embedded engine (chDB) keeps its data under ``path``; with it,
    the same SQL runs on that ClickHouse server through its native protocol.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="ClickHouse server, e.g. clickhouse://user:password@host:9000/db. "
        "None: the embedded engine.",
        json_schema_extra={"env": ["CLICKHOUSE_URL"]},
    )
    database: str = Field(default="mastra_admin", description="Database holding the tables.")
    path: Path | None = Field(
        default=None,
        description="Data folder of the embedded engine (one process at a time).",
        json_schema_extra={"default_doc": "{data_dir}/clickhouse"},
    )
    retention_days: int = Field(
        default=90, ge=1, le=3650, description="Days traces, spans, metrics and scores are kept."
    )
    log_retention_days: int = Field(default=30, ge=1, le=3650, description="Days logs are kept.")
    dedup_window: int = Field(
        default=1000,
        ge=100,
        le=1_000_000,
        description="Inserted blocks per table whose tokens are remembered, so that a "
        "replayed insert is dropped.",
    )
    poll_interval_s: float = Field(
        default=0.5, gt=0, le=3600, description="Pause between ingestion passes."
    )
    batch_size: int = Field(default=200, ge=1, le=100_000, description="Files taken per pass.")
    chunk_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="Most bytes in one insert while collector files and build folders "
        "are inserted side by side; a source alone inserts up to twice that. Bounds the "
        "worker's memory (an insert needs about 10 MB plus 3 bytes per byte inserted); "
        "larger inserts are faster (each costs a fixed 60-70 ms in the parsing views).",
    )
    delete_after_process: bool = Field(
        default=False, description="Delete ingested files instead of moving them to processed/."
    )
    project_id: str | None = Field(
        default=None, description="Ingest only this project's collector files."
    )
    lease_s: float = Field(
        default=30.0,
        gt=0.5,
        le=3600,
        description="How long a claim of a silent worker holds before others take its files.",
    )
    worker_id: str | None = Field(
        default=None,
        description="Stable name of this ingestion worker (default: host, process and a "
        "random part).",
    )
    max_backoff_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest pause after ClickHouse failures."
    )
    query_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest a server query may run."
    )

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("a database name holds letters, digits and '_' only")
        return value

    @field_validator("worker_id")
    @classmethod
    def _worker_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", value):
            raise ValueError("a worker id holds letters, digits, '_', '.' and '-' only")
        return value
