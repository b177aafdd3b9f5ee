"""Prometheus metrics of one server: request latency, builds, queue, ingestion, collector.

Each app has its own registry (no module-level globals), so several apps can live in
one process (tests) without clashing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin
    from mastra_admin.core.observability import IngestionWorker

__all__ = ["ServerMetrics"]


class ServerMetrics:
    def observe_request(self, method: str, route: str, status: str, seconds: float) -> None:
        """Record one request (the labelled child is looked up once per label set:
        ``labels()`` costs more than the observation)."""
        key = (method, route, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.request_latency.labels(
                method=method, route=route, status=status
            )
        child.observe(seconds)

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "mastra_admin_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._latency_children: dict[tuple[str, str, str], Any] = {}
        self.builds = Gauge(
            "mastra_admin_builds", "Builds by status.", ["status"], registry=self.registry
        )
        self.queue_length = Gauge(
            "mastra_admin_build_queue_length",
            "Builds waiting in the queue.",
            registry=self.registry,
        )
        self.ingestion_lag = Gauge(
            "mastra_admin_ingestion_lag_seconds",
            "Age of the oldest observability file not yet ingested.",
            registry=self.registry,
        )
        self.ingested_events = Gauge(
            "mastra_admin_ingested_events_total",
            "Events ingested by this process's worker since start.",
            registry=self.registry,
        )
        self.collector_events = Counter(
            "mastra_admin_collector_events",
            "Events accepted by the collector.",
            ["signal"],
            registry=self.registry,
        )

    async def render(self, admin: MastraAdmin, ingestion: IngestionWorker | None) -> bytes:
        """Refresh the gauges that are read from storage, then render the text format."""
        counts = await admin.storage.builds.count_by_status()
        for status, count in counts.items():
            self.builds.labels(status=str(status)).set(count)
        self.queue_length.set(await admin.storage.builds.queue_length())
        if ingestion is not None:
            ingest = ingestion.status()
            if ingest.lag_seconds is not None:
                self.ingestion_lag.set(ingest.lag_seconds)
            self.ingested_events.set(ingest.total_events_ingested)
        return generate_latest(self.registry)
