"""Settings of the PostgreSQL storage: where the server is, the schema, the pool, and
the embedded server used when no server is named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from psycopg.conninfo import make_conninfo
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from mastra_admin.core.errors import InvalidInput

__all__ = ["EmbeddedSettings", "PgSettings", "validate_identifier"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_identifier(value: str, what: str = "schema") -> str:
    """Return ``value`` when it is a plain SQL identifier; ``InvalidInput`` otherwise.

    Plain means letters, digits and underscores, not starting with a digit, at most
    63 characters (PostgreSQL's limit) and not starting with ``pg_`` (reserved).
    The adapter interpolates the schema name into SQL, so nothing else is let in.
    """
    if (
        not isinstance(value, str)
        or _IDENTIFIER.fullmatch(value) is None
        or len(value) > 63
        or value.lower().startswith("pg_")
    ):
        raise InvalidInput(
            f"{what} name {value!r} is not a plain SQL identifier: use letters, digits "
            "and underscores, start with a letter or underscore, at most 63 characters, "
            "not starting with 'pg_'",
            details={"field": what},
        )
    return value


class EmbeddedSettings(BaseModel):
    """The embedded PostgreSQL server, started when neither ``url`` nor ``host`` is set."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path | None = Field(
        default=None,
        description="PostgreSQL data dir. Default: {data_dir}/postgres of the installation.",
    )
    database: str = Field(default="mastra_admin", description="Database created in it.")
    system_user: str = Field(
        default="mastra-admin-pg",
        description="Unprivileged user the server runs as when MastraAdmin runs as root "
        "(PostgreSQL refuses root); created when missing.",
    )
    server_options: dict[str, str] = Field(
        default_factory=dict,
        description="Extra server settings (postgres -c name=value), e.g. shared_buffers.",
    )
    start_timeout_s: float = Field(default=60.0, gt=0, description="Start-up deadline.")
    supervise: bool = Field(
        default=True,
        description="Watch the server and start it again when it stops (crash, OOM kill, "
        "kill -9); meanwhile storage calls fail at once with Unavailable (HTTP 503).",
    )
    check_interval_s: float = Field(
        default=0.5,
        gt=0,
        description="How often the supervisor checks that the server still runs: the "
        "longest a storage call waits before it fails after the server died.",
    )
    restart_backoff_initial_s: float = Field(
        default=0.5,
        gt=0,
        description="Wait before the second attempt to start a server that died (the "
        "first is at once), doubled after each failed attempt.",
    )
    restart_backoff_max_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait between attempts to start the server again; attempts go "
        "on until it starts. A server that dies again within this time after a restart "
        "is not restarted at once but after the next backoff step.",
    )

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        return validate_identifier(value, "database")

    @model_validator(mode="after")
    def _backoff(self) -> EmbeddedSettings:
        if self.restart_backoff_max_s < self.restart_backoff_initial_s:
            raise InvalidInput(
                "embedded.restart_backoff_max_s must not be less than "
                "embedded.restart_backoff_initial_s",
                details={"field": "embedded.restart_backoff_max_s"},
            )
        return self


class PgSettings(BaseModel):
    """Where the admin database is and how it is used.

    A URL (``url``, also read from ``DATABASE_URL``) or its parts (``host``, ``port``,
    ``dbname``, ``user``, ``password``, ``sslmode``); with neither, the embedded server.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: SecretStr | None = Field(
        default=None,
        description="libpq connection URL, e.g. postgresql://user:pw@host:5432/db.",
        json_schema_extra={"env": ["DATABASE_URL"]},
    )
    host: str | None = Field(default=None, description="Server host (or Unix socket dir).")
    port: int = Field(default=5432, ge=1, le=65535, description="Server port.")
    dbname: str | None = Field(default=None, description="Database name.")
    user: str | None = Field(default=None, description="User name.")
    password: SecretStr | None = Field(default=None, description="Password.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(default=None, description="libpq sslmode.")
    )
    schema_name: str = Field(
        default="mastra_admin",
        validation_alias=AliasChoices("schema", "schema_name"),
        description="Schema the admin tables live in (a plain SQL identifier).",
    )
    pool_min_size: int = Field(default=1, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=10, ge=1, description="Most connections at once.")
    pool_timeout_s: float = Field(
        default=10.0, gt=0, description="Wait for a free connection before Unavailable."
    )
    connect_timeout_s: int = Field(default=10, ge=1, description="libpq connect_timeout.")
    reconnect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long the pool retries (with backoff) to replace a lost connection "
        "before it gives up and connects afresh on the next request; short, so that the "
        "pool is back soon after the server is.",
    )
    check_connections: bool = Field(
        default=True,
        description="Check a pooled connection that was idle for more than a second "
        "before handing it out, so that the first query after a server restart does not "
        "fail.",
    )
    application_name: str = Field(default="mastra-admin", description="Shown in pg_stat_activity.")
    read_cache: bool = Field(
        default=True,
        description="Cache reads of rarely changing tables (users, tokens, teams, members, "
        "projects, roles) in each process, dropped on every change through PostgreSQL's "
        "LISTEN/NOTIFY, and let the API cache whole responses the same way. Needs one "
        "extra connection per process that stays in LISTEN; turn it off behind a pooler "
        "in transaction mode (pgbouncer), where LISTEN does not work.",
    )
    read_cache_entries: int = Field(
        default=4096, ge=1, description="Most query results each process keeps."
    )
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)

    @field_validator("schema_name")
    @classmethod
    def _schema(cls, value: str) -> str:
        return validate_identifier(value, "schema")

    @property
    def uses_embedded(self) -> bool:
        return self.url is None and self.host is None

    def conninfo(self) -> str:
        """The libpq connection string for ``url`` or the parts (not for embedded)."""
        extra: dict[str, Any] = {
            "application_name": self.application_name,
            "connect_timeout": self.connect_timeout_s,
        }
        if self.url is not None:
            return make_conninfo(self.url.get_secret_value(), **extra)
        if self.host is None:
            raise InvalidInput("no PostgreSQL server configured (set url or host)")
        parts: dict[str, Any] = {"host": self.host, "port": self.port, **extra}
        if self.dbname:
            parts["dbname"] = self.dbname
        if self.user:
            parts["user"] = self.user
        if self.password is not None:
            parts["password"] = self.password.get_secret_value()
        if self.sslmode:
            parts["sslmode"] = self.sslmode
        return make_conninfo("", **parts)
