"""Errors, health, readiness, metrics, request ids, rate limiting and the OpenAPI document."""

from __future__ import annotations

import httpx

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.server.routes import all_endpoints

from .conftest import World


async def test_health_and_ready_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["storage"] == "ok"


async def test_ready_is_503_when_the_database_is_gone(
    admin: MastraAdmin, client: httpx.AsyncClient
) -> None:
    await admin.storage.close()
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.headers["Retry-After"] == "5"
    assert ready.json()["status"] == "unavailable"


async def test_invalid_bodies_are_422_with_field_errors(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/teams", json={"name": "", "slug": "Not A Slug!"}, headers=world.owner.headers
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    fields = {item["field"] for item in error["details"]["fields"]}
    assert {"name", "slug"} <= fields


async def test_a_body_that_is_not_json_is_a_clear_error(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/api/teams",
        content=b"{oops",
        headers={**world.owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_conflicts_name_the_field(client: httpx.AsyncClient, world: World) -> None:
    first = await client.post("/api/teams", json={"name": "Dup"}, headers=world.owner.headers)
    assert first.status_code == 201
    again = await client.post("/api/teams", json={"name": "Dup"}, headers=world.owner.headers)
    assert again.status_code == 409
    assert again.json()["error"]["details"]["field"] == "slug"


async def test_unknown_routes_and_methods_answer_in_the_error_format(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = await client.get("/api/nothing-here", headers=world.owner.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.put("/api/me", headers=world.owner.headers)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_request_ids_are_returned_and_kept(client: httpx.AsyncClient) -> None:
    fresh = await client.get("/health")
    assert len(fresh.headers["x-request-id"]) == 32
    kept = await client.get("/health", headers={"X-Request-Id": "trace-me-123"})
    assert kept.headers["x-request-id"] == "trace-me-123"


async def test_repeated_bad_tokens_are_rate_limited(
    client: httpx.AsyncClient, world: World
) -> None:
    bad = {"Authorization": "Bearer mat_" + "x" * 43}
    statuses = [(await client.get("/api/me", headers=bad)).status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    valid = await client.get("/api/me", headers=world.owner.headers)
    assert valid.status_code == 200, "a valid credential is never refused for others' failures"
    limited = await client.get("/api/me", headers=bad)
    assert limited.status_code == 429
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert limited.json()["error"]["code"] == "rate_limited"
    anonymous = await client.get("/api/me")
    assert anonymous.status_code == 429, "no credential at all counts as a failed one"


async def test_metrics_report_builds_queue_and_requests(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.get("/api/me", headers=world.owner.headers)
    text = (await client.get("/metrics")).text
    assert "mastra_admin_build_queue_length 0.0" in text
    assert (
        'mastra_admin_http_request_duration_seconds_count{method="GET",route="/api/me",status="200"} 1.0'
        in text
    )


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    for endpoint in all_endpoints():
        assert endpoint.method.lower() in document["paths"][endpoint.path], endpoint.path
    for path in ("/api/teams", "/api/projects/{project_id}/env"):
        assert path in document["paths"]
