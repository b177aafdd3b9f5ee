"""The embedded PostgreSQL of a running ``mastra-admin serve`` dies (``kill -9`` of its
postmaster): API requests get 503 with ``Retry-After`` at once, not after the pool's
timeout, and 200 again soon after, from the same ``serve`` process, which started
PostgreSQL again by itself.

``serve`` runs on the embedded default with small supervisor settings; every time
bound below is derived from them (the pool's timeout is set far above them, so a
request that waited for it would fail the test).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from mastra_admin.core.testing.runner import leftover_processes

from ._platform import Background, ServedPlatform, served, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHECK_INTERVAL_S = 0.25
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 1.0
START_TIMEOUT_S = 30.0
ENV = {
    "MASTRA_ADMIN_STORAGE__EMBEDDED__CHECK_INTERVAL_S": str(CHECK_INTERVAL_S),
    "MASTRA_ADMIN_STORAGE__EMBEDDED__RESTART_BACKOFF_INITIAL_S": str(BACKOFF_INITIAL_S),
    "MASTRA_ADMIN_STORAGE__EMBEDDED__RESTART_BACKOFF_MAX_S": str(BACKOFF_MAX_S),
    "MASTRA_ADMIN_STORAGE__EMBEDDED__START_TIMEOUT_S": str(START_TIMEOUT_S),
    "MASTRA_ADMIN_STORAGE__POOL_TIMEOUT_S": "60",
}
# A request during the outage is answered within a few check intervals: the supervisor
# notices the death within one, and a request that was waiting for a connection is
# failed then (the rest is HTTP on a busy machine).
FAST_S = 4 * CHECK_INTERVAL_S
# Once PostgreSQL can start: the wait before the next attempt, plus the attempt.
BACK_WITHIN_S = BACKOFF_MAX_S + START_TIMEOUT_S
RETRY_AFTER_MAX = math.ceil(BACKOFF_MAX_S)


@dataclass
class Answer:
    at: float
    path: str
    status: int
    seconds: float
    retry_after: str | None
    body: str


@dataclass
class Probe(Background):
    """A client asking for the team list and for ``/ready`` without pause."""

    join_timeout_s: float = field(default=120.0, kw_only=True)

    platform: ServedPlatform
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        with httpx.Client(headers=self.platform.headers, timeout=90) as client:
            while not self.stopped:
                for path in ("/api/teams", "/ready"):
                    started = time.monotonic()
                    try:
                        response = client.get(f"{self.platform.url}{path}")
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    self.answers.append(
                        Answer(
                            started,
                            path,
                            response.status_code,
                            time.monotonic() - started,
                            response.headers.get("retry-after"),
                            response.text,
                        )
                    )
                time.sleep(0.01)

    def since(self, at: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= at]

    def seen(self, status: int, since: float, path: str = "/api/teams") -> Answer | None:
        return next((a for a in self.since(since) if a.status == status and a.path == path), None)


def _postmaster(platform: ServedPlatform) -> psutil.Process:
    pid = int((platform.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


def _kill(postmaster: psutil.Process) -> float:
    """``kill -9``; return when. (Not waited for here: it is ``serve``'s child.)"""
    at = time.monotonic()
    postmaster.kill()
    return at


def _check_outage(probe: Probe, since: float, until: float) -> list[Answer]:
    """The answers between ``since`` and ``until``: 200 or 503 only, every 503 fast and
    with a Retry-After (the API's within the backoff), and the API's error body."""
    answers = [a for a in probe.since(since) if a.at < until]
    assert {a.status for a in answers} <= {200, 503}, [(a.path, a.status) for a in answers]
    failed = [a for a in answers if a.status == 503]
    assert failed
    slowest = max(a.seconds for a in failed)
    assert slowest < FAST_S, f"a 503 took {slowest:.3f} s"
    for answer in failed:
        assert answer.retry_after is not None
    api = [a for a in failed if a.path == "/api/teams"]
    assert api
    for answer in api:  # the supervisor's hint (/ready has a fixed one of its own)
        assert 1 <= int(answer.retry_after or 0) <= RETRY_AFTER_MAX, answer.retry_after
    assert '"code":"unavailable"' in api[0].body.replace(" ", "")
    assert "embedded PostgreSQL server is down" in api[0].body
    return answers


@pytest.fixture
def platform() -> Iterator[ServedPlatform]:
    with served(env=ENV) as running:
        yield running


def test_killed_embedded_postgres_gives_fast_503s_and_serve_restarts_it(
    platform: ServedPlatform,
) -> None:
    serve_pid = platform.pid
    platform.get("/api/teams")
    first = _postmaster(platform)
    assert first.ppid() == serve_pid  # serve's own child: it learns how it ended

    # 1. Killed: restarted at once.
    with Probe(platform) as probe:
        wait_for("traffic", lambda: probe.seen(200, 0), timeout=30)
        killed_at = _kill(first)
        down = wait_for("a 503", lambda: probe.seen(503, killed_at), timeout=FAST_S * 4)
        assert down.at - killed_at < FAST_S
        back = wait_for(
            "200 again", lambda: probe.seen(200, down.at), timeout=BACK_WITHIN_S, interval=0.05
        )
        time.sleep(0.3)
    _check_outage(probe, killed_at, back.at)
    assert probe.errors == [], probe.errors[:5]
    assert probe.answers[-1].status == 200
    second = _postmaster(platform)
    assert second.pid != first.pid
    assert second.ppid() == serve_pid
    assert platform.pid == serve_pid
    assert platform.running()

    # 2. Killed while PostgreSQL cannot start: 503s for as long as that lasts, with
    # /ready saying why, and 200 soon after it can start again.
    auto_conf = platform.data_dir / "postgres" / "postgresql.auto.conf"
    good = auto_conf.read_text()
    try:
        auto_conf.write_text(good + "no_such_setting = 1\n")
        with Probe(platform) as probe:
            wait_for("traffic", lambda: probe.seen(200, 0), timeout=30)
            killed_at = _kill(second)
            down = wait_for("a 503", lambda: probe.seen(503, killed_at), timeout=FAST_S * 4)
            failing = wait_for(
                "/ready to report failed attempts",
                lambda: next(
                    (
                        a
                        for a in probe.since(killed_at)
                        if a.path == "/ready" and "attempt(s) to start it failed" in a.body
                    ),
                    None,
                ),
                timeout=BACK_WITHIN_S,
            )
            assert failing.status == 503
            assert "embedded PostgreSQL server is down" in failing.body
            assert "SIGKILL" in failing.body
            time.sleep(2 * BACKOFF_MAX_S)  # a few attempts, all failing
            fixed_at = time.monotonic()
            auto_conf.write_text(good)
            back = wait_for(
                "200 again",
                lambda: probe.seen(200, fixed_at),
                timeout=BACK_WITHIN_S,
                interval=0.05,
            )
            time.sleep(0.3)
        answers = _check_outage(probe, killed_at, back.at)
        # Once the platform has said the server is down, no request sent after that is
        # answered as if PostgreSQL ran. (Until the supervisor has reaped the killed
        # postmaster, its backends may still answer for a moment, and a request sent
        # before can still end with a 200: on a loaded machine both last a while.)
        known = next(a for a in answers if "embedded PostgreSQL server is down" in a.body)
        late = [a for a in answers if a.status == 200 and a.at - a.seconds > known.at]
        assert late == [], [(a.path, round(a.at - known.at, 3)) for a in late]
        assert back.at - fixed_at < BACK_WITHIN_S
    finally:
        auto_conf.write_text(good)
    assert probe.errors == [], probe.errors[:5]
    assert platform.pid == serve_pid
    assert httpx.get(f"{platform.url}/ready", timeout=15).status_code == 200

    log = "".join(platform.output)
    assert "embedded_pg.down" in log
    assert "killed by SIGKILL" in log
    assert "embedded_pg.restart_failed" in log
    assert log.count("embedded_pg.restarted") == 2

    # serve owns the PostgreSQL it started again: it stops it on the way out.
    last = _postmaster(platform)
    assert platform.stop() == 0, platform.log_tail()
    assert not last.is_running() or last.status() == psutil.STATUS_ZOMBIE
    wait_for("nothing left running", lambda: not leftover_processes(platform.root), timeout=10)
