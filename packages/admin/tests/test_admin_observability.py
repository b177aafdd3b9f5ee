"""Observability reads go through MastraAdmin: scoped to a project the reader may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from mastra_admin.core.errors import InvalidInput, NotFound, PermissionDenied, Unavailable
from mastra_admin.core.events import Feedback, Log, Metric, Score, Span, Trace, TraceTree
from mastra_admin.core.file_storage import FileStorageProvider
from mastra_admin.core.inputs import CreateDeployment, CreateProject
from mastra_admin.core.models import DeploymentType, Page
from mastra_admin.core.observability import (
    FeedbackQuery,
    IngestionWorker,
    LogQuery,
    MetricQuery,
    ObservabilityBackend,
    ObservabilityQueryProvider,
    ScoreQuery,
    SpanQuery,
    TimeBucket,
    TimeSeriesQuery,
    TraceQuery,
)

from .conftest import AdminFactory, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ListQueries(ObservabilityQueryProvider):
    """Answers from lists; records the queries it was asked."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self.asked: list[object] = []

    async def list_traces(self, query: TraceQuery) -> Page[Trace]:
        self.asked.append(query)
        items = [t for t in self.traces if t.project_id == query.project_id]
        return Page(items=items, total=len(items), limit=query.limit, offset=query.offset)

    async def get_trace(self, trace_id: str, *, project_id: str | None = None) -> TraceTree | None:
        self.asked.append(("get_trace", trace_id, project_id))
        for trace in self.traces:
            if trace.trace_id == trace_id and trace.project_id == project_id:
                return TraceTree(trace=trace, spans=[])
        return None

    async def list_spans(self, query: SpanQuery) -> Page[Span]:
        self.asked.append(query)
        return Page(items=[], total=0, limit=query.limit, offset=query.offset)

    async def list_logs(self, query: LogQuery) -> Page[Log]:
        self.asked.append(query)
        return Page(items=[], total=0, limit=query.limit, offset=query.offset)

    async def list_metrics(self, query: MetricQuery) -> Page[Metric]:
        self.asked.append(query)
        return Page(items=[], total=0, limit=query.limit, offset=query.offset)

    async def list_scores(self, query: ScoreQuery) -> Page[Score]:
        self.asked.append(query)
        return Page(items=[], total=0, limit=query.limit, offset=query.offset)

    async def list_feedback(self, query: FeedbackQuery) -> Page[Feedback]:
        self.asked.append(query)
        return Page(items=[], total=0, limit=query.limit, offset=query.offset)

    async def time_series(self, query: TimeSeriesQuery) -> list[TimeBucket]:
        self.asked.append(query)
        return [TimeBucket(start=query.start, count=0, errors=0, error_rate=0.0)]


class ListBackend(ObservabilityBackend):
    type: ClassVar[str] = "lists"

    def __init__(self) -> None:
        self.query = ListQueries()
        self.initialised = 0
        self.closed = 0

    async def init(self) -> None:
        self.initialised += 1

    def ingestion_worker(
        self, file_storage: FileStorageProvider, *, build_dirs: list[str] | None = None
    ) -> IngestionWorker:
        raise NotImplementedError

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
async def observed(world: World) -> tuple[World, ListQueries]:
    backend = ListBackend()
    world.admin.observability = backend
    backend.query.traces.append(
        Trace(project_id=world.project.id, trace_id="t1", name="agent.generate", start_time=T0)
    )
    return world, backend.query


async def test_reads_are_scoped_to_a_visible_project(observed: tuple[World, ListQueries]) -> None:
    world, queries = observed
    admin = world.admin
    page = await admin.list_traces(world.viewer.id, TraceQuery(project_id=world.project.id))
    assert [t.trace_id for t in page.items] == ["t1"]
    tree = await admin.get_trace(world.viewer.id, world.project.id, "t1")
    assert tree.trace.name == "agent.generate"
    with pytest.raises(NotFound, match="trace not found"):
        await admin.get_trace(world.viewer.id, world.project.id, "t2")
    with pytest.raises(NotFound):
        await admin.list_traces(world.outsider.id, TraceQuery(project_id=world.project.id))
    with pytest.raises(InvalidInput, match="project_id is required"):
        await admin.list_traces(world.root.id, TraceQuery())
    assert ("get_trace", "t1", world.project.id) in queries.asked


async def test_every_signal_is_readable(observed: tuple[World, ListQueries]) -> None:
    world, queries = observed
    admin, user, project_id = world.admin, world.member.id, world.project.id
    assert (await admin.list_spans(user, SpanQuery(project_id=project_id))).total == 0
    assert (await admin.list_logs(user, LogQuery(project_id=project_id))).total == 0
    assert (await admin.list_metrics(user, MetricQuery(project_id=project_id))).total == 0
    assert (await admin.list_scores(user, ScoreQuery(project_id=project_id))).total == 0
    assert (await admin.list_feedback(user, FeedbackQuery(project_id=project_id))).total == 0
    buckets = await admin.time_series(
        user, TimeSeriesQuery(project_id=project_id, start=T0, end=T0 + timedelta(hours=1))
    )
    assert len(buckets) == 1
    assert len(queries.asked) == 6


async def test_a_deployment_filter_must_belong_to_the_project(
    observed: tuple[World, ListQueries],
) -> None:
    world, _ = observed
    admin, owner = world.admin, world.owner
    other = await admin.create_project(
        owner.id, world.team.id, CreateProject(name="Other", source_id="support-bot")
    )
    foreign = await admin.create_deployment(
        owner.id, other.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    await admin.list_logs(
        owner.id, LogQuery(project_id=world.project.id, deployment_id=world.deployment.id)
    )
    with pytest.raises(NotFound, match="deployment not found"):
        await admin.list_logs(
            owner.id, LogQuery(project_id=world.project.id, deployment_id=foreign.id)
        )


async def test_a_custom_role_without_observability_cannot_read(
    observed: tuple[World, ListQueries],
) -> None:
    from mastra_admin.core.inputs import AssignRole, CreateRole
    from mastra_admin.core.models import ResourceType

    world, _ = observed
    admin = world.admin
    role = await admin.create_role(
        world.owner.id, world.team.id, CreateRole(name="reader", permissions=["project:read"])
    )
    await admin.assign_role(
        world.owner.id,
        world.team.id,
        AssignRole(
            role_id=role.id,
            user_id=world.outsider.id,
            resource_type=ResourceType.PROJECT,
            resource_id=world.project.id,
        ),
    )
    with pytest.raises(PermissionDenied):
        await admin.list_traces(world.outsider.id, TraceQuery(project_id=world.project.id))


async def test_without_a_backend_reads_are_unavailable(world: World) -> None:
    with pytest.raises(Unavailable, match="no observability backend"):
        await world.admin.list_traces(world.owner.id, TraceQuery(project_id=world.project.id))


async def test_init_and_close_reach_the_backend(make_admin: AdminFactory) -> None:
    backend = ListBackend()
    admin = await make_admin(observability=backend)
    assert backend.initialised == 1
    await admin.close()
    assert backend.closed == 1
