"""The embedded server's supervisor: a postmaster killed with ``kill -9`` makes storage
calls fail at once with ``Unavailable`` (and a retry hint) instead of after the pool's
timeout, and is started again by itself, with backoff while it cannot start.

Every bound below comes from the settings the storage was given, never from fixed
seconds: the pool's timeout is set far above them, so a call that waited for it
would fail the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from mastra_admin.core.errors import Unavailable
from mastra_admin.core.models import Team
from mastra_admin.stores.pg import EmbeddedSettings, PgAdminStorage, PgSettings

EMBEDDED = EmbeddedSettings(
    check_interval_s=0.25,
    restart_backoff_initial_s=0.2,
    restart_backoff_max_s=1.0,
    start_timeout_s=30,
    server_options={"fsync": "off"},
)
SETTINGS = PgSettings(pool_min_size=2, pool_timeout_s=60, embedded=EMBEDDED)
# Longest a restart may take once PostgreSQL can start: the wait before the next
# attempt, plus the attempt itself.
BACK_WITHIN_S = EMBEDDED.restart_backoff_max_s + EMBEDDED.start_timeout_s


def _kill_postmaster(storage: PgAdminStorage) -> int:
    """``kill -9`` the postmaster and wait until it is gone, and its backends too (they
    answer queries until they notice); its pid file stays. The postmaster is this
    process's child: it is left for the supervisor to reap (``psutil.wait`` would
    take its exit status away)."""
    assert storage.embedded is not None
    pid = storage.embedded.postmaster_pid()
    assert pid is not None
    postmaster = psutil.Process(pid)
    backends = postmaster.children()
    postmaster.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            if postmaster.status() != psutil.STATUS_ZOMBIE:
                time.sleep(0.01)
                continue
        break
    _gone, alive = psutil.wait_procs(backends, timeout=10)
    assert not alive, alive
    assert (storage.embedded.data_dir / "postmaster.pid").exists()
    return pid


async def _until(what: str, check: Callable[[], bool], within: float) -> float:
    """Wait until ``check()``; return how long it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"{what} did not happen within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _fails_fast(call: Callable[[], Awaitable[object]], bound: float) -> Unavailable:
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        await call()
    took = time.monotonic() - started
    assert took < bound, f"took {took:.3f} s, more than {bound} s"
    return info.value


def _down(storage: PgAdminStorage) -> bool:
    status = storage.embedded_status
    return status is not None and status.state == "down"


def _up(storage: PgAdminStorage) -> bool:
    status = storage.embedded_status
    return status is not None and status.state == "up"


async def test_kill_9_fails_fast_with_a_retry_hint_and_the_server_is_restarted(
    pg_data_root: Path,
) -> None:
    storage = PgAdminStorage(settings=SETTINGS, data_dir=pg_data_root / "pg")
    await storage.init()
    try:
        assert storage.embedded is not None
        changes = storage.changes
        assert changes is not None
        url = storage.embedded.url()
        await storage.teams.create(Team(name="kept", slug="kept"))
        status = storage.embedded_status
        assert status is not None
        assert status.state == "up"
        assert status.restarts == 0
        killed = _kill_postmaster(storage)

        # Before the supervisor has looked, a call fails once the pool is closed under
        # it: within one check interval (twice, for the pool's own moment).
        await _fails_fast(storage.ping, 2 * EMBEDDED.check_interval_s)
        await _until("the outage noticed", lambda: _down(storage), 2 * EMBEDDED.check_interval_s)
        # Known to be down: at once, with a hint no longer than the longest backoff.
        error = await _fails_fast(storage.teams.count, EMBEDDED.check_interval_s)
        assert 1 <= error.details["retry_after"] <= math.ceil(EMBEDDED.restart_backoff_max_s)
        assert "embedded PostgreSQL server is down" in error.message
        assert "SIGKILL" in error.message
        await _fails_fast(storage.ping, EMBEDDED.check_interval_s)  # what /ready asks
        assert not changes.live  # nothing served from memory meanwhile

        await _until("the restart", lambda: _up(storage), BACK_WITHIN_S)
        status = storage.embedded_status
        assert status is not None
        assert status.restarts == 1
        assert status.last_exit == f"the postmaster (pid {killed}) was killed by SIGKILL"
        assert status.pid not in (None, killed)
        assert storage.embedded.url() == url  # same data dir and socket: same DSN
        team = await storage.teams.get_by_slug("kept")
        assert team is not None
        await storage.teams.create(Team(name="after", slug="after"))
        assert await storage.teams.count() == 2
        # The listener is told to reconnect at once; 5 s is its own longest backoff
        # (a constant of _changes, not a setting), which it must not have needed.
        await _until("the change feed live again", lambda: changes.live, 5)
    finally:
        await storage.close()
    assert storage.embedded is None


