"""Every proxied request becomes a runtime-log record of its deployment (source
``edge``), written through the observability writer into file storage."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mastra_admin.core.events import Log
from mastra_admin.core.local_file_storage import LocalFileStorage
from mastra_admin.core.models import Route
from mastra_admin.routers.caddy import CaddyEdgeRouter
from mastra_admin.routers.caddy._access_log import access_log_line, access_log_record
from mastra_admin.routers.caddy._hosts import EdgeHost

from .conftest import AppFactory, RouterFactory, host_of, send_through, wait_for

RouteTo = Callable[..., Awaitable[Route]]


def shop_app() -> web.Application:
    async def agents(request: web.Request) -> web.Response:
        return web.json_response({"agents": ["weather"] * 50})

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such agent")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_get("/api/agents", agents)
    app.router.add_get("/api/agents/missing", missing)
    app.router.add_post("/api/broken", broken)
    return app


async def records(files: LocalFileStorage, project_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for info in await files.list(f"logs/{project_id}/"):
        for line in (await files.read(info.path)).splitlines():
            out.append(json.loads(line))
    return out


async def test_access_logs_reach_the_deployments_runtime_logs(
    make_router: RouterFactory,
    serve_app: AppFactory,
    route_to: RouteTo,
    file_storage: LocalFileStorage,
) -> None:
    router = await make_router()
    route = await route_to(router, *await serve_app(shop_app()))
    other = await route_to(router, *await serve_app(shop_app()))
    host = host_of(router, route)

    ok = await send_through(router, host, "/api/agents?token=s3cret-value")
    await send_through(router, host, "/api/agents/missing")
    await send_through(router, host, "/api/broken", method="POST")
    await send_through(router, host_of(router, other), "/api/agents")
    await send_through(router, f"nobody.{router.base_domain}", "/wp-login.php")

    found: list[dict[str, Any]] = []

    async def arrived() -> bool:
        await router.flush_access_logs()
        found[:] = await records(file_storage, route.project_id)
        return len(found) >= 3

    await wait_for(arrived, within=10)

    by_path = {r["attributes"]["path"]: r for r in found}
    assert set(by_path) == {"/api/agents", "/api/agents/missing", "/api/broken"}
    agents = by_path["/api/agents"]
    assert agents["deployment_id"] == route.deployment_id
    assert agents["project_id"] == route.project_id
    assert agents["source"] == "edge"
    assert agents["level"] == "info"
    attributes = agents["attributes"]
    assert attributes["status"] == 200
    assert attributes["method"] == "GET"
    assert attributes["host"] == host
    assert attributes["bytes"] == len(ok.body)
    assert 0 < attributes["duration_ms"] < 5000
    assert by_path["/api/agents/missing"]["level"] == "warn"
    assert by_path["/api/broken"]["level"] == "error"
    assert by_path["/api/broken"]["attributes"]["method"] == "POST"
    # The query string (a token, here) is dropped before anything is written.
    for info in await file_storage.list(""):
        assert b"s3cret" not in await file_storage.read(info.path)
    # The other deployment's request is its own; the unrouted host is nobody's.
    theirs = await records(file_storage, other.project_id)
    assert [r["deployment_id"] for r in theirs] == [other.deployment_id]
    assert not await file_storage.list("logs/unknown/")


def test_malformed_or_foreign_lines_make_no_record() -> None:
    def lookup(host: str) -> EdgeHost | None:
        return EdgeHost(host, "r", "d", "p") if host == "known.localhost" else None

    line = {
        "ts": 1_700_000_000.5,
        "request": {"method": "GET", "host": "known.localhost:8080", "uri": "/x?y=1"},
        "status": 200,
        "duration": 0.0123,
        "size": 5,
    }
    record = access_log_record(json.dumps(line).encode(), lookup)
    assert record is not None
    log = Log.model_validate(record)  # a Log record, as the ingestion worker reads it
    assert log.attributes["path"] == "/x"
    assert log.attributes["duration_ms"] == 12.3
    assert log.source == "edge"
    assert log.timestamp.timestamp() == 1_700_000_000.5
    again = access_log_record(json.dumps(line).encode(), lookup)
    assert again is not None
    assert again["id"] == record["id"]

    assert access_log_record(b"not json", lookup) is None
    assert access_log_record(b'{"request": 3}', lookup) is None
    foreign = {**line, "request": {**line["request"], "host": "other.localhost"}}  # type: ignore[dict-item]
    assert access_log_record(json.dumps(foreign).encode(), lookup) is None
    # Hostile values: no time, a time past any clock, a NaN, an integer past 64 bits,
    # a line that is not UTF-8, a nested structure where a number belongs.
    for bad in (
        {**line, "ts": None},
        {**line, "ts": 1e300},
        {**line, "duration": -1},
        {**line, "status": 10**30},
        {**line, "status": 1000},
        {**line, "size": -5},
        {**line, "size": {"a": 1}},
    ):
        assert access_log_record(json.dumps(bad).encode(), lookup) is None, bad
    assert access_log_record(b'{"ts": NaN, "request": {"host": "known.localhost"}}', lookup) is None
    invalid_utf8 = json.dumps(line).encode().replace(b"/x", b"/\xff")
    assert access_log_record(invalid_utf8, lookup) is None


def test_an_encoded_line_is_the_record_and_one_line_of_json() -> None:
    """What ``ship`` hands the writer: the record itself, one line, whatever the
    request's path held (quotes, newlines, control characters, non-ASCII)."""
    edge = EdgeHost("known.localhost", "r", "d", "p")
    path = '/a"b\\c\n{"id":"forged"}\u2028\x00é?token=s3cret'
    line = json.dumps(
        {
            "ts": 1_700_000_000.25,
            "request": {"method": "GET", "host": "known.localhost", "uri": path},
            "status": 200,
            "duration": 0.5,
            "size": 5,
        }
    ).encode()
    made = access_log_line(line, {"known.localhost": edge}.get)
    assert made is not None
    project_id, encoded = made
    assert project_id == "p"
    assert encoded.endswith(b"\n")
    assert encoded.count(b"\n") == 1
    assert json.loads(encoded) == access_log_record(line, {"known.localhost": edge}.get)
    assert json.loads(encoded)["attributes"]["path"] == path.split("?")[0]
    assert json.loads(encoded)["id"] != "forged"
    assert b"s3cret" not in encoded


