"""Reading a project's traces, spans, logs, metrics, scores and feedback."""

from __future__ import annotations

import structlog

from mastra_admin.core.errors import (
    InvalidInput,
    NotFound,
    Unavailable,
)
from mastra_admin.core.events import (
    Feedback,
    Log,
    Metric,
    Score,
    Span,
    Trace,
    TraceTree,
)
from mastra_admin.core.models import (
    Page,
)
from mastra_admin.core.observability import (
    FeedbackQuery,
    LogQuery,
    MetricQuery,
    ObservabilityQueryProvider,
    ScoreQuery,
    SpanQuery,
    TimeBucket,
    TimeSeriesQuery,
    TraceQuery,
)
from mastra_admin.core.rbac import Actor
from mastra_admin.core.services._service import (
    Service,
)

__all__ = ["ObservabilityService"]

_log = structlog.get_logger("mastra_admin.core.services.observability")


class ObservabilityService(Service):
    """Observability queries, scoped to a project the actor may read."""

    # --- observability ------------------------------------------------------------------

    def _query_provider(self) -> ObservabilityQueryProvider:
        if self.context.observability is None:
            raise Unavailable("no observability backend is configured")
        return self.context.observability.query

    async def _observability_scope(
        self, actor: Actor, project_id: str | None, deployment_id: str | None
    ) -> ObservabilityQueryProvider:
        if not project_id:
            raise InvalidInput("project_id is required", details={"field": "project_id"})
        await self._project_for(actor, project_id, "observability:read")
        if deployment_id is not None:
            deployment = await self.storage.deployments.get(deployment_id)
            if deployment is None or deployment.project_id != project_id:
                raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        return self._query_provider()

    async def list_traces(self, actor: Actor, query: TraceQuery) -> Page[Trace]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_traces(query)

    async def get_trace(self, actor: Actor, project_id: str, trace_id: str) -> TraceTree:
        provider = await self._observability_scope(actor, project_id, None)
        tree = await provider.get_trace(trace_id, project_id=project_id)
        if tree is None:
            raise NotFound("trace not found", details={"trace_id": trace_id})
        return tree

    async def list_spans(self, actor: Actor, query: SpanQuery) -> Page[Span]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_spans(query)

    async def list_logs(self, actor: Actor, query: LogQuery) -> Page[Log]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_logs(query)

    async def list_metrics(self, actor: Actor, query: MetricQuery) -> Page[Metric]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_metrics(query)

    async def list_scores(self, actor: Actor, query: ScoreQuery) -> Page[Score]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_scores(query)

    async def list_feedback(self, actor: Actor, query: FeedbackQuery) -> Page[Feedback]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.list_feedback(query)

    async def time_series(self, actor: Actor, query: TimeSeriesQuery) -> list[TimeBucket]:
        provider = await self._observability_scope(actor, query.project_id, query.deployment_id)
        return await provider.time_series(query)
