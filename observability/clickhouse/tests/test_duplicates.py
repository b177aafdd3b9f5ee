"""The same span sent twice reads once, whatever the merge state.

A server's exporter retries a batch it believes lost (up to three times), so the
collector can write the same spans into two files, which the worker inserts as two
batches: the spans table then holds two rows of each span until a merge collapses
them. Merges are stopped here, so the copies are still in the tables when the lists
are read (each test checks so): the lists must read each trace and span once by
themselves, not thanks to a merge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.observability import SpanQuery, TraceQuery
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.observability.clickhouse import ClickHouseObservability, QueryBuilder
from mastra_admin.observability.clickhouse._batch import Batch, Slice
from mastra_admin.observability.clickhouse._sql import ParamValue
from mastra_admin.observability.clickhouse._transport import Row

from .conftest import fixture_records, jsonl

TRACE = "27712e47a2c673afd73afac18fcacaa5"
ROOT = "f9a3db6bb21c4229"
STEP = "27edaf258af04d7f"
_MERGED = ("mastra_admin_spans", "mastra_admin_traces", "mastra_admin_trace_span_ids")


async def stop_merges(backend: ClickHouseObservability) -> None:
    for table in _MERGED:
        await backend.transport.execute(f"SYSTEM STOP MERGES {backend.settings.database}.{table}")


def record_statements(
    backend: ClickHouseObservability, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The SQL of every query the provider runs from now on."""
    seen: list[str] = []
    fetch = backend.transport.fetch

    async def recording(sql: str, params: Mapping[str, ParamValue] | None = None) -> list[Row]:
        seen.append(sql)
        return await fetch(sql, params)

    monkeypatch.setattr(backend.transport, "fetch", recording)
    return seen


async def stored(backend: ClickHouseObservability, table: str) -> int:
    """Rows of ``table`` as stored (copies included)."""
    rows = await backend.transport.fetch(
        f"SELECT count() AS n FROM {backend.settings.database}.{table}"
    )
    return int(rows[0]["n"])


def spans_of(project: str) -> list[dict[str, Any]]:
    """The captured CloudExporter spans as the collector writes them for ``project``."""
    return [
        {**r, "project_id": project, "deployment_id": "dep_1"} for r in fixture_records("spans")
    ]


async def ingest(backend: ClickHouseObservability, storage: LocalFileStorage) -> int:
    """One pass of the worker over the one file written since the last: one insert."""
    worker = backend.ingestion_worker(storage)
    result = await worker.process_once()
    await worker.stop()
    assert not result.errors, result.errors
    assert result.files_processed == 1
    return result.events_ingested