async def test_without_file_storage_there_are_no_access_logs(
    storage: Any, operator_caddy: Any, tmp_path: Any
) -> None:
    from .conftest import settings_for

    router = CaddyEdgeRouter(settings_for(tmp_path / "r", operator_caddy.address), storage.routes)
    await router.start()
    try:
        assert router.access_log_counts == {}
        config = await router._admin.config()  # type: ignore[union-attr]
        assert "logs" not in config["apps"]["http"]["servers"]["mastra_edge"]
    finally:
        await router.close()


def test_the_tail_follows_rotations_and_resumes_where_it_stopped(tmp_path: Any) -> None:
    from mastra_admin.routers.caddy._access_log import AccessLogTail

    log, state = tmp_path / "access.log", tmp_path / "access.offset"
    tail = AccessLogTail(log, state)
    assert tail.read() == []  # Caddy has not written yet
    log.write_bytes(b'{"n":1}\n{"n":2}\n{"n"')
    assert tail.read() == [b'{"n":1}', b'{"n":2}']
    with log.open("ab") as handle:
        handle.write(b":3}\n")
    assert tail.read() == [b'{"n":3}']
    tail.commit()
    tail.close()

    with log.open("ab") as handle:
        handle.write(b'{"n":4}\n')
    resumed = AccessLogTail(log, state)
    assert resumed.read() == [b'{"n":4}']  # nothing read twice after a restart

    # Caddy rolls the file: the rest of the old one first, then the new one.
    with log.open("ab") as handle:
        handle.write(b'{"n":5}\n')
    log.rename(tmp_path / "access-1.log")
    log.write_bytes(b'{"n":6}\n')
    assert resumed.read() == [b'{"n":5}']
    assert resumed.read() == [b'{"n":6}']
    assert resumed.read() == []
    resumed.close()
