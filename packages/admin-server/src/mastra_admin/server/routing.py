"""Endpoints as data: one ``Endpoint`` per API operation, turned into Starlette routes.

A handler receives a ``Call`` (the admin, the authenticated principal, path parameters and
the validated body and query) and returns models; this module parses, authenticates
and serialises, so route modules hold no HTTP plumbing and no logic. The same table
drives the OpenAPI document and the authorization-matrix test.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from mastra_admin.core.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from mastra_admin.core.inputs import RFC3339_RE
from mastra_admin.core.rbac import Principal
from mastra_admin.server.auth import authenticate
from mastra_admin.server.cache import ResponseCache

if TYPE_CHECKING:
    from mastra_admin.core.admin import MastraAdmin

__all__ = ["Access", "Call", "Endpoint", "IndexedRouter", "jsonable", "render_json", "to_routes"]

JSON = "application/json"

Access = Literal["public", "user", "team", "platform"]
"""Who may call an endpoint: ``public`` needs no token (the collector has its own);
``user`` any signed-in user (about themselves); ``team`` whoever holds ``permission``
on the resource's team or project; ``platform`` platform administrators only. The
authorization-matrix test derives every expected status from this and the roles.

A project token is accepted on ``team`` endpoints only (the core then confines it to
its project and its scopes); a scoped user token everywhere, narrowed by its scopes."""


@dataclass
class Call:
    request: Request
    admin: MastraAdmin
    principal: Principal | None
    params: dict[str, str]
    body: Any = None
    query: Any = None

    @property
    def actor(self) -> Principal:
        """Who the request acts for: what every core operation is given."""
        assert self.principal is not None, "endpoint requires authentication"
        return self.principal


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
    cache: bool = False
    """The handler reads storage only, and its answer depends on nothing but the stored
    rows and the caller: it may be served from the response cache (see ``cache.py``)."""
    max_body: int | None = None
    """Largest request body in bytes (default: the server's ``max_body_bytes``)."""

    @property
    def auth(self) -> bool:
        return self.access != "public"

    @property
    def body_required(self) -> bool:
        """Whether a request must carry a body: always for PATCH and PUT (a missing body
        is a client's mistake, not a change of nothing: that is ``{}``); for a POST when
        its model has a required field, or needs one of several (``oneOf``). A POST that
        may omit its body means ``{}``."""
        if self.body is None:
            return False
        if self.method != "POST":
            return True
        if any(info.is_required() for info in self.body.model_fields.values()):
            return True
        # "Exactly one of these fields" (a rollback's build or commit) needs a body too.
        branches = self.body.model_json_schema().get("oneOf") or []
        return bool(branches) and all(branch.get("required") for branch in branches)

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


MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and arrays a request body may have: far beyond any
input model, far below what recursion anywhere (parsing, validation, storage,
serialisation) could not take."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with ``PayloadTooLarge`` as soon as it is known to
    exceed ``limit`` bytes (by its ``Content-Length``, or while it streams in): an
    oversized body is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the request body may be at most {limit} bytes", details={"limit": limit}
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the request body may be at most {limit} bytes", details={"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``raw`` as JSON, or ``InvalidInput`` (also for nesting deeper than ``max_depth``,
    which is checked before anything recurses over the value)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InvalidInput(
            f"the request body nests deeper than {max_depth} levels",
            details={"max_depth": max_depth},
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "the request body is not valid JSON", details={"reason": str(exc)}
        ) from exc
    if json_depth(value) > max_depth:
        raise InvalidInput(
            f"the request body nests deeper than {max_depth} levels",
            details={"max_depth": max_depth},
        )
    return value


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (without recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


async def _read_model(request: Request, endpoint: Endpoint, limit: int) -> BaseModel:
    """The endpoint's body model from the request. An empty body is ``{}`` unless the
    body is required. Validation is strict, in JSON mode, as the JSON schema reads:
    strings are no numbers, numbers no booleans or dates (an enum or a date still comes
    as its string)."""
    assert endpoint.body is not None
    raw = await read_body(request, limit)
    if not raw.strip():
        if endpoint.body_required:
            raise InvalidInput(
                "the request needs a JSON body (for a change, the fields to change)",
                details={"field": "body"},
            )
        raw = b"{}"
    parse_json(raw)  # syntax and nesting, refused in the API's words
    return endpoint.body.model_validate_json(raw, strict=True)


def _response_cache(request: Request, admin: MastraAdmin) -> ResponseCache | None:
    """The app's response cache, while the storage's change tracking is live."""
    tracker = admin.storage.changes
    if tracker is None or not tracker.live:
        return None
    state = request.app.state
    cache: ResponseCache | None = getattr(state, "response_cache", None)
    if cache is None or cache.tracker is not tracker:
        budget = state.settings.response_cache_mb << 20
        if budget <= 0:
            return None
        cache = state.response_cache = ResponseCache(tracker, max_bytes=budget)
    return cache


def _endpoint_app(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def app(request: Request) -> Response:
        admin: MastraAdmin = request.app.state.admin
        principal = await authenticate(request, admin) if endpoint.auth else None
        if principal is not None and principal.project_id is not None and endpoint.access != "team":
            raise PermissionDenied(
                "a project API token works only on its project's routes",
                details={"token_id": principal.token_id},
            )
        if endpoint.cache and principal is not None:
            cache = _response_cache(request, admin)
            if cache is not None:
                return await _cached(cache, request, principal, admin)
        return await respond(request, admin, principal)

    async def _cached(
        cache: ResponseCache, request: Request, principal: Principal, admin: MastraAdmin
    ) -> Response:
        scope = request.scope
        key = (endpoint.operation_id, principal.cache_key, scope["path"], scope["query_string"])
        body = cache.get(key)
        if body is not None:
            return Response(body, status_code=endpoint.status_code, media_type=JSON)
        with cache.tracker.recording() as record:
            response = await respond(request, admin, principal)
        if response.status_code == endpoint.status_code and response.media_type == JSON:
            cache.put(key, record, bytes(response.body))
        return response

    async def respond(
        request: Request, admin: MastraAdmin, principal: Principal | None
    ) -> Response:
        body = None
        if endpoint.body is not None:
            limit = endpoint.max_body or request.app.state.settings.max_body_bytes
            body = await _read_model(request, endpoint, limit)
        query = None
        if endpoint.query is not None:
            query = _parse_query(endpoint.query, request)
        call = Call(
            request=request,
            admin=admin,
            principal=principal,
            params={k: str(v) for k, v in request.path_params.items()},
            body=body,
            query=query,
        )
        result = await endpoint.handler(call)
        if isinstance(result, Response):
            return result
        if result is None and endpoint.status_code == 204:
            return Response(status_code=204)
        return Response(render_json(result), status_code=endpoint.status_code, media_type=JSON)

    return app


def _parse_query(model: type[BaseModel], request: Request) -> BaseModel:
    """The query as its model: each value read as the JSON type the model's schema
    gives the parameter (``5`` a number, ``true`` a boolean, anything else a string),
    then validated strictly, as for a body. So ``include_stopped=yes`` is no boolean
    and ``start=0.5`` no date-time, as the document says."""
    kinds = _query_kinds(model)
    data: dict[str, Any] = {}
    wrong: list[dict[str, Any]] = []
    for key in request.query_params:
        values = request.query_params.getlist(key)
        kind = kinds.get(key, _Kind(frozenset(), None, False))
        if kind.item is not None:
            data[key] = [_query_value(value, kind.item) for value in values]
        else:
            data[key] = _query_value(values[-1], kind.types)
            if kind.date_time and not RFC3339_RE.fullmatch(values[-1]):
                wrong.append(
                    {
                        "field": key,
                        "message": "must be an RFC 3339 date-time with an offset",
                        "type": "datetime_format",
                    }
                )
    if wrong:
        raise InvalidInput("the request is not valid", details={"fields": wrong})
    return model.model_validate_json(json.dumps(data), strict=True)


@dataclass(frozen=True)
class _Kind:
    types: frozenset[str]
    """The JSON types a parameter takes."""
    item: frozenset[str] | None
    """For an array, its items' types."""
    date_time: bool
    """Whether a string is a date-time (``format: date-time``)."""


_QUERY_KINDS: dict[type[BaseModel], dict[str, _Kind]] = {}


def _query_kinds(model: type[BaseModel]) -> dict[str, _Kind]:
    found = _QUERY_KINDS.get(model)
    if found is None:
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        found = {}
        for name, prop in schema.get("properties", {}).items():
            types = _json_types(prop, defs)
            items = [_json_types(o.get("items", {}), defs) for o in _options(prop, defs)]
            item = frozenset().union(*items) if "array" in types else None
            date_time = any(o.get("format") == "date-time" for o in _options(prop, defs))
            found[name] = _Kind(types, item, date_time)
        _QUERY_KINDS[model] = found
    return found


def _options(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema and what its ``$ref``, ``anyOf`` and ``oneOf`` lead to, flattened."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _options(defs.get(ref.rsplit("/", 1)[-1], {}), defs)
    nested = [*schema.get("anyOf", []), *schema.get("oneOf", [])]
    if nested:
        return [option for sub in nested for option in _options(sub, defs)]
    return [schema]


def _json_types(schema: dict[str, Any], defs: dict[str, Any]) -> frozenset[str]:
    types: set[str] = set()
    for option in _options(schema, defs):
        kind = option.get("type")
        types.update([kind] if isinstance(kind, str) else kind or [])
    return frozenset(types)


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are no JSON numbers


def _query_value(text: str, types: frozenset[str]) -> Any:
    """``text`` as the JSON value of one of ``types`` it reads as, else as a string."""
    if not types & {"integer", "number", "boolean"}:
        return text
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text
    if isinstance(value, bool):
        return value if "boolean" in types else text
    if isinstance(value, int) and types & {"integer", "number"}:
        return value
    if isinstance(value, float):
        if "number" in types:
            return value
        if "integer" in types and value.is_integer():
            return int(value)
    return text


class _AsgiEndpoint:
    """An endpoint as a plain ASGI app. Given a function, Starlette wraps it in a layer
    of its own per request (a second exception wrapper and send wrapper); errors reach
    the app's exception middleware just the same without it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._respond = _endpoint_app(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._respond(Request(scope, receive, send))
        await response(scope, receive, send)


def to_routes(endpoints: Sequence[Endpoint]) -> list[BaseRoute]:
    return [
        Route(e.path, _AsgiEndpoint(e), methods=[e.method], name=e.operation_id) for e in endpoints
    ]


class IndexedRouter(Router):
    """Starlette's router, but a request is matched only against the routes that can
    match its path (Starlette tries every route in turn, about 60 here): those with as
    many segments, the same two first segments and the same last one (or a parameter
    there), plus the routes it cannot index (a parameter early on, a ``path``
    parameter, a mount), all in their original order. Anything else falls through to
    Starlette (redirects, 404).

    A path that exists without the request's method is 405 with an ``Allow`` header
    naming every method the path has (Starlette's names only those of the first route
    it found, and there is one route per method here)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=list(routes))
        always: set[int] = set()
        by_last: dict[tuple[int, str, str, str], set[int]] = {}
        by_shape: dict[tuple[int, str, str], set[int]] = {}
        for position, route in enumerate(self.routes):
            parts = self._parts(route)
            if parts is None:
                if not (isinstance(route, Route) and route.path.count("/") < 2):
                    always.add(position)  # a short route only ever matches short paths
            elif "{" in parts[-1]:
                by_shape.setdefault((len(parts), parts[1], parts[2]), set()).add(position)
            else:
                key = (len(parts), parts[1], parts[2], parts[-1])
                by_last.setdefault(key, set()).add(position)

        def ordered(positions: set[int]) -> list[BaseRoute]:
            return [self.routes[i] for i in sorted(positions | always)]

        self._always = ordered(set())
        self._by_shape = {key: ordered(found) for key, found in by_shape.items()}
        self._by_last = {
            key: ordered(found | by_shape.get(key[:3], set())) for key, found in by_last.items()
        }

    @staticmethod
    def _parts(route: BaseRoute) -> list[str] | None:
        if not isinstance(route, Route) or ":path}" in route.path:
            return None
        parts = route.path.split("/")
        if len(parts) < 3 or "{" in parts[1] or "{" in parts[2]:
            return None
        return parts

    def _candidates(self, path: str) -> list[BaseRoute]:
        parts = path.split("/")
        if len(parts) < 3:
            return self.routes
        shape = (len(parts), parts[1], parts[2])
        return self._by_last.get((*shape, parts[-1])) or self._by_shape.get(shape, self._always)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed: set[str] = set()
            for route in self._candidates(scope["path"]):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
                if match is Match.PARTIAL and isinstance(route, Route) and route.methods:
                    allowed |= route.methods
            if allowed:
                methods = ", ".join(sorted(allowed))
                raise HTTPException(
                    405,
                    f"{scope['method']} is not allowed here: use {methods}",
                    headers={"Allow": methods},
                )
        await super().app(scope, receive, send)