async def test_a_retried_batch_reads_once_in_every_list(
    backend: ClickHouseObservability, storage: LocalFileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await stop_merges(backend)
    # The batch, then the exporter's retry of it: two files, two inserts.
    await write_batch(storage, "span", "proj_abc", spans_of("proj_abc"))
    assert await ingest(backend, storage) == 2
    await write_batch(storage, "span", "proj_abc", spans_of("proj_abc"))
    assert await ingest(backend, storage) == 2
    assert await stored(backend, "mastra_admin_spans") == 4
    assert await stored(backend, "mastra_admin_traces") == 2
    assert await stored(backend, "mastra_admin_trace_span_ids") == 2
    query = backend.query
    statements = record_statements(backend, monkeypatch)

    for traces in (
        await query.list_traces(TraceQuery()),
        await query.list_traces(TraceQuery(project_id="proj_abc", deployment_id="dep_1")),
        await query.list_traces(TraceQuery(trace_id=TRACE, limit=1)),
    ):
        assert [(t.trace_id, t.span_count) for t in traces.items] == [(TRACE, 2)]
        assert traces.total == 1
        assert not traces.has_more
    beyond = await query.list_traces(TraceQuery(offset=1))
    assert (beyond.items, beyond.total) == ([], 1)

    spans = await query.list_spans(SpanQuery(project_id="proj_abc"))
    assert [s.span_id for s in spans.items] == [STEP, ROOT]  # newest first, each once
    assert spans.total == 2
    first = await query.list_spans(SpanQuery(limit=1))
    second = await query.list_spans(SpanQuery(limit=1, offset=1))
    assert [s.span_id for s in first.items + second.items] == [STEP, ROOT]
    assert first.total == second.total == 2
    assert first.has_more
    assert not second.has_more
    children = await query.list_spans(SpanQuery(trace_id=TRACE, parent_span_id=ROOT))
    assert ([s.span_id for s in children.items], children.total) == ([STEP], 1)

    tree = await query.get_trace(TRACE)
    assert tree is not None
    assert [s.span_id for s in tree.spans] == [ROOT, STEP]
    assert tree.trace.span_count == 2
    assert tree.children == {ROOT: [STEP]}

    # Every page was read from its window (a few rows along the order), none whole.
    assert not [sql for sql in statements if "LIMIT 1 BY" in sql and "_window_rows" not in sql]
    # Every copy is still stored: the lists read each event once by themselves.
    assert await stored(backend, "mastra_admin_spans") == 4
    assert await stored(backend, "mastra_admin_traces") == 2


async def test_the_latest_copy_of_a_span_is_the_one_listed(
    backend: ClickHouseObservability, storage: LocalFileStorage
) -> None:
    await stop_merges(backend)
    await write_batch(storage, "span", "proj_abc", spans_of("proj_abc"))
    await ingest(backend, storage)
    # The same spans again, their names changed since.
    renamed = [{**r, "name": f"{r['name']} (again)"} for r in spans_of("proj_abc")]
    await write_batch(storage, "span", "proj_abc", renamed)
    await ingest(backend, storage)
    assert await stored(backend, "mastra_admin_spans") == 4
    query = backend.query

    traces = await query.list_traces(TraceQuery())
    assert [t.name for t in traces.items] == ["workflow run: 'greet' (again)"]
    assert (traces.total, traces.items[0].span_count) == (1, 2)
    spans = await query.list_spans(SpanQuery())
    assert [s.name for s in spans.items] == [
        "workflow step: 'shout' (again)",
        "workflow run: 'greet' (again)",
    ]
    assert spans.total == 2
    tree = await query.get_trace(TRACE)
    assert tree is not None
    assert tree.trace.name == "workflow run: 'greet' (again)"
    assert {s.name.endswith("(again)") for s in tree.spans} == {True}


async def insert_copy(backend: ClickHouseObservability, data: bytes, name: str) -> None:
    """``data`` inserted as the batch of file ``name`` (a batch of its own)."""
    batch = Batch(
        signal="spans", slices=[Slice(identity=name, location=name, start=0, end=len(data))]
    )
    table = f"{backend.settings.database}.mastra_admin_ingest_landing_spans"
    await backend.transport.insert_lines(table, data, batch.insert_settings())


async def test_more_copies_than_the_window_holds_still_read_once(
    backend: ClickHouseObservability, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page reads a window of four rows per event (the exporter sends a batch four
    times at most); with more copies than that, the page is read again whole."""
    await stop_merges(backend)
    data = jsonl(spans_of("proj_abc"))
    for n in range(9):
        await insert_copy(backend, data, f"spans/proj_abc/{n}.jsonl")
    other = jsonl(
        [
            {**r, "traceId": "other-trace", "startTime": "2026-11-21T22:40:50.000Z"}
            for r in spans_of("proj_abc")
        ]
    )
    await insert_copy(backend, other, "spans/proj_abc/other.jsonl")
    assert await stored(backend, "mastra_admin_spans") == 20
    assert await stored(backend, "mastra_admin_traces") == 10
    query = backend.query

    # The newest span's nine copies fill the window of a one-span page (eight rows).
    first = QueryBuilder(backend.settings.database).spans(SpanQuery(limit=1))
    assert first.window_rows == 8
    statements = record_statements(backend, monkeypatch)
    pages = [await query.list_spans(SpanQuery(limit=1, offset=n)) for n in range(5)]
    # Read again whole: every page but the one past the end (its window held every row).
    assert statements.count(first.full.sql) == 4
    assert [[s.span_id for s in p.items] for p in pages] == [[STEP], [ROOT], [STEP], [ROOT], []]
    assert [p.items[0].trace_id for p in pages[:4]] == [TRACE, TRACE, "other-trace", "other-trace"]
    assert {p.total for p in pages} == {4}

    traces = [await query.list_traces(TraceQuery(limit=1, offset=n)) for n in range(3)]
    assert [[(t.trace_id, t.span_count) for t in p.items] for p in traces] == [
        [(TRACE, 2)],
        [("other-trace", 2)],
        [],
    ]
    assert {p.total for p in traces} == {2}
    tree = await query.get_trace(TRACE)
    assert tree is not None
    assert (len(tree.spans), tree.trace.span_count) == (2, 2)
    assert await stored(backend, "mastra_admin_spans") == 20
