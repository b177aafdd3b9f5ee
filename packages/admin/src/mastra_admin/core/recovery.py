"""Crash recovery: the core's policy for a deployment's server that ends unasked.

The orchestrator carries it out with whatever runner is configured: the runner
reports an exit (``ProjectRunner.report_exit``) or a server fails
``recovery.unhealthy_checks`` health rounds in a row; ``CrashPolicy`` says when to
restart (a doubling backoff) or that the deployment is in a crash loop
(``crash_loop_restarts`` crashes within ``crash_loop_window_s``), when restarting
stops until the next deploy or rollback. Every crash, restart, recovery and crash
loop is a ``DeploymentEvent``: recorded as a runtime log of the deployment (source
``platform``, so the observability pages and the logs API list it beside the
server's own output) and fired as the ``mastra_admin_deployment_event`` hook, which
notifications listen to.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mastra_admin.core.models import UtcDatetime, new_id, utcnow
from mastra_admin.core.settings import RecoverySettings

__all__ = [
    "PLATFORM_SOURCE",
    "CrashPolicy",
    "CrashRecord",
    "DeploymentEvent",
    "DeploymentEventKind",
    "event_log_record",
]

PLATFORM_SOURCE = "platform"
"""The ``source`` of the runtime-log records the platform writes about a server."""

_TAIL_LINES = 20
_LINE_CHARS = 2000


class DeploymentEventKind(StrEnum):
    CRASHED = "crashed"
    RESTARTED = "restarted"
    RECOVERED = "recovered"
    CRASH_LOOP = "crash_loop"


class CrashRecord(BaseModel):
    """One crash: what ended the server and what it printed last (secrets masked)."""

    at: UtcDatetime = Field(default_factory=utcnow)
    server_id: str | None = None
    build_id: str | None = None
    reason: str
    exit_code: int | None = None
    out_of_memory: bool = False
    last_lines: list[str] = Field(default_factory=list)


class DeploymentEvent(BaseModel):
    """Something that happened to a deployment's server without anyone asking."""

    id: str = Field(default_factory=new_id)
    kind: DeploymentEventKind
    deployment_id: str
    project_id: str
    at: UtcDatetime = Field(default_factory=utcnow)
    message: str
    crashes: list[CrashRecord] = Field(default_factory=list)
    """The crash (``crashed``), or every crash of the window (``crash_loop``)."""
    restarts: int = 0
    """Crashes within the crash-loop window so far."""
    next_restart_in_s: float | None = None
    server_id: str | None = None
    """The new server (``restarted``, ``recovered``)."""


_LEVEL = {
    DeploymentEventKind.CRASHED: "error",
    DeploymentEventKind.RESTARTED: "info",
    DeploymentEventKind.RECOVERED: "info",
    DeploymentEventKind.CRASH_LOOP: "fatal",
}


def event_log_record(event: DeploymentEvent) -> dict[str, Any]:
    """The event as a runtime-log record of its deployment (a ``Log`` as JSON)."""
    attributes: dict[str, Any] = {"event": event.kind.value, "restarts": event.restarts}
    if event.next_restart_in_s is not None:
        attributes["next_restart_in_s"] = event.next_restart_in_s
    if event.server_id is not None:
        attributes["server_id"] = event.server_id
    if event.crashes:
        attributes["crashes"] = [
            crash.model_dump(mode="json", exclude_none=True) for crash in event.crashes
        ]
    return {
        "id": event.id,
        "project_id": event.project_id,
        "deployment_id": event.deployment_id,
        "level": _LEVEL[event.kind],
        "message": event.message,
        "timestamp": event.at.isoformat(),
        "source": PLATFORM_SOURCE,
        "attributes": attributes,
    }


@dataclass
class _History:
    crashes: deque[tuple[float, CrashRecord]] = field(default_factory=deque)


class CrashPolicy:
    """When to restart a deployment's crashed server, per deployment, in memory (a
    process that restarts forgets the history: the worst case is one more window of
    restarts)."""

    def __init__(
        self, settings: RecoverySettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._history: dict[str, _History] = {}

    def crashed(self, deployment_id: str, crash: CrashRecord) -> float | None:
        """Record a crash; the seconds to wait before restarting, or ``None`` when
        this crash makes a crash loop (or restarting is off)."""
        # A server's output is its own: keep a bounded amount of it.
        lines = [line[:_LINE_CHARS] for line in crash.last_lines[-_TAIL_LINES:]]
        crash = crash.model_copy(update={"last_lines": lines, "reason": crash.reason[:500]})
        history = self._history.setdefault(deployment_id, _History())
        now = self._clock()
        history.crashes.append((now, crash))
        window_start = now - self.settings.crash_loop_window_s
        while history.crashes and history.crashes[0][0] < window_start:
            history.crashes.popleft()
        if not self.settings.restart:
            return None
        if len(history.crashes) >= self.settings.crash_loop_restarts:
            return None
        # The backoff doubles with every crash of the window: a server that stays up
        # for a whole window is restarted quickly again.
        delay = self.settings.backoff_initial_s * 2 ** (len(history.crashes) - 1)
        return float(min(self.settings.backoff_max_s, delay))

    def recent(self, deployment_id: str) -> list[CrashRecord]:
        """The crashes within the window, oldest first."""
        history = self._history.get(deployment_id)
        return [crash for _, crash in history.crashes] if history else []

    def count(self, deployment_id: str) -> int:
        return len(self.recent(deployment_id))

    def reset(self, deployment_id: str) -> None:
        """A new deploy or rollback: the history starts again."""
        self._history.pop(deployment_id, None)
