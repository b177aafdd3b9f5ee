"""Endpoints as data: one ``Endpoint`` per API operation, turned into Starlette routes.

A handler receives a ``Call`` (the admin, the authenticated user, path parameters and
the validated body and query) and returns models; this module parses, authenticates
and serialises, so route modules hold no HTTP plumbing and no logic. The same table
drives the OpenAPI document and the authorization-matrix test.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.models import User
from mastra_admin.server.auth import authenticate

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin

__all__ = ["Access", "Call", "Endpoint", "jsonable", "render_json", "to_routes"]

Access = Literal["public", "user", "team", "platform"]
"""Who may call an endpoint: ``public`` needs no token (the collector has its own);
``user`` any signed-in user (about themselves); ``team`` whoever holds ``permission``
on the resource's team or project; ``platform`` platform administrators only. The
authorization-matrix test derives every expected status from this and the roles."""


@dataclass
class Call:
    request: Request
    admin: MastraAdmin
    user: User | None
    params: dict[str, str]
    body: Any = None
    query: Any = None

    @property
    def user_id(self) -> str:
        assert self.user is not None, "endpoint requires authentication"
        return self.user.id


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access = "team"
    permission: str | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status_code: int = 200
    extra_responses: dict[int, str] = field(default_factory=dict)

    @property
    def auth(self) -> bool:
        return self.access != "public"

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def render_json(value: Any) -> bytes:
    """Serialise a handler's result with pydantic's compiled serializers (several
    times faster than dumping to dicts and then to JSON)."""
    if isinstance(value, BaseModel):
        return _adapter(type(value)).dump_json(value)
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        kind = type(value[0])
        if all(type(item) is kind for item in value):
            return _adapter(list[kind]).dump_json(value)  # type: ignore[valid-type]
    return json.dumps(jsonable(value), separators=(",", ":")).encode()


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the request body is not valid JSON", details={"reason": str(exc)}
        ) from exc


def _endpoint_app(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def app(request: Request) -> Response:
        admin: MastraAdmin = request.app.state.admin
        user = await authenticate(request, admin) if endpoint.auth else None
        body = None
        if endpoint.body is not None:
            payload = await _read_json(request)
            body = endpoint.body.model_validate(payload)
        query = None
        if endpoint.query is not None:
            query = _parse_query(endpoint.query, request)
        call = Call(
            request=request,
            admin=admin,
            user=user,
            params={k: str(v) for k, v in request.path_params.items()},
            body=body,
            query=query,
        )
        result = await endpoint.handler(call)
        if isinstance(result, Response):
            return result
        if result is None and endpoint.status_code == 204:
            return Response(status_code=204)
        return Response(
            render_json(result), status_code=endpoint.status_code, media_type="application/json"
        )

    app.__name__ = endpoint.operation_id
    return app


def _parse_query(model: type[BaseModel], request: Request) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        annotation = model.model_fields.get(key)
        is_list = annotation is not None and "list" in str(annotation.annotation)
        data[key] = values if is_list else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError:
        raise


def to_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    return [Route(e.path, _endpoint_app(e), methods=[e.method]) for e in endpoints]
