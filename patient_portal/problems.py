"""Problem details (RFC 9457): the one place where errors become HTTP responses.

Every error the portal returns to an API client is ``application/problem+json`` with a stable
``type`` (``urn:tsunagu:problem:<slug>``), a ``title`` and ``detail`` in the request's language,
the other language's text in ``i18n``, and, for invalid input, one entry per field in ``errors``.
Pages get the same information as a friendly HTML error page instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from starlette.responses import JSONResponse

MEDIA_TYPE: Final = "application/problem+json"


@dataclass(frozen=True, slots=True)
class Text:
    """A message in both languages the product speaks."""

    ja: str
    en: str

    def in_locale(self, locale: str) -> str:
        return self.ja if locale == "ja" else self.en


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one input field. ``field`` is a dotted path into the request body."""

    field: str
    code: str
    message: Text


@dataclass(frozen=True, slots=True)
class ProblemKind:
    slug: str
    status: int
    title: Text

    @property
    def type_uri(self) -> str:
        return f"urn:tsunagu:problem:{self.slug}"


BAD_REQUEST = ProblemKind(
    "bad-request",
    400,
    Text("リクエストを処理できませんでした", "The request could not be processed"),
)
MALFORMED_JSON = ProblemKind(
    "malformed-json", 400, Text("JSON の形式が正しくありません", "The body is not valid JSON")
)
UNAUTHORIZED = ProblemKind("unauthorized", 401, Text("サインインが必要です", "Sign-in required"))
FORBIDDEN = ProblemKind(
    "forbidden", 403, Text("この操作は許可されていません", "You are not allowed to do this")
)
NOT_FOUND = ProblemKind("not-found", 404, Text("見つかりません", "Not found"))
METHOD_NOT_ALLOWED = ProblemKind(
    "method-not-allowed", 405, Text("この方法では利用できません", "Method not allowed")
)
NOT_ACCEPTABLE = ProblemKind(
    "not-acceptable", 406, Text("その形式では応答できません", "Cannot respond in that format")
)
CONFLICT = ProblemKind(
    "conflict", 409, Text("ほかの変更と競合しました", "Conflict with another change")
)
PAYLOAD_TOO_LARGE = ProblemKind(
    "payload-too-large", 413, Text("送信データが大きすぎます", "The request body is too large")
)
UNSUPPORTED_MEDIA_TYPE = ProblemKind(
    "unsupported-media-type",
    415,
    Text("送信形式が正しくありません", "Unsupported content type"),
)
VALIDATION = ProblemKind(
    "validation", 422, Text("入力内容を確認してください", "Please check what you entered")
)
RATE_LIMITED = ProblemKind(
    "rate-limited",
    429,
    Text("しばらく待ってからお試しください", "Too many requests; try again later"),
)
INTERNAL = ProblemKind(
    "internal", 500, Text("システムエラーが発生しました", "Something went wrong on our side")
)
UNAVAILABLE = ProblemKind(
    "unavailable", 503, Text("ただいま利用できません", "Temporarily unavailable")
)

KINDS: Final = {
    kind.status: kind
    for kind in (
        BAD_REQUEST,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        NOT_ACCEPTABLE,
        CONFLICT,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        VALIDATION,
        RATE_LIMITED,
        INTERNAL,
        UNAVAILABLE,
    )
}


@dataclass(eq=False)
class Problem(Exception):
    """Raise from a handler to answer with a problem; translated once, in ``to_response``."""

    kind: ProblemKind
    detail: Text | None = None
    errors: tuple[FieldError, ...] = field(default_factory=tuple)
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)  # extra members (RFC 9457 §3.2)

    def body(self, locale: str, instance: str | None = None) -> dict[str, Any]:
        other = "en" if locale == "ja" else "ja"
        detail = self.detail or self.kind.title
        content: dict[str, Any] = {
            "type": self.kind.type_uri,
            "title": self.kind.title.in_locale(locale),
            "status": self.kind.status,
            "detail": detail.in_locale(locale),
            "i18n": {
                other: {
                    "title": self.kind.title.in_locale(other),
                    "detail": detail.in_locale(other),
                }
            },
        }
        if instance:
            content["instance"] = instance
        content.update(self.extensions)
        if self.errors:
            content["errors"] = [
                {
                    "field": error.field,
                    "code": error.code,
                    "message": error.message.in_locale(locale),
                }
                for error in self.errors
            ]
        return content

    def to_response(self, locale: str, instance: str | None = None) -> JSONResponse:
        return JSONResponse(
            self.body(locale, instance),
            status_code=self.kind.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def for_status(status: int) -> ProblemKind:
    """The problem kind for an HTTP status the framework raised (404, 405, …)."""
    if status in KINDS:
        return KINDS[status]
    return BAD_REQUEST if 400 <= status < 500 else INTERNAL


PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:tsunagu:problem:validation"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "i18n": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
