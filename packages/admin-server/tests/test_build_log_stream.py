"""Build logs over SSE with real HTTP clients on a real socket."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest

from mastra_admin.core.admin import MastraAdmin
from mastra_admin.core.inputs import CreateDeployment, CreateProject
from mastra_admin.core.models import Build, DeploymentType
from mastra_admin.core.testing.fakes import FakeRunner
from mastra_admin.server import sse

from .conftest import World


@dataclass
class Received:
    lines: list[tuple[int, str]] = field(default_factory=list)
    end: dict[str, object] | None = None
    comments: int = 0


async def _follow(url: str, headers: dict[str, str]) -> Received:
    received = Received()
    async with httpx.AsyncClient(timeout=30) as http, http.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async for raw in r.aiter_lines():
            if raw.startswith(":"):
                received.comments += 1
            elif raw == "":
                if event.get("event") == "line":
                    received.lines.append((int(event["id"]), event["data"]))
                elif event.get("event") == "end":
                    received.end = json.loads(event["data"])
                    break
                event = {}
            else:
                key, _, value = raw.partition(": ")
                event[key] = event[key] + "\n" + value if key in event else value
    return received


async def _queued_build(admin: MastraAdmin, world: World) -> Build:
    owner = world.owner.user.id
    project = await admin.create_project(
        owner, world.team_id, CreateProject(name="Weather", source_id="weather-agent")
    )
    deployment = await admin.create_deployment(
        owner, project.id, CreateDeployment(type=DeploymentType.PRODUCTION)
    )
    return await admin.deploy(owner, deployment.id)


async def test_many_clients_get_the_log_live_then_the_end(
    admin: MastraAdmin, world: World, live_url: str
) -> None:
    build = await _queued_build(admin, world)
    assert isinstance(admin.runner, FakeRunner)
    admin.runner.step_delay_s = 0.2
    url = f"{live_url}/api/builds/{build.id}/logs/stream"
    followers = [asyncio.create_task(_follow(url, world.viewer.headers)) for _ in range(5)]
    await asyncio.sleep(0.3)  # every client is connected before the first line
    assert admin.orchestrator is not None
    processed = await admin.orchestrator.run_once()
    assert processed is not None
    results = await asyncio.wait_for(asyncio.gather(*followers), timeout=30)
    log = await admin.get_build_log(world.owner.user.id, build.id)
    expected = log.splitlines()
    assert len(expected) >= 3
    for received in results:
        assert [line for _, line in received.lines] == expected
        assert received.end == {"status": "succeeded", "error_message": None}
        offsets = [offset for offset, _ in received.lines]
        assert offsets == sorted(offsets)


async def test_last_event_id_resumes_after_the_last_line_seen(
    admin: MastraAdmin, world: World, live_url: str
) -> None:
    build = await _queued_build(admin, world)
    assert admin.orchestrator is not None
    await admin.orchestrator.run_once()
    url = f"{live_url}/api/builds/{build.id}/logs/stream"
    everything = await _follow(url, world.viewer.headers)
    assert len(everything.lines) >= 3
    second_offset = everything.lines[1][0]
    resumed = await _follow(url, {**world.viewer.headers, "Last-Event-ID": str(second_offset)})
    assert resumed.lines == everything.lines[2:]
    assert resumed.end == everything.end


async def test_idle_streams_get_keep_alives(
    admin: MastraAdmin, world: World, live_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.1)
    build = await _queued_build(admin, world)
    url = f"{live_url}/api/builds/{build.id}/logs/stream"
    follower = asyncio.create_task(_follow(url, world.viewer.headers))
    await asyncio.sleep(0.6)  # queued: no lines yet, only keep-alives
    await admin.cancel_build(world.owner.user.id, build.id)
    received = await asyncio.wait_for(follower, timeout=10)
    assert received.comments >= 3
    assert received.end is not None
    assert received.end["status"] == "cancelled"


async def test_streams_need_a_token_and_access(
    admin: MastraAdmin, world: World, live_url: str
) -> None:
    build = await _queued_build(admin, world)
    url = f"{live_url}/api/builds/{build.id}/logs/stream"
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers=world.outsider.headers)).status_code == 404


def test_every_line_ending_in_a_log_line_stays_inside_its_event() -> None:
    event = sse._event("line", "progress 10%\rprogress 90%\r\ndone", 42).decode()
    assert event == ("event: line\nid: 42\ndata: progress 10%\ndata: progress 90%\ndata: done\n\n")
