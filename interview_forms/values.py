"""Typed answer values: FHIR ``value[x]`` in, comparable Python values out (pure).

A questionnaire and its answers carry values of a dozen FHIR types. Here each becomes a
:class:`TypedValue` — a kind (the ``[x]`` suffix: ``Boolean``, ``Coding`` …) and an immutable Python
value — so that the definition loader, the upload validator and the engine share one notion of
"this answer has this type" and "these two values are equal / ordered".

Formats are FHIR's: ``date`` is ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``; ``dateTime`` adds
``Thh:mm:ss[.fff]`` with a zone (``Z`` or ``±hh:mm``) when a time is present; ``time`` is
``hh:mm:ss[.fff]``; ``integer`` is 32-bit. Leap seconds (``:60``) are refused: they cannot be
compared. The browser evaluator
(``patient_portal/static/js/questionnaire_engine.js``) implements the same rules.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeAlias

JSON: TypeAlias = Any  # a value as json.loads returns it

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(\.\d{1,9})?(Z|[+-](?:0\d|1[0-3]):[0-5]\d|[+-]14:00))?"
    r")?)?",
    re.ASCII,
)
# Python's str.isspace() characters, spelled out so that the browser evaluator uses the same set.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS = "[" + re.escape(WHITESPACE) + "]"
_NOT_WS = "[^" + re.escape(WHITESPACE) + "]"
_CODE = re.compile(f"{_NOT_WS}+(?:{_WS}{_NOT_WS}+)*")
_BLANK = re.compile(f"{_WS}*")
_HAS_WS = re.compile(_WS)
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(\.\d{1,9})?", re.ASCII)


class Kind(StrEnum):
    """The ``[x]`` of ``value[x]`` / ``answer[x]`` / ``initial[x]``."""

    BOOLEAN = "Boolean"
    DECIMAL = "Decimal"
    INTEGER = "Integer"
    DATE = "Date"
    DATETIME = "DateTime"
    TIME = "Time"
    STRING = "String"
    URI = "Uri"
    CODING = "Coding"
    QUANTITY = "Quantity"
    ATTACHMENT = "Attachment"
    REFERENCE = "Reference"


@dataclass(frozen=True, slots=True)
class Coding:
    """A code from a code system; equal to another when system and code match (display ignored).

    When either side has no ``system`` only the codes are compared (authors often omit it in
    ``enableWhen.answerCoding``).
    """

    code: str
    system: str | None = None
    display: str | None = None
    translations: tuple[tuple[str, str], ...] = ()  # (language, display), FHIR translation ext.

    def display_in(self, language: str) -> str | None:
        """The display in ``language`` ("en") when translated, else the display as written."""
        for lang, text in self.translations:
            if lang.split("-")[0] == language:
                return text
        return self.display

    def matches(self, other: Coding) -> bool:
        if self.code != other.code:
            return False
        return self.system is None or other.system is None or self.system == other.system

    def to_fhir(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        if self.system is not None:
            out["system"] = self.system
        out["code"] = self.code
        if self.display is not None:
            out["display"] = self.display
            if self.translations:
                out["_display"] = {"extension": [_translation(*t) for t in self.translations]}
        return out


TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def _translation(language: str, text: str) -> dict[str, JSON]:
    parts = [{"url": "lang", "valueCode": language}, {"url": "content", "valueString": text}]
    return {"url": TRANSLATION, "extension": parts}


def _translations(element: JSON) -> tuple[tuple[str, str], ...]:
    """Well-formed FHIR translation extensions of a primitive's ``_element``; others are dropped."""
    if not isinstance(element, dict) or not isinstance(element.get("extension"), list):
        return ()
    out: list[tuple[str, str]] = []
    for entry in element["extension"]:
        if not isinstance(entry, dict) or entry.get("url") != TRANSLATION:
            continue
        parts = entry.get("extension")
        values = (
            {p.get("url"): p for p in parts if isinstance(p, dict)}
            if isinstance(parts, list)
            else {}
        )
        language = values.get("lang", {}).get("valueCode")
        text = values.get("content", {}).get("valueString")
        well_formed = isinstance(text, str) and not is_blank(text)
        if (
            isinstance(language, str)
            and _is_code(language)
            and isinstance(text, str)
            and well_formed
        ):
            out.append((language, text))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measured amount; ``code``/``system`` are UCUM when present, ``unit`` is for people."""

    value: int | float
    unit: str | None = None
    system: str | None = None
    code: str | None = None

    def unit_key(self) -> str | None:
        return self.code if self.code is not None else self.unit

    def to_fhir(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"value": self.value}
        for name in ("unit", "system", "code"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the patient attached (a photo of a rash, of the お薬手帳 medication notebook …).

    Only the reference is held here (``url``, e.g. to encrypted storage); content checks belong to
    the upload adapter.
    """

    content_type: str
    url: str | None = None
    title: str | None = None
    size: int | None = None

    def to_fhir(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"contentType": self.content_type}
        for name, key in (("url", "url"), ("title", "title"), ("size", "size")):
            if getattr(self, name) is not None:
                out[key] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True)
