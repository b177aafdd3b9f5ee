"""The schema on the real engine: migrate, check, TTLs from the settings, drop, and an
insert repeated with its token adding nothing anywhere (tables, views, rejects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.observability import TraceQuery
from mastra_admin.observability.clickhouse import (
    HOURLY_VIEWS,
    MIGRATIONS,
    TABLES,
    ChdbTransport,
    ClickHouseObservability,
    Schema,
)
from mastra_admin.observability.clickhouse import _schema as schema_module
from mastra_admin.observability.clickhouse._batch import Batch, Slice

from .conftest import fixture_records, jsonl, settings_for

ALL = [m.version for m in MIGRATIONS]


async def test_migrate_creates_every_object_once(chdb_path: Path) -> None:
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    try:
        before = await backend.check()
        assert [m.version for m in before.pending] == ALL
        assert not before.up_to_date
        applied = await backend.schema.migrate()
        assert [m.version for m in applied] == ALL
        status = await backend.check()
        assert status.up_to_date
        assert status.applied == ALL
        assert await backend.schema.migrate() == []
        rows = await backend.transport.fetch(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}",
            {"db": backend.settings.database},
        )
        engines = {r["name"]: r["engine"] for r in rows}
        assert engines["mastra_admin_traces"] == "ReplacingMergeTree"
        assert engines["mastra_admin_spans"] == "ReplacingMergeTree"
        for table in ("mastra_admin_logs", "mastra_admin_metrics", "mastra_admin_scores"):
            assert engines[table] == "MergeTree"
        for view in HOURLY_VIEWS.values():
            assert engines[view] == "MaterializedView"
            assert engines[f"{view}_data"] == "SummingMergeTree"
        assert engines["mastra_admin_ingest_landing_spans"] == "Null"
        assert engines["mastra_admin_trace_span_ids"] == "AggregatingMergeTree"
        assert engines["mastra_admin_trace_span_ids_view"] == "MaterializedView"
        assert "mastra_admin_trace_span_counts" not in engines
        assert "mastra_admin_trace_span_counts_view" not in engines
        assert set(TABLES) <= set(engines)
    finally:
        await backend.drop()
        await backend.close()


async def test_partitions_order_and_ttl_follow_the_settings(chdb_path: Path) -> None:
    settings = settings_for(path=chdb_path, retention_days=90, log_retention_days=30)
    backend = ClickHouseObservability(settings)
    try:
        await backend.init()
        rows = await backend.transport.fetch(
            "SELECT name, partition_key, sorting_key, engine_full FROM system.tables "
            "WHERE database = {db:String}",
            {"db": settings.database},
        )
        tables = {r["name"]: r for r in rows}
        spans = tables["mastra_admin_spans"]
        assert spans["partition_key"] == "toYYYYMM(start_time)"
        assert spans["sorting_key"] == "project_id, deployment_id, trace_id, span_id"
        assert "toIntervalDay(90)" in spans["engine_full"]
        assert "non_replicated_deduplication_window = 1000" in spans["engine_full"]
        assert "toIntervalDay(30)" in tables["mastra_admin_logs"]["engine_full"]
        traces = tables["mastra_admin_traces"]
        assert traces["sorting_key"] == "project_id, start_time, trace_id"
        assert "index_granularity = 1024," in traces["engine_full"]
        span_ids = tables["mastra_admin_trace_span_ids"]
        assert span_ids["sorting_key"] == "project_id, deployment_id, trace_id"
        assert "index_granularity = 1024," in span_ids["engine_full"]
        assert (
            "index_granularity_bytes = 4096, merge_max_block_size = 1024,"
            in (span_ids["engine_full"])
        )
        assert "toIntervalDay(90)" in span_ids["engine_full"]
        assert "non_replicated_deduplication_window = 1000" in span_ids["engine_full"]
        for name in schema_module._MERGED_TABLES:
            assert (
                "vertical_merge_algorithm_min_rows_to_activate = 1" in (tables[name]["engine_full"])
            ), name
        await backend.close()

        shorter = ClickHouseObservability(settings.model_copy(update={"retention_days": 7}))
        backend = shorter
        drift = await shorter.check()
        assert "mastra_admin_spans" in drift.ttl_drift
        assert "mastra_admin_trace_span_ids" in drift.ttl_drift
        assert "mastra_admin_logs" not in drift.ttl_drift
        await shorter.init()
        assert (await shorter.check()).up_to_date
    finally:
        await backend.drop()
        await backend.close()


async def test_drop_removes_the_database(chdb_path: Path) -> None:
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    try:
        await backend.init()
        await backend.drop()
        rows = await backend.transport.fetch(
            "SELECT count() AS n FROM system.databases WHERE name = {db:String}",
            {"db": backend.settings.database},
        )
        assert rows[0]["n"] == 0
    finally:
        await backend.close()


async def test_an_insert_repeated_with_its_token_adds_nothing(
    backend: ClickHouseObservability,
) -> None:
    records = [
        {**r, "project_id": "proj_abc", "deployment_id": "dep_1"} for r in fixture_records("spans")
    ]
    data = jsonl(records) + b"this is not json\n"
    batch = Batch(
        signal="spans",
        project_id="proj_abc",
        slices=[Slice(identity="spans/proj_abc/x.jsonl", location="x", start=0, end=len(data))],
    )
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_spans"
    for _ in range(3):
        await backend.transport.insert_lines(table, data, batch.insert_settings())
    db = backend.settings.database

    async def count(sql: str) -> int:
        rows = await backend.transport.fetch(sql)
        return int(next(iter(rows[0].values())))

    assert await count(f"SELECT count() FROM {db}.mastra_admin_spans") == 2
    assert await count(f"SELECT count() FROM {db}.mastra_admin_traces") == 1
    assert await count(f"SELECT sum(count) FROM {db}.mastra_admin_spans_hourly_stats_data") == 2
    assert await count(f"SELECT sum(count) FROM {db}.mastra_admin_traces_hourly_stats_data") == 1
    assert await count(f"SELECT count() FROM {db}.mastra_admin_ingest_rejects") == 1
    span_ids = f"{db}.mastra_admin_trace_span_ids"
    assert await count(f"SELECT uniqExactMerge(span_ids) FROM {span_ids}") == 2
    assert await count(f"SELECT count() FROM {span_ids}") == 1
    other = batch.model_copy(update={"project_id": "proj_other"})
    await backend.transport.insert_lines(table, data, other.insert_settings())
    assert await count(f"SELECT count() FROM {db}.mastra_admin_spans") == 4


async def test_one_process_serves_one_embedded_data_folder(chdb_path: Path, tmp_path: Path) -> None:
    first = ChdbTransport(chdb_path)
    second = ChdbTransport(tmp_path / "elsewhere")
    try:
        await first.ping()
        with pytest.raises(Unavailable, match="one process serves one data path"):
            await second.ping()
    finally:
        await second.close()
        await first.close()


async def test_schema_status_of_an_unknown_database(chdb_path: Path) -> None:
    transport = ChdbTransport(chdb_path)
    try:
        status = await Schema(transport, "never_created").status()
        assert [m.version for m in status.pending] == ALL
        assert status.missing_objects == []
    finally:
        await transport.close()


async def test_a_later_migration_counts_the_spans_already_stored(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    try:
        # A database migrated before the span counts existed, holding spans already.
        monkeypatch.setattr(schema_module, "MIGRATIONS", MIGRATIONS[:1])
        await backend.init()
        await insert_fixture_spans(backend, "spans/p/y.jsonl", "p")
        monkeypatch.undo()
        assert [m.version for m in (await backend.check()).pending] == [2, 3, 4, 5]
        assert [m.version for m in await backend.schema.migrate()] == [2, 3, 4, 5]
        assert (await backend.check()).up_to_date
        rows = await backend.transport.fetch(
            f"SELECT trace_id, uniqExactMerge(span_ids) AS n "
            f"FROM {backend.settings.database}.mastra_admin_trace_span_ids GROUP BY trace_id"
        )
        assert [(r["trace_id"], r["n"]) for r in rows] == [("27712e47a2c673afd73afac18fcacaa5", 2)]
    finally:
        await backend.drop()
        await backend.close()


async def insert_fixture_spans(
    backend: ClickHouseObservability, name: str, project: str, *, both_shapes: bool = False
) -> None:
    """The fixture's spans as project ``project``'s file ``name``; with ``both_shapes``
    the same spans again as envelopes, under other ids."""
    records = [{**r, "project_id": project, "deployment_id": "d"} for r in fixture_records("spans")]
    data = jsonl(records)
    if both_shapes:
        data += jsonl(
            [
                {"type": "span", "data": {**r, "id": f"{r['id']}e", "spanId": f"{r['id']}e"}}
                for r in records
            ]
        )
    batch = Batch(
        signal="spans", slices=[Slice(identity=name, location=name, start=0, end=len(data))]
    )
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_spans"
    await backend.transport.insert_lines(table, data, batch.insert_settings())


async def test_tables_made_before_the_trace_key_change_are_rebuilt_with_their_rows(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    db = backend.settings.database

    async def ingest(name: str, project: str) -> None:
        await insert_fixture_spans(backend, name, project)

    async def traces_and_counts(
        table: str = "mastra_admin_trace_span_ids",
    ) -> list[tuple[str, str, int]]:
        counted = (
            "sum(spans)"
            if table == "mastra_admin_trace_span_counts"
            else ("uniqExactMerge(span_ids)")
        )
        rows = await backend.transport.fetch(
            f"SELECT t.project_id AS p, t.trace_id AS t, c.n AS n FROM {db}.mastra_admin_traces AS t "
            f"LEFT JOIN (SELECT project_id, trace_id, {counted} AS n FROM "
            f"{db}.{table} GROUP BY project_id, trace_id) AS c "
            "ON c.project_id = t.project_id AND c.trace_id = t.trace_id ORDER BY p"
        )
        return [(r["p"], r["t"], int(r["n"])) for r in rows]

    try:
        # A database migrated (and holding traces) before migration 3 existed.
        monkeypatch.setattr(schema_module, "MIGRATIONS", MIGRATIONS[:2])
        await backend.init()
        await ingest("spans/p1/a.jsonl", "p1")
        before = await traces_and_counts("mastra_admin_trace_span_counts")
        assert len(before) == 1
        monkeypatch.undo()
        assert [m.version for m in (await backend.check()).pending] == [3, 4, 5]
        assert [m.version for m in await backend.schema.migrate()] == [3, 4, 5]
        assert (await backend.check()).up_to_date
        assert await traces_and_counts() == before
        # The views write into the new tables.
        await ingest("spans/p2/b.jsonl", "p2")
        after = await traces_and_counts()
        assert [(p, n) for p, _t, n in after] == [("p1", 2), ("p2", 2)]
        page = await backend.query.list_traces(TraceQuery(project_id="p2"))
        assert [(t.trace_id, t.span_count) for t in page.items] == [(after[1][1], 2)]
    finally:
        await backend.drop()
        await backend.close()


async def test_the_parsing_views_of_an_older_database_are_changed_in_place(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 4 gives the parsing views their one-tuple query with ``MODIFY
    QUERY`` (no moment without a view) and every table column-by-column merges; lines
    of both shapes read the same before and after."""
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    db = backend.settings.database

    async def ingest(name: str, project: str) -> None:
        await insert_fixture_spans(backend, name, project, both_shapes=True)

    async def spans(project: str) -> list[dict[str, object]]:
        rows = await backend.transport.fetch(
            f"SELECT * EXCEPT (project_id, ingested_at, recorded_at) FROM {db}.mastra_admin_spans "
            "WHERE project_id = {p:String} ORDER BY span_id, source",
            {"p": project},
        )
        return rows

    async def view_query() -> str:
        rows = await backend.transport.fetch(
            "SELECT as_select FROM system.tables WHERE database = {db:String} "
            "AND name = 'mastra_admin_ingest_parse_spans'",
            {"db": db},
        )
        return str(rows[0]["as_select"])

    try:
        monkeypatch.setattr(schema_module, "MIGRATIONS", MIGRATIONS[:3])
        await backend.init()
        assert "_is_envelope" in await view_query()
        await ingest("spans/p1/a.jsonl", "p1")
        monkeypatch.undo()
        assert [m.version for m in (await backend.check()).pending] == [4, 5]
        assert [m.version for m in await backend.schema.migrate()] == [4, 5]
        query = await view_query()
        assert "_is_envelope" not in query
        assert "tupleElement(_r, 'spanId')" in query
        assert "_r.spanId" not in query
        engines = await backend.transport.fetch(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
            "AND engine LIKE '%MergeTree' AND name != 'mastra_admin_schema_migrations'",
            {"db": db},
        )
        assert len(engines) == 13
        for row in engines:
            assert "vertical_merge_algorithm_min_rows_to_activate = 1" in row["engine_full"], row
        assert (await backend.check()).up_to_date
        await ingest("spans/p2/b.jsonl", "p2")
        before, after = await spans("p1"), await spans("p2")
        assert len(after) == 2 * len(fixture_records("spans")) > 0
        assert after == before
    finally:
        await backend.drop()
        await backend.close()


