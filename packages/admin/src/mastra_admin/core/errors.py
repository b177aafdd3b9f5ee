"""The one error hierarchy of MastraAdmin: every failure a caller can act on has a stable code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BuildFailed",
    "Conflict",
    "InvalidInput",
    "LicenceLimit",
    "MastraAdminError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
]


class MastraAdminError(Exception):
    """Base of every error MastraAdmin raises on purpose.

    ``code`` is stable and machine-readable; ``message`` is for people; ``details``
    carries structured context (the field of a conflict, the limit that was hit).
    The HTTP server maps the class to a status code in one place.
    """

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class NotFound(MastraAdminError):
    """The resource does not exist, or the caller may not know that it exists."""

    code = "not_found"


class Unauthenticated(MastraAdminError):
    """No valid credentials were presented."""

    code = "unauthenticated"


class PermissionDenied(MastraAdminError):
    """The caller can see the resource but may not perform this action on it."""

    code = "permission_denied"


class Conflict(MastraAdminError):
    """The action clashes with the current state (a taken slug, a build already running)."""

    code = "conflict"


class InvalidInput(MastraAdminError):
    """The input is malformed or breaks a business rule."""

    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    """The input is larger than allowed; ``details["limit"]`` says how large it may be."""

    code = "payload_too_large"


class LicenceLimit(MastraAdminError):
    """The licence tier does not allow this (a feature it lacks, a limit reached)."""

    code = "licence_limit"


class RateLimited(MastraAdminError):
    """Too many attempts; ``details["retry_after"]`` says how many seconds to wait."""

    code = "rate_limited"


class Unavailable(MastraAdminError):
    """A dependency (database, disk, ClickHouse) cannot serve right now; retry later."""

    code = "unavailable"


class BuildFailed(MastraAdminError):
    """A build step failed; ``details["step"]`` names it (copy, install, build, start, health)."""

    code = "build_failed"

    def __init__(
        self, step: str, message: str, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, details={"step": step, **dict(details or {})})
        self.step = step
