"""Observability query models refuse bounds no store can hold, before any query runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mastra_admin.core.observability import LogQuery, TimeSeriesQuery, TraceQuery


@pytest.mark.parametrize(
    "start", ["0344-02-24T17:09:00+00:00", "1900-01-01T00:00:00Z", "2300-01-01T00:00:00Z"]
)
def test_bounds_outside_the_stores_range_are_invalid_input(start: str) -> None:
    with pytest.raises(ValidationError, match="must be between 1970-01-01 and 2261-12-31"):
        LogQuery(start=start)  # type: ignore[arg-type]


def test_bounds_are_made_utc_and_naive_ones_are_taken_as_utc() -> None:
    query = TraceQuery(start="2026-11-21T10:00:00+02:00", end="2026-11-21T12:00:00")  # type: ignore[arg-type]
    assert query.start == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert query.end == datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_time_series_bounds_are_checked_too() -> None:
    with pytest.raises(ValidationError):
        TimeSeriesQuery(start="0001-01-01T00:00:00Z", end="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="start must be before end"):
        TimeSeriesQuery(start="2026-01-02T00:00:00Z", end="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