class Reference:
    reference: str
    display: str | None = None

    def to_fhir(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"reference": self.reference}
        if self.display is not None:
            out["display"] = self.display
        return out


Python: TypeAlias = bool | int | float | str | Coding | Quantity | Attachment | Reference


@dataclass(frozen=True, slots=True)
class TypedValue:
    kind: Kind
    value: Python

    def to_json(self) -> JSON:
        """The FHIR JSON of the value alone (what follows ``"valueX":``)."""
        if isinstance(self.value, Coding | Quantity | Attachment | Reference):
            return self.value.to_fhir()
        return self.value

    def to_fhir(self, prefix: str = "value") -> dict[str, JSON]:
        return {prefix + self.kind.value: self.to_json()}


class InvalidValue(ValueError):
    """A JSON value that is not a valid FHIR value of the wanted kind; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# --- parsing -------------------------------------------------------------------------------------


def is_blank(text: str) -> bool:
    """Only whitespace (or nothing): not an answer."""
    return _BLANK.fullmatch(text) is not None


def _is_code(text: JSON) -> bool:
    return isinstance(text, str) and _CODE.fullmatch(text) is not None


def _is_uri(text: JSON) -> bool:
    return isinstance(text, str) and text != "" and _HAS_WS.search(text) is None


def _optional_text(value: JSON) -> str | None:
    """An optional human-readable string: absent when blank; InvalidValue when not a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue("invalid-type")
    return None if is_blank(value) else value


def is_valid_date(text: str) -> bool:
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = match.groups()
    if int(year) < 1:  # FHIR has no year 0000
        return False
    if month is not None and not 1 <= int(month) <= 12:
        return False
    if day is not None:
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return False
    return True


def is_valid_datetime(text: str) -> bool:
    match = _DATETIME.fullmatch(text)
    if match is None:
        return False
    date_part = text.split("T", 1)[0]
    return is_valid_date(date_part)


def is_valid_time(text: str) -> bool:
    return _TIME.fullmatch(text) is not None


def parse_value(kind: Kind, raw: JSON) -> TypedValue:
    """The typed value of ``raw`` read as FHIR ``value{kind}``; :class:`InvalidValue` if it is not.

    ``invalid-type`` means the JSON type is wrong, ``invalid-format`` a string in the wrong
    format, ``out-of-range`` an integer outside 32 bits.
    """
    return TypedValue(kind, _PARSERS[kind](raw))


def _boolean(raw: JSON) -> Python:
    if isinstance(raw, bool):
        return raw
    raise InvalidValue("invalid-type")


def _decimal(raw: JSON) -> Python:
    return _number(raw)


def _number(raw: JSON) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidValue("invalid-type")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise InvalidValue("invalid-type")
    return float(raw) if isinstance(raw, float) else int(raw)


def _integer(raw: JSON) -> Python:
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)  # 2.0 from a browser is the integer 2, as in JavaScript
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidValue("invalid-type")
    if not INT32_MIN <= raw <= INT32_MAX:
        raise InvalidValue("out-of-range")
    return int(raw)


def _string_of(check: Any) -> Any:
    def parse(raw: JSON) -> Python:
        if not isinstance(raw, str):
            raise InvalidValue("invalid-type")
        if not check(raw):
            raise InvalidValue("invalid-format")
        return raw

    return parse


def _not_blank(text: str) -> bool:
    return not is_blank(text)


def _coding(raw: JSON) -> Python:
    if not isinstance(raw, dict) or not _is_code(raw.get("code")):
        raise InvalidValue("invalid-type")
    system = raw.get("system")
    if system is not None and not _is_uri(system):
        raise InvalidValue("invalid-type")
    display = _optional_text(raw.get("display"))
    translations = _translations(raw.get("_display")) if display is not None else ()
    return Coding(code=raw["code"], system=system, display=display, translations=translations)


def _quantity(raw: JSON) -> Python:
    if not isinstance(raw, dict):
        raise InvalidValue("invalid-type")
    value = _number(raw.get("value"))
    system, code = raw.get("system"), raw.get("code")
    if (system is not None and not _is_uri(system)) or (code is not None and not _is_code(code)):
        raise InvalidValue("invalid-type")
    return Quantity(value=value, unit=_optional_text(raw.get("unit")), system=system, code=code)


