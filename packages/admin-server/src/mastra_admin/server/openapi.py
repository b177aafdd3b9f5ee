"""OpenAPI 3.1 from the endpoint table and the pydantic models it names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from mastra_admin.server.routing import Endpoint
from mastra_admin.server.version import __version__

__all__ = ["openapi_document"]

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
_REF = "#/components/schemas/{model}"

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def ref(self, annotation: Any, mode: str) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        title = schema.get("title")
        if schema.get("type") == "object" and isinstance(title, str) and "properties" in schema:
            self.components.setdefault(title, schema)
            return {"$ref": _REF.format(model=title)}
        return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        path = _PARAM.sub(r"{\1}", endpoint.path)
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(endpoint.path)
            ],
            "responses": {},
        }
        if endpoint.query is not None:
            query_schema = endpoint.query.model_json_schema(ref_template=_REF)
            for name, definition in query_schema.pop("$defs", {}).items():
                schemas.components.setdefault(name, definition)
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                operation["parameters"].append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": endpoint.body_required,
                "content": {
                    "application/json": {"schema": schemas.ref(endpoint.body, "validation")}
                },
            }
            if endpoint.method == "PATCH":
                operation["requestBody"]["description"] = (
                    "The fields to change: those left out keep their value ({} changes"
                    " nothing). A missing body is refused."
                )
            elif not endpoint.body_required:
                operation["requestBody"]["description"] = "Optional: no body means {}."
        if endpoint.status_code == 204:
            operation["responses"]["204"] = {"description": "done"}
        else:
            response: dict[str, Any] = {"description": "success"}
            if endpoint.response is not None:
                response["content"] = {
                    "application/json": {"schema": schemas.ref(endpoint.response, "serialization")}
                }
            operation["responses"][str(endpoint.status_code)] = response
        errors = {422: "invalid input", 404: "not found"}
        if endpoint.body is not None:
            errors[413] = "the request body is over the size limit"
        if endpoint.auth:
            errors |= {401: "not signed in", 403: "not allowed", 429: "too many failed sign-ins"}
        errors |= {503: "a dependency is unavailable"}
        errors |= endpoint.extra_responses
        for status, description in sorted(errors.items()):
            operation["responses"].setdefault(str(status), _error(description))
        if endpoint.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MastraAdmin API",
            "version": __version__,
            "description": "Operate many Mastra servers: teams, projects, deployments, builds, "
            "routes and observability. Errors are {error: {code, message, details}}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
