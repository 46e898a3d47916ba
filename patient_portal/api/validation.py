"""pydantic validation errors → per-field problem entries, in Japanese and English."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from booking.setup import MESSAGES as SETUP_MESSAGES  # the clinic set-up's own rules
from patient_portal.problems import FieldError, Text

# pydantic error type → (Japanese, English). {ctx keys} are filled from the error's context.
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "missing": ("入力してください", "This field is required"),
    "extra_forbidden": ("この項目は受け付けていません", "This field is not allowed"),
    "string_type": ("文字で入力してください", "Enter text"),
    "string_too_short": (
        "{min_length} 文字以上で入力してください",
        "Enter at least {min_length} characters",
    ),
    "string_too_long": (
        "{max_length} 文字以内で入力してください",
        "Enter at most {max_length} characters",
    ),
    "string_pattern_mismatch": ("形式が正しくありません", "The format is not valid"),
    "int_type": ("整数で入力してください", "Enter a whole number"),
    "int_parsing": ("整数で入力してください", "Enter a whole number"),
    "float_parsing": ("数値で入力してください", "Enter a number"),
    "bool_parsing": ("はい/いいえで指定してください", "Enter true or false"),
    "greater_than_equal": ("{ge} 以上にしてください", "Must be {ge} or more"),
    "less_than_equal": ("{le} 以下にしてください", "Must be {le} or less"),
    "greater_than": ("{gt} より大きくしてください", "Must be more than {gt}"),
    "less_than": ("{lt} より小さくしてください", "Must be less than {lt}"),
    "literal_error": ("次のいずれかを選んでください: {expected}", "Choose one of: {expected}"),
    "enum": ("次のいずれかを選んでください: {expected}", "Choose one of: {expected}"),
    "date_parsing": ("日付は YYYY-MM-DD で入力してください", "Enter a date as YYYY-MM-DD"),
    "date_from_datetime_parsing": (
        "日付は YYYY-MM-DD で入力してください",
        "Enter a date as YYYY-MM-DD",
    ),
    "datetime_parsing": ("日時の形式が正しくありません", "Enter a date and time (ISO 8601)"),
    "model_type": ("オブジェクト ({{...}}) で送信してください", "Send a JSON object ({{...}})"),
    "model_attributes_type": (
        "オブジェクト ({{...}}) で送信してください",
        "Send a JSON object ({{...}})",
    ),
    "dict_type": ("オブジェクト ({{...}}) で送信してください", "Send a JSON object ({{...}})"),
    "list_type": ("配列 ([...]) で送信してください", "Send a JSON array ([...])"),
    "value_error": ("値が正しくありません", "The value is not valid"),
}
FALLBACK: Final = ("値が正しくありません", "The value is not valid")


def field_errors(error: ValidationError, location: str) -> tuple[FieldError, ...]:
    """One :class:`FieldError` per problem pydantic found; ``location`` is ``body`` or ``query``."""
    result: list[FieldError] = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join([location, *(str(part) for part in item["loc"])])
        code = item["type"]
        ja, en = MESSAGES.get(code) or SETUP_MESSAGES.get(code) or FALLBACK
        context: dict[str, Any] = dict(item.get("ctx") or {})
        result.append(FieldError(path, code, Text(_fill(ja, context), _fill(en, context))))
    return tuple(result)


def _fill(template: str, context: dict[str, Any]) -> str:
    try:
        return template.format(**{key: str(value) for key, value in context.items()})
    except (KeyError, IndexError, ValueError):
        return template.split("{")[0].strip() or template