def _attachment(raw: JSON) -> Python:
    if not isinstance(raw, dict) or not _is_code(raw.get("contentType")):
        raise InvalidValue("invalid-type")
    url, size = raw.get("url"), raw.get("size")
    if url is not None and not _is_uri(url):
        raise InvalidValue("invalid-type")
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 2**32 - 1
    ):
        raise InvalidValue("invalid-type")
    return Attachment(
        content_type=raw["contentType"], url=url, title=_optional_text(raw.get("title")), size=size
    )


def _reference(raw: JSON) -> Python:
    if not isinstance(raw, dict) or _optional_text(raw.get("reference")) is None:
        raise InvalidValue("invalid-type")
    return Reference(reference=raw["reference"], display=_optional_text(raw.get("display")))


_PARSERS: dict[Kind, Any] = {
    Kind.BOOLEAN: _boolean,
    Kind.DECIMAL: _decimal,
    Kind.INTEGER: _integer,
    Kind.DATE: _string_of(is_valid_date),
    Kind.DATETIME: _string_of(is_valid_datetime),
    Kind.TIME: _string_of(is_valid_time),
    Kind.STRING: _string_of(_not_blank),
    Kind.URI: _string_of(_is_uri),
    Kind.CODING: _coding,
    Kind.QUANTITY: _quantity,
    Kind.ATTACHMENT: _attachment,
    Kind.REFERENCE: _reference,
}


_KIND_BY_SUFFIX: dict[str, Kind] = {kind.value: kind for kind in Kind}


def typed_from_fhir(element: dict[str, JSON], prefix: str) -> list[TypedValue]:
    """Every ``{prefix}{Kind}`` entry of a FHIR element (normally zero or one), parsed."""
    found: list[TypedValue] = []
    for key, raw in element.items():
        kind = _KIND_BY_SUFFIX.get(key[len(prefix) :]) if key.startswith(prefix) else None
        if kind is not None:
            found.append(TypedValue(kind, _PARSERS[kind](raw)))
    return found


# --- comparison ----------------------------------------------------------------------------------


_FRACTION = re.compile(r"\.(\d+)", re.ASCII)


def _datetime_instant(text: str) -> tuple[int, int] | None:
    """(seconds since the epoch, nanoseconds) of a dateTime with a time, else ``None``.

    The fraction is kept to the nanosecond, as the browser evaluator does.
    """
    if "T" not in text:
        return None
    fraction = _FRACTION.search(text)
    whole = _FRACTION.sub("", text).replace("Z", "+00:00")
    nanoseconds = int((fraction.group(1) + "000000000")[:9]) if fraction else 0
    return int(datetime.fromisoformat(whole).timestamp()), nanoseconds


def _time_seconds(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def compare(left: TypedValue, right: TypedValue) -> int | None:
    """-1, 0 or 1 when the two values are comparable, else ``None``.

    Comparable means: the same kind (integer and decimal mix), dates and dateTimes of the same
    precision (a precision mismatch is indeterminate in FHIR: ``None``), quantities with the same
    unit. Codings, attachments and references are never ordered: see :func:`equal`.
    """
    a, b, kind = left.value, right.value, left.kind
    numeric = (Kind.INTEGER, Kind.DECIMAL)
    if kind in numeric and right.kind in numeric:
        if isinstance(a, int | float) and isinstance(b, int | float):
            return _sign(a, b)
        return None
    if kind != right.kind:
        return None
    if isinstance(a, str) and isinstance(b, str):
        return _compare_text(kind, a, b)
    if kind is Kind.BOOLEAN:
        return 0 if a == b else None
    if isinstance(a, Quantity) and isinstance(b, Quantity) and a.unit_key() == b.unit_key():
        return _sign(a.value, b.value)
    return None


def _compare_text(kind: Kind, a: str, b: str) -> int | None:
    if kind is Kind.DATE and len(a) != len(b):
        return None
    if kind is Kind.DATETIME:
        ia, ib = _datetime_instant(a), _datetime_instant(b)
        if ia is None and ib is None:
            return _sign(a, b) if len(a) == len(b) else None
        if ia is None or ib is None:
            return None
        return _sign(ia, ib)
    if kind is Kind.TIME:
        return _sign(_time_seconds(a), _time_seconds(b))
    return _sign(a, b)


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def equal(left: TypedValue, right: TypedValue) -> bool:
    """FHIR equality for enableWhen ``=``/``!=`` and for "is this answer one of the options"."""
    a, b = left.value, right.value
    if isinstance(a, Coding) and isinstance(b, Coding):
        return a.matches(b)
    if isinstance(a, Attachment | Reference) or isinstance(b, Attachment | Reference):
        return a == b
    return compare(left, right) == 0
