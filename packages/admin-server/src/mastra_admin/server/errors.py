"""The one place where errors become HTTP responses: ``{"error": {code, message, details}}``.

Core errors map by class; pydantic validation errors are 422 with field errors;
anything unexpected is a 500 whose body says only that, with a request id to find the
logged traceback. No response ever carries a traceback.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mastra_admin.core.errors import (
    BuildFailed,
    Conflict,
    InvalidInput,
    LicenceLimit,
    MastraAdminError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

__all__ = ["STATUS_BY_ERROR", "error_response", "exception_handlers", "status_for"]

_log = structlog.get_logger("mastra_admin.server.errors")

STATUS_BY_ERROR: dict[type[MastraAdminError], int] = {
    NotFound: 404,
    Unauthenticated: 401,
    PermissionDenied: 403,
    LicenceLimit: 403,
    Conflict: 409,
    InvalidInput: 422,
    PayloadTooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
    BuildFailed: 409,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}


def status_for(error: MastraAdminError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


async def _admin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MastraAdminError)
    status = status_for(exc)
    if status == 500:  # an adapter's own failure: its message may name internals
        return await _unexpected(request, exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited | Unavailable) and "retry_after" in exc.details:
        headers["Retry-After"] = str(int(exc.details["retry_after"]))
    elif isinstance(exc, Unavailable):
        headers["Retry-After"] = "5"
    if status >= 500:
        _log.error("request.failed", code=exc.code, message=exc.message)
    return error_response(status, exc.code, exc.message, exc.details, headers)


def validation_details(exc: ValidationError) -> dict[str, Any]:
    fields = []
    for err in exc.errors(include_url=False, include_input=False):
        fields.append(
            {
                "field": ".".join(str(p) for p in err["loc"]) or None,
                "message": err["msg"],
                "type": err["type"],
            }
        )
    return {"fields": fields}


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(422, "invalid_input", "the request is not valid", validation_details(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    details: dict[str, Any] = {}
    if exc.status_code == 405 and "Allow" in headers:  # the router lists the path's methods
        details["allowed"] = [method.strip() for method in headers["Allow"].split(",")]
    return error_response(exc.status_code, code, message, details, headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    _log.exception("request.crashed", path=request.url.path, request_id=request_id)
    return error_response(
        500,
        "internal_error",
        "something went wrong on the server; the request id finds it in the logs",
        {"request_id": request_id},
    )


def exception_handlers() -> dict[Any, Any]:
    return {
        MastraAdminError: _admin_error,
        ValidationError: _validation_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
