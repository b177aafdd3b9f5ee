"""PostgreSQL admin storage for MastraAdmin.

``PgAdminStorage`` implements the core's ``AdminStorage`` on PostgreSQL 15+ with
psycopg 3 (async, pooled): versioned migrations, the build queue with
``FOR UPDATE SKIP LOCKED``, and, when no server is configured, an embedded
PostgreSQL started in the data dir. Registered as storage provider ``pg``.
"""

from __future__ import annotations

from ._embedded import EmbeddedPostgres
from ._migrations import AppliedMigration, Migration, MigrationStatus, load_migrations
from ._settings import EmbeddedSettings, PgSettings, validate_identifier
from ._storage import PgAdminStorage
from ._supervisor import EmbeddedStatus
from .version import __version__

__all__ = [
    "AppliedMigration",
    "EmbeddedPostgres",
    "EmbeddedSettings",
    "EmbeddedStatus",
    "Migration",
    "MigrationStatus",
    "PgAdminStorage",
    "PgSettings",
    "__version__",
    "load_migrations",
    "validate_identifier",
]
