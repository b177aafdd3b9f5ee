"""Keeping the embedded PostgreSQL server running.

Before this existed, a server that died (a crash, the OOM killer, ``kill -9``) stayed
dead until ``serve`` was restarted, and every request waited for the pool's timeout
(10 s) to fail. ``EmbeddedSupervisor`` is one asyncio task per storage that:

- checks every ``embedded.check_interval_s`` whether the postmaster still runs (one
  ``waitpid`` for a server this process started, one read of ``/proc`` for one it
  attached to: cheap enough to do often, and it notices a death that no query has
  run into yet), and at once when a storage call fails for want of the server
  (``diagnose``);
- when it has died, logs why (the signal or exit code, and the server's last log
  lines), calls ``on_down`` (the storage makes every call fail at once with
  ``Unavailable`` carrying a ``retry_after`` hint, and fails the calls waiting for a
  connection), and starts the server again on the same data dir and socket (so the
  connection URL stays valid; the stale ``postmaster.pid`` and orphaned backends of
  the dead server are dealt with by ``EmbeddedPostgres.start``);
- retries with exponential backoff (``embedded.restart_backoff_initial_s`` doubling up
  to ``embedded.restart_backoff_max_s``) until the server starts or the storage is
  closed; the first attempt is immediate, unless the server had died again within
  ``restart_backoff_max_s`` of its last restart (a crash loop keeps backing off);
- once it runs, calls ``on_up`` (the storage opens a new pool and nudges its change
  listener); a failure there counts as a failed attempt.

Its state (``status``) is what ``/ready`` reports through ``ping`` while the server
is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from mastra_admin.core.errors import Unavailable

from ._embedded import EmbeddedPostgres
from ._settings import EmbeddedSettings

__all__ = ["EmbeddedStatus", "EmbeddedSupervisor"]

_log = structlog.get_logger("mastra_admin.stores.pg.embedded")

State = Literal["up", "down", "stopped"]

# How long a failed call waits for a postmaster exit under way to be reapable (its
# backends report its death first); paid only when a call lost its connection.
_EXIT_GRACE_S = 0.1


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    """What the supervisor knows about the embedded server, at one moment."""

    state: State
    pid: int | None
    restarts: int
    """Times the server was started again after it died, since the storage opened."""
    down_since: datetime | None
    """When the current outage was noticed (``None`` while up)."""
    last_exit: str | None
    """Why the server last stopped (signal or exit code), for the log and ``/ready``."""
    failed_attempts: int
    """Failed attempts to start it in the current outage."""
    last_error: str | None
    """Why the last attempt to start it failed."""
    retry_after_s: int | None
    """While down: seconds until it is worth asking again (the next attempt)."""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.down_since is not None:
            data["down_since"] = self.down_since.isoformat()
        return data


class EmbeddedSupervisor:
    """Watches one ``EmbeddedPostgres`` and starts it again when it dies (see the
    module doc). ``start`` after the server was started; ``stop`` before stopping it."""

    def __init__(
        self,
        server: EmbeddedPostgres,
        settings: EmbeddedSettings,
        *,
        on_down: Callable[[], Awaitable[None]],
        on_up: Callable[[], Awaitable[None]],
    ) -> None:
        self.server = server
        self.settings = settings
        self._on_down = on_down
        self._on_up = on_up
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Future[str] | None = None  # a start running in a thread
        self._state: State = "stopped"
        self._restarts = 0
        self._down_since: datetime | None = None
        self._down_at = 0.0
        self._up_at = 0.0
        self._last_exit: str | None = None
        self._failed = 0
        self._last_error: str | None = None
        self._delay = 0.0
        self._next_attempt_at: float | None = None
        self._wake = asyncio.Event()

    # --- state ---------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._state == "up"

    @property
    def status(self) -> EmbeddedStatus:
        down = self._state == "down"
        return EmbeddedStatus(
            state=self._state,
            pid=None if down else self.server.postmaster_pid(),
            restarts=self._restarts,
            down_since=self._down_since if down else None,
            last_exit=self._last_exit,
            failed_attempts=self._failed if down else 0,
            last_error=self._last_error if down else None,
            retry_after_s=self.retry_after_s() if down else None,
        )

    def retry_after_s(self) -> int:
        """Seconds until the next attempt to start the server (at least 1: an attempt
        under way takes about half a second)."""
        at = self._next_attempt_at
        remaining = 0.0 if at is None else at - time.monotonic()
        return max(1, math.ceil(remaining))

    def unavailable(self) -> Unavailable:
        """The error every storage call raises while the server is down. It names the
        cause but no paths or log lines: API clients see it (the log has the rest)."""
        retry = self.retry_after_s()
        since = self._down_since.strftime("%H:%M:%SZ") if self._down_since else "now"
        attempts = (
            f"; {self._failed} attempt(s) to start it failed" if self._failed else "; restarting"
        )
        return Unavailable(
            f"the embedded PostgreSQL server is down since {since} "
            f"({self._last_exit or 'it stopped'}){attempts}; retry in {retry} s",
            details={"retry_after": retry},
        )

    def diagnose(self) -> Unavailable | None:
        """Called when a storage call failed for want of the server: the outage's
        error if the server has died (and the watch wakes up to act on it now),
        ``None`` if it still runs (the failure was something else)."""
        if self._state == "down":
            return self.unavailable()
        if self._state != "up":
            return None
        reason = self.server.exit_reason(grace_s=_EXIT_GRACE_S)
        if reason is None:
            return None
        self._wake.set()
        return Unavailable(
            f"the embedded PostgreSQL server is down ({reason}); restarting; retry in 1 s",
            details={"retry_after": 1},
        )

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            return
        self._state = "up"
        self._up_at = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="pg-embedded-supervisor")

    async def stop(self) -> None:
        """Stop watching. A start under way in a thread is waited for (it cannot be
        interrupted), so that the caller can then stop the server it started."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        starting, self._starting = self._starting, None
        if starting is not None:
            with contextlib.suppress(Exception):
                await starting
        self._state = "stopped"

    async def _run(self) -> None:
        while True:
            try:
                reason = await self._watch()
                await self._recover(reason)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the supervisor itself die
                _log.exception("embedded_pg.supervisor_failed")
                await asyncio.sleep(self.settings.check_interval_s)

    async def _watch(self) -> str:
        """Return why the server stopped, once it has."""
        interval = self.settings.check_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            reason = self.server.exit_reason()
            if reason is not None:
                return reason

    async def _recover(self, reason: str) -> None:
        now = time.monotonic()
        uptime = now - self._up_at
        self._state = "down"
        self._down_at = now
        self._down_since = datetime.now(UTC)
        self._last_exit = reason
        self._failed = 0
        self._last_error = None
        settings = self.settings
        if self._restarts and uptime < settings.restart_backoff_max_s:
            # died again soon after a restart: do not hammer it
            self._delay = min(
                max(self._delay * 2, settings.restart_backoff_initial_s),
                settings.restart_backoff_max_s,
            )
        else:
            self._delay = 0.0
        _log.error(
            "embedded_pg.down",
            data_dir=str(self.server.data_dir),
            reason=reason,
            uptime_s=round(uptime, 3),
            restart_in_s=self._delay,
            server_log=await asyncio.to_thread(self.server.log_tail),
        )
        try:
            await self._on_down()
        except Exception:
            _log.exception("embedded_pg.on_down_failed")
        while True:
            if self._delay > 0:
                self._next_attempt_at = time.monotonic() + self._delay
                await asyncio.sleep(self._delay)
            self._next_attempt_at = None
            try:
                await self._restart()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed += 1
                self._last_error = str(exc)
                self._delay = min(
                    max(self._delay * 2, settings.restart_backoff_initial_s),
                    settings.restart_backoff_max_s,
                )
                _log.warning(
                    "embedded_pg.restart_failed",
                    data_dir=str(self.server.data_dir),
                    attempt=self._failed,
                    error=str(exc),
                    retry_in_s=self._delay,
                )
                continue
            break
        self._restarts += 1
        self._up_at = time.monotonic()
        self._state = "up"
        _log.warning(
            "embedded_pg.restarted",
            data_dir=str(self.server.data_dir),
            pid=self.server.postmaster_pid(),
            restarts=self._restarts,
            failed_attempts=self._failed,
            down_s=round(self._up_at - self._down_at, 3),
        )

    async def _restart(self) -> None:
        starting = asyncio.ensure_future(asyncio.to_thread(self.server.start))
        self._starting = starting
        try:
            await asyncio.shield(starting)
        finally:
            if starting.done():
                self._starting = None
        await self._on_up()
