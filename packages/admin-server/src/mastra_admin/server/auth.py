"""Who is calling: bearer API tokens (a user's, possibly scoped, or a project's; hashed
at rest) or OIDC JWTs, resolved once per request to a ``Principal``, with a limit on
failed attempts per client address."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import structlog
from starlette.requests import Request

from mastra_admin.core.errors import RateLimited, Unauthenticated
from mastra_admin.core.rbac import Principal

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin

__all__ = ["FailedAttemptLimiter", "authenticate", "bearer_token"]

_log = structlog.get_logger("mastra_admin.server.auth")


class FailedAttemptLimiter:
    """Counts failed credential attempts per client; past ``limit`` within ``window_s``
    a failed attempt is answered 429 (with ``Retry-After``) instead of 401 until the
    window has passed. A valid credential is always accepted: the address may be
    shared with whoever failed (a proxy, an office, a spoofed header)."""

    def __init__(
        self, *, limit: int = 20, window_s: float = 60.0, max_clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def check(self, client: str) -> None:
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) >= self.limit:
            retry_after = max(1, int(failures[0] + self.window_s - now) + 1)
            raise RateLimited(
                "too many failed sign-in attempts; wait before trying again",
                details={"retry_after": retry_after},
            )

    def failed(self, client: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self.max_clients and client not in self._failures:
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]
        self._failures.setdefault(client, deque()).append(now)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(request: Request, admin: MastraAdmin) -> Principal:
    """Who is behind the request's bearer credential, or ``Unauthenticated``."""
    limiter: FailedAttemptLimiter = request.app.state.auth_limiter
    client = _client(request)
    token = bearer_token(request)
    if token is None:
        limiter.check(client)
        raise Unauthenticated("sign in: send 'Authorization: Bearer <token>'")
    try:
        principal = await _resolve(admin, token)
    except Unauthenticated:
        limiter.check(client)
        limiter.failed(client)
        _log.info("auth.failed", client=client)
        raise
    request.state.principal = principal
    return principal


async def _resolve(admin: MastraAdmin, token: str) -> Principal:
    if admin.auth is not None and token.count(".") == 2:
        identity = await admin.auth.verify(token)
        if identity is not None:
            user = await admin.user_for_identity(identity)
            return Principal(user_id=user.id)
    return await admin.authenticate(token)
