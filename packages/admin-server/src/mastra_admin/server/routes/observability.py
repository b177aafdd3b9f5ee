"""A project's traces, spans, logs, metrics, scores, feedback and time series."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from mastra_admin.core.events import Feedback, Log, Metric, Score, Span, Trace, TraceTree
from mastra_admin.core.models import Page
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ScoreQuery,
    SpanQuery,
    TimeBucket,
    TimeSeriesQuery,
    TraceQuery,
)
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["endpoints"]

P = "/api/projects/{project_id}"


def _without_project(model: type[BaseModel]) -> type[BaseModel]:
    """The query model as clients send it: the project comes from the path."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in model.model_fields.items()
        if name != "project_id"
    }
    from pydantic import create_model

    return create_model(f"{model.__name__}Params", __config__=model.model_config, **fields)


def _lister(model: type[BaseModel], method: str) -> Callable[[Call], Awaitable[Any]]:
    async def handler(call: Call) -> Any:
        query = model.model_validate(
            {**call.query.model_dump(exclude_unset=True), "project_id": call.params["project_id"]}
        )
        return await getattr(call.admin, method)(call.actor, query)

    handler.__name__ = method
    return handler


async def get_trace(call: Call) -> TraceTree:
    return await call.admin.get_trace(
        call.actor, call.params["project_id"], call.params["trace_id"]
    )


_LISTS: list[tuple[str, type[BaseModel], str, Any, str]] = [
    ("traces", TraceQuery, "list_traces", Page[Trace], "Traces, newest first"),
    ("spans", SpanQuery, "list_spans", Page[Span], "Spans"),
    ("logs", LogQuery, "list_logs", Page[Log], "Logs, newest first (level and text filters)"),
    ("metrics", MetricQuery, "list_metrics", Page[Metric], "Metrics"),
    ("scores", ScoreQuery, "list_scores", Page[Score], "Scores"),
    ("feedback", FeedbackQuery, "list_feedback", Page[Feedback], "Feedback"),
    (
        "timeseries",
        TimeSeriesQuery,
        "time_series",
        list[TimeBucket],
        "Counts, errors, error rate and p50/p95 latency per interval",
    ),
]

endpoints = [
    Endpoint(
        "GET",
        f"{P}/{path}",
        _lister(model, method),
        summary,
        "observability",
        permission="observability:read",
        query=_without_project(model),
        response=response,
    )
    for path, model, method, response, summary in _LISTS
]
endpoints.insert(
    1,
    Endpoint(
        "GET",
        f"{P}/traces/{{trace_id}}",
        get_trace,
        "One trace as a tree of spans",
        "observability",
        permission="observability:read",
        response=TraceTree,
    ),
)
