"""Statement and parameter building, checked without a server (the same statements run
on chDB and on a ClickHouse server), and parameter rendering round-tripped through
the real embedded engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.events import LogLevel, SpanStatus
from mastra_admin.core.observability import LogQuery, SpanQuery, TimeSeriesQuery, TraceQuery
from mastra_admin.observability.clickhouse import (
    ChdbTransport,
    QueryBuilder,
    ServerTransport,
    Where,
)
from mastra_admin.observability.clickhouse._batch import Batch, Slice
from mastra_admin.observability.clickhouse._sql import (
    ch_datetime,
    escape_param_text,
    quote,
    render_settings,
)
from mastra_admin.observability.clickhouse._transport import native_url, redact_url


def test_datetimes_are_sent_as_utc_text_to_the_millisecond() -> None:
    moment = datetime(2026, 11, 21, 23, 40, 51, 733999, tzinfo=timezone(timedelta(hours=2)))
    assert ch_datetime(moment) == "2026-11-21 21:40:51.733"
    assert ch_datetime(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05.000"


def test_where_puts_values_in_typed_placeholders_only() -> None:
    w = Where()
    w.equals("project_id", "p'1; DROP TABLE x")
    w.equals("deployment_id", None)
    w.contains("name", "50%_off")
    w.since("start_time", datetime(2026, 1, 1, tzinfo=UTC))
    w.until("start_time", datetime(2026, 1, 2, tzinfo=UTC), inclusive=False)
    w.at_least("value", 0.5)
    w.one_of("trace_id", ["a", "b"])
    sql = w.sql()
    assert sql == (
        "WHERE project_id = {p0:String} AND positionCaseInsensitiveUTF8(name, {p1:String}) > 0 "
        "AND start_time >= {p2:DateTime64(3, 'UTC')} AND start_time < {p3:DateTime64(3, 'UTC')} "
        "AND value >= {p4:Float64} AND trace_id IN ({p5:String}, {p6:String})"
    )
    assert w.params == {
        "p0": "p'1; DROP TABLE x",
        "p1": "50%_off",
        "p2": "2026-01-01 00:00:00.000",
        "p3": "2026-01-02 00:00:00.000",
        "p4": 0.5,
        "p5": "a",
        "p6": "b",
    }
    assert "DROP" not in sql


def test_an_empty_in_list_matches_nothing() -> None:
    w = Where()
    w.one_of("trace_id", [])
    assert w.sql() == "WHERE 0"


def test_parameter_text_escapes_what_the_engine_would_unescape() -> None:
    assert escape_param_text("a\\b\tc\nd\re\0") == "a\\\\b\\tc\\nd\\re\\0"
    assert escape_param_text("\\N") == "\\\\N"
    assert escape_param_text(True) == "true"
    assert escape_param_text(7) == "7"
    assert escape_param_text(0.25) == "0.25"
    assert escape_param_text(["a", "it's", "b\\c"]) == "['a', 'it\\'s', 'b\\\\c']"


def test_settings_are_rendered_as_literals() -> None:
    rendered = render_settings({"log_comment": '{"a":"it\'s"}', "insert_deduplicate": 1})
    assert rendered == 'SETTINGS log_comment = \'{"a":"it\\\'s"}\', insert_deduplicate = 1'
    assert quote("a\\b'c\n") == "'a\\\\b\\'c\\n'"
    with pytest.raises(ValueError, match="not a setting name"):
        render_settings({"x = 1; DROP": 1})


def test_trace_list_statements() -> None:
    page = QueryBuilder("db").traces(
        TraceQuery(project_id="p", status=SpanStatus.ERROR, name="run", limit=20, offset=40)
    )
    count, window, full = page.count, page.window, page.full
    # Each trace once: the total counts the traces' keys once ...
    assert count.sql.startswith("SELECT count() AS total FROM db.mastra_admin_traces FINAL WHERE ")
    assert set(count.params.values()) == {"p", "error", "run"}
    # ... and the page reads the newest rows backwards along the key, as a page without
    # copies would, then keeps the latest copy of each trace.
    assert "FINAL" not in window.sql
    assert (
        "FROM (SELECT * FROM db.mastra_admin_traces WHERE project_id = {p0:String} AND "
        in window.sql
    )
    assert "ORDER BY start_time DESC, trace_id DESC LIMIT {_window:UInt32})" in window.sql
    latest = (
        "ORDER BY start_time DESC, trace_id DESC, ingested_at DESC "
        "LIMIT 1 BY project_id, start_time, trace_id"
    )
    assert f"{latest} LIMIT {{_more:UInt32}} OFFSET {{_offset:UInt32}}" in window.sql
    assert (window.params["_window"], window.params["_more"], window.params["_offset"]) == (
        4 * 61,
        21,
        40,
    )
    assert page.window_rows == 4 * 61
    assert f"{latest} LIMIT {{_limit:UInt32}} OFFSET {{_offset:UInt32}}" in full.sql
    assert (full.params["_limit"], full.params["_offset"]) == (20, 40)


def test_a_window_holds_the_page_when_it_found_one_event_more_or_every_row() -> None:
    page = QueryBuilder("db").traces(TraceQuery(limit=2))
    assert page.window_rows == 12

    def rows(count: int, window_rows: int) -> list[dict[str, object]]:
        return [{"trace_id": f"t{i}", "_window_rows": window_rows} for i in range(count)]

    assert page.holds_page(rows(3, 12), 2)  # the events before the third are whole
    assert page.holds_page(rows(1, 11), 2)  # the window read every row there is
    assert not page.holds_page(rows(2, 12), 2)  # copies may have filled the window
    assert not page.holds_page([], 2)


def test_log_level_means_this_level_and_above() -> None:
    _, rows = QueryBuilder("db").logs(LogQuery(level=LogLevel.WARN))
    assert sorted(v for k, v in rows.params.items() if not k.startswith("_")) == [
        "error",
        "fatal",
        "warn",
    ]


def test_span_filters_use_the_columns_of_the_primary_key() -> None:
    page = QueryBuilder("db").spans(SpanQuery(project_id="p", deployment_id="d", trace_id="t"))
    for statement in (page.count, page.window, page.full):
        assert "project_id = {p0:String} AND deployment_id = {p1:String}" in statement.sql
        assert "trace_id = {p2:String}" in statement.sql
    key = "project_id, deployment_id, trace_id, span_id"
    assert f"ingested_at DESC LIMIT 1 BY {key} LIMIT" in page.window.sql
    assert f"ingested_at DESC LIMIT 1 BY {key} LIMIT" in page.full.sql


def test_hour_aligned_series_read_the_hourly_views() -> None:
    build = QueryBuilder("db")
    hourly = TimeSeriesQuery(
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert build.uses_hourly_view(hourly)
    assert "mastra_admin_traces_hourly_stats_data" in build.time_series(hourly).sql
    minutes = TimeSeriesQuery(
        start=datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
        end=datetime(2026, 1, 1, 2, tzinfo=UTC),
        interval_s=600,
        signal="logs",
    )
    assert not build.uses_hourly_view(minutes)
    statement = build.time_series(minutes)
    assert "FROM db.mastra_admin_logs " in statement.sql
    assert 600_000 in statement.params.values()


def test_the_server_transport_asks_for_server_side_parameters() -> None:
    transport = ServerTransport("clickhouse://ada:s3cret@db.internal:9000/obs")
    host, kwargs = transport.client_kwargs()
    assert host == "db.internal"
    assert kwargs["settings"]["server_side_params"] is True
    assert kwargs["user"] == "ada"
    assert kwargs["database"] == "obs"
    assert "s3cret" not in transport.description


def test_urls_are_mapped_to_the_native_protocol_and_redacted() -> None:
    assert native_url("tcp://h:9000") == "clickhouse://h:9000"
    assert native_url("http://u:p@h:8123/db") == "clickhouse://u:p@h:9000/db"
    assert native_url("https://h") == "clickhouses://h:9440"
    assert redact_url("clickhouse://u:p@h:9000/db") == "clickhouse://u:***@h:9000/db"
    with pytest.raises(InvalidInput):
        native_url("postgres://h")


def test_a_batch_token_depends_on_identity_and_range_only() -> None:
    def batch(start: int, end: int, where: str = "/a") -> Batch:
        return Batch(
            signal="spans",
            project_id="p",
            slices=[Slice(identity="spans/p/x.jsonl", location=where, start=start, end=end)],
        )

    assert batch(0, 10).token == batch(0, 10, where="/moved").token
    assert batch(0, 10).token != batch(0, 11).token
    assert batch(0, 10).insert_settings()["insert_deduplication_token"] == batch(0, 10).token


@pytest.fixture
async def engine(chdb_path: Path) -> AsyncIterator[ChdbTransport]:
    transport = ChdbTransport(chdb_path)
    yield transport
    await transport.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
async def test_any_text_survives_a_chdb_parameter(engine: ChdbTransport, text: str) -> None:
    rows = await engine.fetch("SELECT {t:String} AS t, length({t:String}) AS n", {"t": text})
    assert rows[0]["t"] == text
    assert rows[0]["n"] == len(text.encode())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=12), max_size=5))
async def test_any_list_survives_a_chdb_array_parameter(
    engine: ChdbTransport, items: list[str]
) -> None:
    rows = await engine.fetch("SELECT {a:Array(String)} AS a", {"a": items})
    assert rows[0]["a"] == items