async def test_a_server_that_cannot_start_is_retried_with_backoff_until_it_can(
    pg_data_root: Path,
) -> None:
    storage = PgAdminStorage(settings=SETTINGS, data_dir=pg_data_root / "pg")
    await storage.init()
    try:
        assert storage.embedded is not None
        data_dir = storage.embedded.data_dir
        auto_conf = data_dir / "postgresql.auto.conf"
        good = auto_conf.read_text()
        auto_conf.write_text(good + "no_such_setting = 1\n")  # PostgreSQL refuses to start
        _kill_postmaster(storage)

        def failed(times: int) -> Callable[[], bool]:
            def check() -> bool:
                status = storage.embedded_status
                return status is not None and status.failed_attempts >= times

            return check

        # Attempts 1..3 wait 0, initial, 2 x initial (capped by the maximum).
        waits = [0.0] + [
            min(EMBEDDED.restart_backoff_initial_s * 2**n, EMBEDDED.restart_backoff_max_s)
            for n in range(2)
        ]
        within = sum(waits) + 3 * EMBEDDED.start_timeout_s + EMBEDDED.check_interval_s
        await _until("three failed attempts", failed(3), within)
        status = storage.embedded_status
        assert status is not None
        assert status.state == "down"
        assert status.last_error is not None
        assert "no_such_setting" in status.last_error
        assert "exited with code 1" in status.last_error
        error = await _fails_fast(storage.ping, EMBEDDED.check_interval_s)
        assert "attempt(s) to start it failed" in error.message
        assert "no_such_setting" not in error.message  # log lines stay in the log
        assert 1 <= error.details["retry_after"] <= math.ceil(EMBEDDED.restart_backoff_max_s)

        auto_conf.write_text(good)  # PostgreSQL can start again
        took = await _until("the restart", lambda: _up(storage), BACK_WITHIN_S)
        assert took <= BACK_WITHIN_S
        await storage.ping()
        status = storage.embedded_status
        assert status is not None
        assert status.restarts == 1
    finally:
        await storage.close()


async def test_closing_during_an_outage_stops_the_retries_and_leaves_no_server(
    pg_data_root: Path,
) -> None:
    storage = PgAdminStorage(settings=SETTINGS, data_dir=pg_data_root / "pg")
    await storage.init()
    assert storage.embedded is not None
    embedded = storage.embedded
    supervisor = storage.supervisor
    assert supervisor is not None
    auto_conf = embedded.data_dir / "postgresql.auto.conf"
    good = auto_conf.read_text()
    auto_conf.write_text(good + "no_such_setting = 1\n")
    try:
        _kill_postmaster(storage)
        await _until("the outage noticed", lambda: _down(storage), 2 * EMBEDDED.check_interval_s)
        await storage.close()
        assert supervisor.status.state == "stopped"
        assert embedded.postmaster_pid() is None
        with pytest.raises(Unavailable):
            await storage.ping()
    finally:
        auto_conf.write_text(good)
        await storage.close()


async def test_unsupervised_the_server_stays_down(pg_data_root: Path) -> None:
    settings = SETTINGS.model_copy(
        update={"embedded": EMBEDDED.model_copy(update={"supervise": False}), "pool_timeout_s": 1}
    )
    storage = PgAdminStorage(settings=settings, data_dir=pg_data_root / "pg")
    await storage.init()
    try:
        assert storage.supervisor is None
        assert storage.embedded_status is None
        _kill_postmaster(storage)
        await asyncio.sleep(2 * EMBEDDED.check_interval_s)
        with pytest.raises(Unavailable):
            await storage.ping()
        assert storage.embedded is not None
        assert storage.embedded.postmaster_pid() is None
    finally:
        await storage.close()
