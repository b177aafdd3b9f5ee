"""The observability collector: what Mastra's CloudExporter posts to.

``POST /api/collector/{deployment_id}/{signal}/publish`` with ``{"<signal>": [...]}``
and ``Authorization: Bearer <the deployment's collector token>``. Each accepted batch
is written as one file into file storage, durably, before the 200; the write path
never waits on ClickHouse. Malformed bodies are 400, a bad token 401, a body over
the limit 413, full or failing storage 503 with ``Retry-After``, and in every error
case no file (and no partial file) is left.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import structlog
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from mastra_admin.core.errors import NotFound, Unauthenticated, Unavailable
from mastra_admin.core.events import EventType
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.server.auth import bearer_token
from mastra_admin.server.errors import error_response
from mastra_admin.server.routing import Call, Endpoint

__all__ = ["SIGNALS", "endpoints"]

_log = structlog.get_logger("mastra_admin.server.collector")

SIGNALS: dict[str, EventType] = {
    "spans": EventType.SPAN,
    "logs": EventType.LOG,
    "metrics": EventType.METRIC,
    "scores": EventType.SCORE,
    "feedback": EventType.FEEDBACK,
}


class Accepted(BaseModel):
    accepted: int


class _ProjectCache:
    """deployment id -> project id; deployments never change project."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def get(self, key: str) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)


async def _read_limited(call: Call, limit: int) -> bytes | None:
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in call.request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def publish(call: Call) -> Any:
    signal = call.params["signal"]
    deployment_id = call.params["deployment_id"]
    event_type = SIGNALS.get(signal)
    if event_type is None:
        raise NotFound(f"unknown signal {signal!r}; one of {', '.join(SIGNALS)}")
    token = bearer_token(call.request)
    if token is None or not call.admin.verify_collector_token(deployment_id, token):
        raise Unauthenticated("the collector token is not valid for this deployment")
    state = call.request.app.state
    limit: int = state.collector_max_bytes
    try:
        raw = await _read_limited(call, limit)
    except ClientDisconnect:
        return error_response(400, "bad_request", "the client went away before the body ended")
    if raw is None:
        return error_response(
            413, "payload_too_large", f"a batch may be at most {limit} bytes", {"limit": limit}
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error_response(
            400, "bad_request", "the body is not valid JSON", {"reason": str(exc)}
        )
    records = body.get(signal) if isinstance(body, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return error_response(
            400,
            "bad_request",
            f'the body must be {{"{signal}": [ ...objects... ]}}',
            {"field": signal},
        )
    if not records:
        return Accepted(accepted=0)
    cache: _ProjectCache = state.collector_projects
    project_id = cache.get(deployment_id)
    if project_id is None:
        deployment = await call.admin.storage.deployments.get(deployment_id)
        if deployment is None:
            raise NotFound("deployment not found", details={"deployment_id": deployment_id})
        project_id = deployment.project_id
        cache.put(deployment_id, project_id)
    for record in records:
        record["project_id"] = project_id
        record["deployment_id"] = deployment_id
    file_storage = call.admin.file_storage
    if file_storage is None:
        raise Unavailable("no file storage is configured")
    path = await write_batch(file_storage, event_type, project_id, records)
    _log.debug("collector.accepted", signal=signal, count=len(records), path=path)
    state.metrics.collector_events.labels(signal=signal).inc(len(records))
    return JSONResponse({"accepted": len(records)})


endpoints = [
    Endpoint(
        "POST",
        "/api/collector/{deployment_id}/{signal}/publish",
        publish,
        summary="Accept a batch of observability events from a deployed Mastra server",
        tag="collector",
        access="public",
        response=Accepted,
        extra_responses={
            400: "malformed body",
            401: "bad token",
            413: "too large",
            503: "storage full",
        },
    )
]
