"""Typed JSON endpoints on Starlette, and the OpenAPI 3.1 document that describes them.

An endpoint declares its body, query and response as pydantic models::

    @api.endpoint("POST", "/preferences/language", body=LanguageIn, response=LanguageOut,
                  summary="Choose the language")
    async def set_language(request: Request, body: LanguageIn) -> LanguageOut: ...

The wrapper checks the content type (415), parses JSON (400), validates (422 with one error per
field) and serialises the result, so handlers only see valid values. Every endpoint is listed in
the OpenAPI document, which is built from the same declarations and so cannot drift from them.

Written here rather than taken from FastAPI: Tsunagu is a Starlette application (pages, websockets,
webhooks) and needs only this thin layer over pydantic, whose schemas it reuses as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from patient_portal.api.validation import field_errors
from patient_portal.problems import (
    MALFORMED_JSON,
    MEDIA_TYPE,
    PAYLOAD_TOO_LARGE,
    PROBLEM_SCHEMA,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    Problem,
    Text,
)

MAX_BODY_BYTES: Final = 1_048_576
PATH_PARAMETER: Final = re.compile(r"{(\w+)}")

Handler = Callable[..., Awaitable[BaseModel | Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status_code: int
    tags: tuple[str, ...]
    problems: tuple[int, ...]


class Api:
    """A versioned set of endpoints under ``prefix``."""

    def __init__(self, prefix: str, title: str, version: str) -> None:
        self.prefix = prefix.rstrip("/")
        self.title = title
        self.version = version
        self.endpoints: list[Endpoint] = []

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status_code: int = 200,
        tags: tuple[str, ...] = (),
        problems: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` ``prefix + path``; see the module docstring."""

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    summary=summary,
                    description=(handler.__doc__ or "").strip(),
                    body=body,
                    query=query,
                    response=response,
                    status_code=status_code,
                    tags=tags,
                    problems=problems,
                )
            )
            return handler

        return register

    def routes(self) -> list[Route]:
        by_path: dict[str, list[Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, []).append(endpoint)
        routes = [
            Route(
                self.prefix + path,
                _dispatch({e.method: e for e in group}),
                methods=[e.method for e in group],
            )
            for path, group in by_path.items()
        ]
        routes.append(Route(self.prefix + "/openapi.json", self._serve_openapi, methods=["GET"]))
        return routes

    async def _serve_openapi(self, request: Request) -> Response:
        return JSONResponse(self.openapi())

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document for every registered endpoint."""
        schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
        paths: dict[str, Any] = {}
        for endpoint in self.endpoints:
            operation = _operation(endpoint, schemas)
            paths.setdefault(self.prefix + endpoint.path, {})[endpoint.method.lower()] = operation
        paths[self.prefix + "/openapi.json"] = {
            "get": {
                "operationId": "get_openapi",
                "summary": "This document",
                "tags": ["meta"],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "default": _problem_response("Any other problem"),
                },
            }
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {"schemas": schemas},
        }


def _dispatch(by_method: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    """One Starlette endpoint per path; Starlette has already answered 405 for other methods."""

    async def dispatch(request: Request) -> Response:
        # HEAD is the only method Starlette adds by itself (beside GET).
        endpoint = by_method.get(request.method) or by_method["GET"]
        return await _call(endpoint, request)

    return dispatch


async def _call(endpoint: Endpoint, request: Request) -> Response:
    kwargs: dict[str, Any] = {}
    if endpoint.query is not None:
        kwargs["query"] = _validate(endpoint.query, dict(request.query_params), "query")
    if endpoint.body is not None:
        kwargs["body"] = _validate(endpoint.body, await _json_body(request), "body")
    result = await endpoint.handler(request, **kwargs)
    if isinstance(result, Response):
        return result
    return JSONResponse(result.model_dump(mode="json"), status_code=endpoint.status_code)


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            Text(
                "Content-Type: application/json で JSON を送信してください",
                "Send JSON with Content-Type: application/json",
            ),
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(PAYLOAD_TOO_LARGE)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise Problem(PAYLOAD_TOO_LARGE)
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise Problem(
            MALFORMED_JSON,
            Text(
                "本文を JSON として読み取れませんでした。形式を確認してください",
                "The body could not be read as JSON; check its syntax",
            ),
        ) from None
    if _has_nul(document):
        raise Problem(
            VALIDATION,
            Text(
                "入力に使えない制御文字 (NUL) が含まれています",
                "The input contains a control character (NUL) that cannot be stored",
            ),
        )
    return document


def _has_nul(value: Any, depth: int = 0) -> bool:
    """Whether a NUL character hides in any string: databases refuse to store one."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item, depth + 1) for item in value)
    return False


def _validate(model: type[BaseModel], data: Any, location: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise Problem(VALIDATION, errors=field_errors(error, location)) from None


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any], mode: str) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _operation(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": list(endpoint.tags),
        "responses": {},
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAMETER.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        required = set(schema.get("required", []))
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()
        ]
    if parameters:
        operation["parameters"] = parameters
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response is not None:
        success["content"] = {
            "application/json": {"schema": _schema_ref(endpoint.response, schemas, "serialization")}
        }
    operation["responses"][str(endpoint.status_code)] = success
    problems = set(endpoint.problems)
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": _schema_ref(endpoint.body, schemas, "validation")}
            },
        }
        problems |= {400, 413, 415, 422}
    if endpoint.query is not None:
        problems.add(422)
    for status in sorted(problems):
        operation["responses"][str(status)] = _problem_response("Problem details")
    operation["responses"]["default"] = _problem_response("Any other problem")
    return operation
