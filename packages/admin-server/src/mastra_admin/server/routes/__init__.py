"""The API's endpoint table, one module per resource."""

from __future__ import annotations

from mastra_admin.server.routing import Endpoint

__all__ = ["all_endpoints", "collector_endpoints"]


def all_endpoints() -> list[Endpoint]:
    from mastra_admin.server.routes import (
        collector,
        deployments,
        domains,
        me,
        observability,
        projects,
        teams,
        webhooks,
    )

    return [
        *me.endpoints,
        *teams.endpoints,
        *projects.endpoints,
        *deployments.endpoints,
        *domains.endpoints,
        *observability.endpoints,
        *collector.endpoints,
        *webhooks.endpoints,
    ]


def collector_endpoints() -> list[Endpoint]:
    """The collector's endpoints alone: all the collector listener serves."""
    from mastra_admin.server.routes import collector

    return list(collector.endpoints)
