"""ClickHouse observability for MastraAdmin: schema, ingestion worker and query provider.

The same SQL runs on a ClickHouse server (clickhouse-driver, native protocol) and on
the embedded engine (chDB), which is the default::

    from mastra_admin.observability.clickhouse import ClickHouseObservability, ClickHouseSettings

    backend = ClickHouseObservability(ClickHouseSettings(), data_dir=".mastra-admin")
    await backend.init()
    worker = backend.ingestion_worker(file_storage, build_dirs=["./.mastra-admin/builds"])
    await worker.start()
    page = await backend.query.list_traces(TraceQuery(project_id="proj_abc"))
"""

from mastra_admin.observability.clickhouse._backend import ClickHouseObservability
from mastra_admin.observability.clickhouse._batch import Batch, Slice
from mastra_admin.observability.clickhouse._query import (
    ClickHouseQueryProvider,
    LatestPage,
    QueryBuilder,
)
from mastra_admin.observability.clickhouse._schema import (
    HOURLY_VIEWS,
    MIGRATIONS,
    TABLES,
    Schema,
    SchemaStatus,
)
from mastra_admin.observability.clickhouse._settings import ClickHouseSettings
from mastra_admin.observability.clickhouse._sql import Statement, Where
from mastra_admin.observability.clickhouse._transport import (
    ChdbTransport,
    ClickHouseError,
    ServerTransport,
    Transport,
)
from mastra_admin.observability.clickhouse._worker import ClickHouseIngestionWorker
from mastra_admin.observability.clickhouse.version import __version__

__all__ = [
    "HOURLY_VIEWS",
    "MIGRATIONS",
    "TABLES",
    "Batch",
    "ChdbTransport",
    "ClickHouseError",
    "ClickHouseIngestionWorker",
    "ClickHouseObservability",
    "ClickHouseQueryProvider",
    "ClickHouseSettings",
    "LatestPage",
    "QueryBuilder",
    "Schema",
    "SchemaStatus",
    "ServerTransport",
    "Slice",
    "Statement",
    "Transport",
    "Where",
    "__version__",
]
