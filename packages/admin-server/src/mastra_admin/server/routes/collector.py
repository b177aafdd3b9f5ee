"""The observability collector: what Mastra's CloudExporter posts to.

``POST /api/collector/{deployment_id}/{signal}/publish`` with ``{"<signal>": [...]}``
and ``Authorization: Bearer <the deployment's collector token>``. Each accepted batch
is written as one file into file storage, durably, before the 200; the write path
never waits on ClickHouse. Malformed bodies are 400, a bad token 401 (so is the
token of a deployment that has been deleted: deleting revokes it), a body over the
limit 413, full or failing storage 503 with ``Retry-After``, and in every error case no
file (and no partial file) is left.

Nothing in a batch is trusted to say where it belongs: every record (and the record
inside a ``{"type", "data"}`` envelope, which the ingestion opens) is stamped with the
collector's project and deployment, over whatever ids it carried.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import structlog
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from mastra_admin.core.changes import Snapshot
from mastra_admin.core.errors import InvalidInput, NotFound, Unauthenticated, Unavailable
from mastra_admin.core.events import EventType
from mastra_admin.core.observability_writer import write_batch
from mastra_admin.server.auth import bearer_token
from mastra_admin.server.errors import error_response
from mastra_admin.server.routing import Call, Endpoint, parse_json

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


MAX_RECORD_DEPTH = 128
"""Deepest nesting a batch may have (a span's input and output are the application's
own values, so deeper than the API's bodies)."""

_ENVELOPE_TYPES = frozenset(("trace", "span", "log", "metric", "score", "feedback"))
"""A record whose ``type`` is one of these and whose ``data`` is an object is an
envelope: the ingestion reads the record from ``data``."""


class _ProjectCache:
    """deployment id -> project id, for as long as the storage's change tracking
    vouches that the deployment still exists (a deleted deployment's token is refused
    at once); without live tracking every batch looks the deployment up."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, tuple[Snapshot, str]] = OrderedDict()
        self._size = size

    async def project_of(self, call: Call, deployment_id: str) -> str | None:
        storage = call.admin.storage
        tracker = storage.changes
        if tracker is None or not tracker.live:
            deployment = await storage.deployments.get(deployment_id)
            return deployment.project_id if deployment is not None else None
        kept = self._items.get(deployment_id)
        if kept is not None and tracker.valid(kept[0]):
            self._items.move_to_end(deployment_id)
            return kept[1]
        with tracker.recording() as record:
            deployment = await storage.deployments.get(deployment_id)
        if deployment is None:
            self._items.pop(deployment_id, None)
            return None
        if record.complete:
            self._items[deployment_id] = (tracker.snapshot_of(record), deployment.project_id)
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return deployment.project_id


def _stamp(record: dict[str, Any], project_id: str, deployment_id: str) -> None:
    """The collector's ids over the record's own (and its envelope's record's)."""
    for target in _records_in(record):
        target.pop("projectId", None)
        target.pop("deploymentId", None)
        target["project_id"] = project_id
        target["deployment_id"] = deployment_id


def _records_in(record: dict[str, Any]) -> list[dict[str, Any]]:
    if record.get("type") not in _ENVELOPE_TYPES:
        return [record]
    data = record.get("data")
    if isinstance(data, str) and data.startswith("{"):
        try:
            data = parse_json(data.encode(), max_depth=MAX_RECORD_DEPTH)
        except InvalidInput:
            # Not an object the ingestion can read: it falls back on the envelope's ids.
            return [record]
        if not isinstance(data, dict):
            return [record]
        record["data"] = data
    return [record, data] if isinstance(data, dict) else [record]


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
    cache: _ProjectCache = state.collector_projects
    project_id = await cache.project_of(call, deployment_id)
    if project_id is None:
        raise Unauthenticated(
            "the collector token was revoked: its deployment was deleted",
            details={"deployment_id": deployment_id},
        )
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
        body = parse_json(raw, max_depth=MAX_RECORD_DEPTH)
    except InvalidInput as exc:
        return error_response(400, "bad_request", exc.message, exc.details)
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
    for record in records:
        _stamp(record, project_id, deployment_id)
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