async def spans_per_trace(backend: ClickHouseObservability, table: str) -> list[tuple[str, int]]:
    """(project, spans) per trace from the summed counts (migrations 2-4) or the sets
    of span ids (migration 5)."""
    counted = "sum(spans)" if table.endswith("_counts") else "uniqExactMerge(span_ids)"
    rows = await backend.transport.fetch(
        f"SELECT project_id, {counted} AS n FROM {backend.settings.database}.{table} "
        "GROUP BY project_id, trace_id ORDER BY project_id"
    )
    return [(r["project_id"], int(r["n"])) for r in rows]


async def test_migration_5_counts_a_span_stored_twice_once(
    chdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at migration 4 holding a retried batch (each span twice, not merged)
    counted 4 spans in a trace of 2. Migration 5 fills the sets of span ids from the
    spans stored, drops the summed counts and their view, and its view keeps the sets
    from then on; a migration cut short after its back-fill back-fills again, which
    adds nothing."""
    backend = ClickHouseObservability(settings_for(path=chdb_path))
    db = backend.settings.database

    async def stored_spans() -> int:
        rows = await backend.transport.fetch(f"SELECT count() AS n FROM {db}.mastra_admin_spans")
        return int(rows[0]["n"])

    try:
        monkeypatch.setattr(schema_module, "MIGRATIONS", MIGRATIONS[:4])
        await backend.init()
        await backend.transport.execute(f"SYSTEM STOP MERGES {db}.mastra_admin_spans")
        await insert_fixture_spans(backend, "spans/p1/a.jsonl", "p1")
        await insert_fixture_spans(backend, "spans/p1/a-retried.jsonl", "p1")
        assert await stored_spans() == 4
        assert await spans_per_trace(backend, "mastra_admin_trace_span_counts") == [("p1", 4)]
        monkeypatch.undo()

        status = await backend.check()
        assert [m.version for m in status.pending] == [5]
        assert status.missing_objects == [
            "mastra_admin_trace_span_ids",
            "mastra_admin_trace_span_ids_view",
        ]
        # A run cut short after the back-fill: the next one back-fills again.
        settings = backend.settings
        for statement in MIGRATIONS[4].statements(
            db, settings.retention_days, settings.log_retention_days, settings.dedup_window
        )[:3]:
            await backend.transport.execute(statement)
        assert await spans_per_trace(backend, "mastra_admin_trace_span_ids") == [("p1", 2)]
        assert [m.version for m in await backend.schema.migrate()] == [5]
        assert (await backend.check()).up_to_date
        assert await backend.schema.migrate() == []

        rows = await backend.transport.fetch(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db}
        )
        names = {r["name"] for r in rows}
        assert "mastra_admin_trace_span_counts" not in names
        assert "mastra_admin_trace_span_counts_view" not in names
        assert await stored_spans() == 4
        assert await spans_per_trace(backend, "mastra_admin_trace_span_ids") == [("p1", 2)]
        page = await backend.query.list_traces(TraceQuery(project_id="p1"))
        assert [t.span_count for t in page.items] == [2]
        assert page.total == 1

        # The view: a third copy adds nothing, another project's spans are counted.
        await insert_fixture_spans(backend, "spans/p1/a-again.jsonl", "p1")
        await insert_fixture_spans(backend, "spans/p2/b.jsonl", "p2")
        assert await stored_spans() == 8
        assert await spans_per_trace(backend, "mastra_admin_trace_span_ids") == [
            ("p1", 2),
            ("p2", 2),
        ]
    finally:
        await backend.drop()
        await backend.close()
