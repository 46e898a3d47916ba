"""Questionnaire definitions: FHIR R4 ``Questionnaire`` JSON (or YAML) ⇄ immutable Python objects.

:func:`from_fhir` reads the elements and SDC extensions the engine understands into typed fields;
everything else (``code``, ``definition``, other extensions …) is kept verbatim and written back by
:func:`to_fhir`, so a definition survives import → edit → export. Unknown item types are kept as
written: :func:`interview_forms.validate.validate` reports them. Values that cannot be represented
at all (a ``linkId`` that is not a string, an ``initial`` whose value is malformed …) raise
:class:`DefinitionError` listing every such place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import yaml

from .errors import DefinitionError, Problem
from .values import JSON, Coding, InvalidValue, Kind, TypedValue, typed_from_fhir

HIDDEN: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
ITEM_CONTROL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM: Final = "http://hl7.org/fhir/questionnaire-item-control"
MIN_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
UNIT: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
CALCULATED: Final = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
OUTCOME: Final = "https://tsunagu.dev/fhir/StructureDefinition/outcome"

ITEM_TYPES: Final = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "choice",
        "open-choice",
        "quantity",
        "attachment",
    }
)
NOT_ANSWERABLE: Final = frozenset({"group", "display"})
OPERATORS: Final = ("exists", "=", "!=", ">", "<", ">=", "<=")

Operator = Literal["exists", "=", "!=", ">", "<", ">=", "<="]


class OutcomeAction:
    """What an outcome tells the patient and booking to do (Tsunagu's own codes).

    ``call-ambulance``: an emergency — call 119 now (救急車). ``visit-in-person``: this cannot be
    handled online; come to the clinic. ``block-online-first-visit``: an online first visit
    (オンライン初診) cannot be booked; an in-person visit can. ``recommend-menu``: suggest the menu
    named in ``menu``. ``notice``: a message only.
    """

    CALL_AMBULANCE: Final = "call-ambulance"
    VISIT_IN_PERSON: Final = "visit-in-person"
    BLOCK_ONLINE_FIRST_VISIT: Final = "block-online-first-visit"
    RECOMMEND_MENU: Final = "recommend-menu"
    NOTICE: Final = "notice"
    ALL: Final = (CALL_AMBULANCE, VISIT_IN_PERSON, BLOCK_ONLINE_FIRST_VISIT, RECOMMEND_MENU, NOTICE)
    BLOCKING_ONLINE: Final = frozenset({CALL_AMBULANCE, VISIT_IN_PERSON, BLOCK_ONLINE_FIRST_VISIT})


@dataclass(frozen=True, slots=True)
class EnableWhen:
    """``question`` ``operator`` ``answer``; ``answer`` is ``None`` only in a broken definition."""

    question: str
    operator: str
    answer: TypedValue | None

    def to_fhir(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"question": self.question, "operator": self.operator}
        if self.answer is not None:
            out.update(self.answer.to_fhir("answer"))
        return out


@dataclass(frozen=True, slots=True)
class AnswerOption:
    """One ``answerOption``; ``extra``: its unmodelled elements as JSON (e.g. ordinalValue)."""

    value: TypedValue
    initial_selected: bool = False
    extra: str = "{}"

    def to_fhir(self) -> dict[str, JSON]:
        out = self.value.to_fhir("value")
        if self.initial_selected:
            out["initialSelected"] = True
        out.update(json.loads(self.extra))
        return out


@dataclass(frozen=True, slots=True)
class Item:
    """One ``Questionnaire.item``; ``extra`` / ``other_extensions``: what is not modelled (JSON)."""

    link_id: str
    type: str
    text: str | None = None
    prefix: str | None = None
    required: bool = False
    repeats: bool = False
    read_only: bool = False
    max_length: int | None = None
    enable_when: tuple[EnableWhen, ...] = ()
    enable_behavior: str | None = None
    answer_options: tuple[AnswerOption, ...] = ()
    initial: tuple[TypedValue, ...] = ()
    items: tuple[Item, ...] = ()
    hidden: bool = False
    item_control: str | None = None
    min_value: TypedValue | None = None
    max_value: TypedValue | None = None
    unit: Coding | None = None
    calculated_expression: str | None = None
    calculated_language: str | None = None
    extra: str = "{}"
    other_extensions: str = "[]"

    @property
    def is_question(self) -> bool:
        return self.type not in NOT_ANSWERABLE

    @property
    def is_repeating_group(self) -> bool:
        return self.type == "group" and self.repeats

    @property
    def has_coded_options(self) -> bool:
        return any(o.value.kind is Kind.CODING for o in self.answer_options)

    def walk(self) -> Iterator[Item]:
        """This item and its descendants in document order."""
        yield self
        for child in self.items:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class Outcome:
    """A routing rule (Tsunagu extension): when the conditions hold, ``action`` applies.

    Conditions use enableWhen semantics at the questionnaire level: a question inside a repeating
    group matches when any instance matches; a disabled question has no answer.
    """

    id: str
    action: str
    conditions: tuple[EnableWhen, ...]
    behavior: str = "any"
    message_ja: str = ""
    message_en: str = ""
    menu: str | None = None

    def to_fhir(self) -> dict[str, JSON]:
        parts: list[dict[str, JSON]] = [
            {"url": "id", "valueId": self.id},
            {"url": "action", "valueCode": self.action},
        ]
        for condition in self.conditions:
            sub = [{"url": "question", "valueString": condition.question}]
            sub.append({"url": "operator", "valueCode": condition.operator})
            if condition.answer is not None:
                sub.append({"url": "answer", **condition.answer.to_fhir("value")})
            parts.append({"url": "condition", "extension": sub})
        parts.append({"url": "behavior", "valueCode": self.behavior})
        parts.append({"url": "message-ja", "valueString": self.message_ja})
        parts.append({"url": "message-en", "valueString": self.message_en})
        if self.menu is not None:
            parts.append({"url": "menu", "valueString": self.menu})
        return {"url": OUTCOME, "extension": parts}


@dataclass(frozen=True, slots=True)
class Questionnaire:
    """A whole definition. ``canonical`` (``url|version``) is what responses point to."""

    items: tuple[Item, ...]
    url: str | None = None
    version: str | None = None
    id: str | None = None
    name: str | None = None
    title: str | None = None
    status: str = "draft"
    outcomes: tuple[Outcome, ...] = ()
    extra: str = "{}"
    other_extensions: str = "[]"
    _by_link_id: Mapping[str, Item] = field(init=False, repr=False, compare=False)
    _parents: Mapping[str, str | None] = field(init=False, repr=False, compare=False)
    _order: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _dependents: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _scopes: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_link_id: dict[str, Item] = {}
        parents: dict[str, str | None] = {}
        order: dict[str, int] = {}

        def visit(item: Item, parent: str | None) -> None:
            if item.link_id not in by_link_id:  # duplicates are a validation problem
                by_link_id[item.link_id] = item
                parents[item.link_id] = parent
                order[item.link_id] = len(order)
            for child in item.items:
                visit(child, item.link_id)

        for item in self.items:
            visit(item, None)
        object.__setattr__(self, "_by_link_id", by_link_id)
        object.__setattr__(self, "_parents", parents)
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_scopes", {})
        dependents: dict[str, set[str]] = {}
        for item in self.walk():
            for condition in item.enable_when:
                dependents.setdefault(condition.question, set()).add(item.link_id)
            for child in item.items:
                dependents.setdefault(item.link_id, set()).add(child.link_id)
        object.__setattr__(self, "_dependents", {k: frozenset(v) for k, v in dependents.items()})

    @property
    def canonical(self) -> str | None:
        if self.url is None:
            return None
        return f"{self.url}|{self.version}" if self.version else self.url

    def item(self, link_id: str) -> Item | None:
        return self._by_link_id.get(link_id)

    def parent_of(self, link_id: str) -> str | None:
        return self._parents.get(link_id)

    def position(self, link_id: str) -> int:
        """Document order of the (first) item with this linkId."""
        return self._order[link_id]

    def downstream(self, link_ids: set[str]) -> set[str]:
        """``link_ids`` and every item whose enablement depends on them (conditions, parents)."""
        out = set(link_ids)
        frontier = list(link_ids)
        while frontier:
            for dependent in self._dependents.get(frontier.pop(), ()):
                if dependent not in out:
                    out.add(dependent)
                    frontier.append(dependent)
        return out

    def ancestors(self, link_id: str) -> list[str]:
        """linkIds of the enclosing items, nearest first."""
        out: list[str] = []
        parent = self._parents.get(link_id)
        while parent is not None:
            out.append(parent)
            parent = self._parents.get(parent)
        return out

    def repeating_scope(self, link_id: str) -> tuple[str, ...]:
        """The repeating groups around ``link_id`` (outermost first; the item itself excluded)."""
        scope = self._scopes.get(link_id)
        if scope is None:
            scope = tuple(
                a
                for a in reversed(self.ancestors(link_id))
                if self._by_link_id[a].is_repeating_group
            )
            self._scopes[link_id] = scope  # a cache: the definition itself never changes
        return scope

    def walk(self) -> Iterator[Item]:
        for item in self.items:
            yield from item.walk()


# --- reading -------------------------------------------------------------------------------------

_ITEM_KEYS = frozenset(
    {
        "linkId",
        "type",
        "text",
        "prefix",
        "required",
        "repeats",
        "readOnly",
        "maxLength",
        "enableWhen",
        "enableBehavior",
        "answerOption",
        "initial",
        "item",
        "extension",
    }
)
_ROOT_KEYS = frozenset(
    {"resourceType", "id", "url", "version", "name", "title", "status", "item", "extension"}
)
_ITEM_EXTENSIONS = frozenset({HIDDEN, ITEM_CONTROL, MIN_VALUE, MAX_VALUE, UNIT, CALCULATED})


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without timestamps: ``2024-04-01`` stays the string FHIR expects, not a date."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(text: str | bytes) -> JSON:
    """The JSON value of FHIR JSON or YAML text (YAML is a superset of JSON: one parser).

    YAML values JSON cannot hold (sets, binary, non-string keys, infinities …) are refused.
    """
    try:
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DefinitionError((Problem.of("unreadable", None, detail=detail),)) from error
    where = _not_json(data, "$")
    if where is not None:
        raise DefinitionError((Problem.of("not-json", None, where=where),))
    return data


def _not_json(value: JSON, where: str) -> str | None:
    """The path of the first value JSON cannot represent, else ``None``."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, list):
        found = (_not_json(v, f"{where}[{i}]") for i, v in enumerate(value))
        return next((f for f in found if f is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}.{key!r}"
            found_in = _not_json(item, f"{where}.{key}")
            if found_in is not None:
                return found_in
        return None
    return where


def load(text: str | bytes) -> Questionnaire:
    """A definition from FHIR JSON or YAML text."""
    return from_fhir(parse_document(text))


def from_fhir(data: JSON) -> Questionnaire:
    """Typed definition of a Questionnaire resource (a dict as json.loads gives it)."""
    reader = _Reader()
    questionnaire = reader.questionnaire(data)
    if reader.problems or questionnaire is None:
        raise DefinitionError(tuple(reader.problems))
    return questionnaire


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, link_id: str | None, element: str) -> None:
        self.problems.append(Problem.of("invalid-element", link_id, element=element))

    def questionnaire(self, data: JSON) -> Questionnaire | None:
        if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
            self.problems.append(Problem.of("not-a-questionnaire", None))
            return None
        items = self.items(data.get("item", []), None, "item")
        extensions = data.get("extension", [])
        if not isinstance(extensions, list) or not all(isinstance(e, dict) for e in extensions):
            self.fail(None, "extension")
            extensions = []
        outcomes = [self.outcome(e) for e in extensions if e.get("url") == OUTCOME]
        others = [e for e in extensions if e.get("url") != OUTCOME]
        strings = {}
        for key in ("id", "url", "version", "name", "title", "status"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                self.fail(None, key)
                value = None
            strings[key] = value
        return Questionnaire(
            items=tuple(items),
            url=strings["url"],
            version=strings["version"],
            id=strings["id"],
            name=strings["name"],
            title=strings["title"],
            status=strings["status"] or "draft",
            outcomes=tuple(o for o in outcomes if o is not None),
            extra=_dump({k: v for k, v in data.items() if k not in _ROOT_KEYS}),
            other_extensions=_dump(others),
        )

    def items(self, raw: JSON, parent: str | None, where: str) -> list[Item]:
        if not isinstance(raw, list):
            self.fail(parent, "item")
            return []
        out = []
        for index, element in enumerate(raw):
            item = self.item(element, f"{where}[{index}]")
            if item is not None:
                out.append(item)
        return out

    def item(self, raw: JSON, where: str) -> Item | None:
        if not isinstance(raw, dict):
            self.fail(None, where)
            return None
        link_id = raw.get("linkId")
        if not isinstance(link_id, str) or link_id == "":
            self.problems.append(Problem.of("missing-link-id", None, where=where))
            return None
        item_type = raw.get("type")
        if not isinstance(item_type, str):
            self.fail(link_id, "type")
            return None
        fields: dict[str, JSON] = {}
        for key, name, kind in (
            ("text", "text", str),
            ("prefix", "prefix", str),
            ("required", "required", bool),
            ("repeats", "repeats", bool),
            ("readOnly", "read_only", bool),
            ("maxLength", "max_length", int),
            ("enableBehavior", "enable_behavior", str),
        ):
            if key in raw:
                value = raw[key]
                if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                    self.fail(link_id, key)
                    continue
                fields[name] = value
        enable_when = [self.enable_when(link_id, e) for e in self.list_of(raw, "enableWhen")]
        options = [self.answer_option(link_id, o) for o in self.list_of(raw, "answerOption")]
        initial = [
            self.single_value(link_id, i, "value", "initial") for i in self.list_of(raw, "initial")
        ]
        extensions = self.list_of(raw, "extension")
        known = self.item_extensions(
            link_id, [e for e in extensions if e.get("url") in _ITEM_EXTENSIONS]
        )
        return Item(
            link_id=link_id,
            type=item_type,
            enable_when=tuple(e for e in enable_when if e is not None),
            answer_options=tuple(o for o in options if o is not None),
            initial=tuple(i for i in initial if i is not None),
            items=tuple(self.items(raw.get("item", []), link_id, f"{where}.item")),
            extra=_dump({k: v for k, v in raw.items() if k not in _ITEM_KEYS}),
            other_extensions=_dump([e for e in extensions if e.get("url") not in _ITEM_EXTENSIONS]),
            **fields,
            **known,
        )

    def list_of(self, raw: dict[str, JSON], key: str) -> list[dict[str, JSON]]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(raw.get("linkId"), key)
            return []
        return value

    def single_value(
        self, link_id: str | None, element: dict[str, JSON], prefix: str, name: str
    ) -> TypedValue | None:
        try:
            values = typed_from_fhir(element, prefix)
        except InvalidValue:
            self.fail(link_id, name)
            return None
        if len(values) != 1:
            self.fail(link_id, name)
            return None
        return values[0]

    def enable_when(self, link_id: str, raw: dict[str, JSON]) -> EnableWhen | None:
        question, operator = raw.get("question"), raw.get("operator")
        if not isinstance(question, str) or not isinstance(operator, str):
            self.fail(link_id, "enableWhen")
            return None
        try:
            answers = typed_from_fhir(raw, "answer")
        except InvalidValue:
            self.fail(link_id, "enableWhen.answer[x]")
            return None
        # No or several answer[x]: kept as None, reported by the validator with its own rule.
        return EnableWhen(question, operator, answers[0] if len(answers) == 1 else None)

    def answer_option(self, link_id: str, raw: dict[str, JSON]) -> AnswerOption | None:
        value = self.single_value(link_id, raw, "value", "answerOption")
        selected = raw.get("initialSelected", False)
        if value is None or not isinstance(selected, bool):
            if value is not None:
                self.fail(link_id, "answerOption.initialSelected")
            return None
        extra = {k: v for k, v in raw.items() if k != "initialSelected" and not _is_value_key(k)}
        return AnswerOption(value, selected, _dump(extra))

    def item_extensions(self, link_id: str, extensions: list[dict[str, JSON]]) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for ext in extensions:
            url = ext["url"]
            if url == HIDDEN and isinstance(ext.get("valueBoolean"), bool):
                out["hidden"] = ext["valueBoolean"]
            elif url == ITEM_CONTROL and _control_code(ext) is not None:
                out["item_control"] = _control_code(ext)
            elif url in (MIN_VALUE, MAX_VALUE):
                value = self.single_value(link_id, ext, "value", url.rsplit("/", 1)[1])
                out["min_value" if url == MIN_VALUE else "max_value"] = value
            elif url == UNIT and isinstance(ext.get("valueCoding"), dict):
                unit = self.single_value(link_id, ext, "value", "questionnaire-unit")
                if unit is not None:
                    out["unit"] = unit.value
            elif url == CALCULATED and isinstance(ext.get("valueExpression"), dict):
                expression = ext["valueExpression"]
                text, language = expression.get("expression"), expression.get("language")
                if not isinstance(text, str) or not isinstance(language, str):
                    self.fail(link_id, "calculatedExpression")
                    continue
                out["calculated_expression"] = text
                out["calculated_language"] = language
            else:
                self.fail(link_id, url.rsplit("/", 1)[1])
        return out

    def outcome(self, raw: dict[str, JSON]) -> Outcome | None:
        parts = raw.get("extension")
        name = "?"
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            self.problems.append(
                Problem.of("outcome-invalid", None, outcome=name, detail="extension")
            )
            return None
        values: dict[str, JSON] = {}
        conditions: list[EnableWhen] = []
        for part in parts:
            url = part.get("url")
            if url == "condition":
                sub = {p.get("url"): p for p in part.get("extension", []) if isinstance(p, dict)}
                question = sub.get("question", {}).get("valueString")
                operator = sub.get("operator", {}).get("valueCode")
                answer = sub.get("answer", {})
                try:
                    typed = typed_from_fhir(answer, "value")
                except InvalidValue:
                    typed = []
                if (
                    not isinstance(question, str)
                    or not isinstance(operator, str)
                    or len(typed) != 1
                ):
                    self.problems.append(
                        Problem.of("outcome-invalid", None, outcome=name, detail="condition")
                    )
                    continue
                conditions.append(EnableWhen(question, operator, typed[0]))
            elif isinstance(url, str):
                scalar = [v for k, v in part.items() if k.startswith("value")]
                values[url] = scalar[0] if len(scalar) == 1 else None
                if url == "id" and isinstance(values[url], str):
                    name = values[url]
        strings = {
            k: values.get(k)
            for k in ("id", "action", "behavior", "message-ja", "message-en", "menu")
        }
        if not isinstance(strings["id"], str) or not isinstance(strings["action"], str):
            self.problems.append(
                Problem.of("outcome-invalid", None, outcome=name, detail="id/action")
            )
            return None
        if any(v is not None and not isinstance(v, str) for v in strings.values()):
            self.problems.append(
                Problem.of("outcome-invalid", None, outcome=name, detail="value type")
            )
            return None
        return Outcome(
            id=strings["id"],
            action=strings["action"],
            conditions=tuple(conditions),
            behavior=strings["behavior"] or "any",
            message_ja=strings["message-ja"] or "",
            message_en=strings["message-en"] or "",
            menu=strings["menu"],
        )


def _control_code(ext: dict[str, JSON]) -> str | None:
    concept = ext.get("valueCodeableConcept")
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    if not isinstance(codings, list) or not codings or not isinstance(codings[0], dict):
        return None
    code = codings[0].get("code")
    return code if isinstance(code, str) else None


def _is_value_key(key: str) -> bool:
    return key.startswith("value") and key[5:] in {kind.value for kind in Kind}


def _dump(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --- writing -------------------------------------------------------------------------------------


def to_fhir(questionnaire: Questionnaire) -> dict[str, JSON]:
    """The FHIR JSON of a definition (a dict ready for json.dumps)."""
    out: dict[str, JSON] = {"resourceType": "Questionnaire"}
    for key in ("id", "url", "version", "name", "title", "status"):
        value = getattr(questionnaire, key)
        if value is not None:
            out[key] = value
    extensions = json.loads(questionnaire.other_extensions)
    extensions += [o.to_fhir() for o in questionnaire.outcomes]
    if extensions:
        out["extension"] = extensions
    out.update(json.loads(questionnaire.extra))
    if questionnaire.items:
        out["item"] = [_item_to_fhir(i) for i in questionnaire.items]
    return out


def _item_to_fhir(item: Item) -> dict[str, JSON]:
    out: dict[str, JSON] = {"linkId": item.link_id}
    if item.prefix is not None:
        out["prefix"] = item.prefix
    if item.text is not None:
        out["text"] = item.text
    out["type"] = item.type
    extensions = _item_extensions(item) + json.loads(item.other_extensions)
    if extensions:
        out["extension"] = extensions
    if item.enable_when:
        out["enableWhen"] = [e.to_fhir() for e in item.enable_when]
    if item.enable_behavior is not None:
        out["enableBehavior"] = item.enable_behavior
    for flag, key in (("required", "required"), ("repeats", "repeats"), ("read_only", "readOnly")):
        if getattr(item, flag):
            out[key] = True
    if item.max_length is not None:
        out["maxLength"] = item.max_length
    if item.answer_options:
        out["answerOption"] = [o.to_fhir() for o in item.answer_options]
    if item.initial:
        out["initial"] = [v.to_fhir("value") for v in item.initial]
    out.update(json.loads(item.extra))
    if item.items:
        out["item"] = [_item_to_fhir(child) for child in item.items]
    return out


def _item_extensions(item: Item) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    if item.hidden:
        out.append({"url": HIDDEN, "valueBoolean": True})
    if item.item_control is not None:
        coding = {"system": ITEM_CONTROL_SYSTEM, "code": item.item_control}
        out.append({"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [coding]}})
    if item.min_value is not None:
        out.append({"url": MIN_VALUE, **item.min_value.to_fhir("value")})
    if item.max_value is not None:
        out.append({"url": MAX_VALUE, **item.max_value.to_fhir("value")})
    if item.unit is not None:
        out.append({"url": UNIT, "valueCoding": item.unit.to_fhir()})
    if item.calculated_expression is not None:
        expression = {
            "language": item.calculated_language or "text/fhirpath",
            "expression": item.calculated_expression,
        }
        out.append({"url": CALCULATED, "valueExpression": expression})
    return out


# --- what answers an item takes ------------------------------------------------------------------

_KINDS_BY_TYPE: Final[dict[str, frozenset[Kind]]] = {
    "boolean": frozenset({Kind.BOOLEAN}),
    "decimal": frozenset({Kind.DECIMAL, Kind.INTEGER}),
    "integer": frozenset({Kind.INTEGER}),
    "date": frozenset({Kind.DATE}),
    "dateTime": frozenset({Kind.DATETIME}),
    "time": frozenset({Kind.TIME}),
    "string": frozenset({Kind.STRING}),
    "text": frozenset({Kind.STRING}),
    "choice": frozenset({Kind.CODING}),
    "open-choice": frozenset({Kind.CODING, Kind.STRING}),
    "quantity": frozenset({Kind.QUANTITY}),
    "attachment": frozenset({Kind.ATTACHMENT}),
}


def answer_kinds(item: Item) -> frozenset[Kind]:
    """The value kinds an answer to ``item`` may have (empty for groups, displays, unknown types).

    A choice whose options are integers, dates, times or strings takes those kinds instead of
    Coding; an open-choice also takes free text (String).
    """
    if item.type in ("choice", "open-choice") and item.answer_options:
        kinds = {o.value.kind for o in item.answer_options}
        return frozenset(kinds | ({Kind.STRING} if item.type == "open-choice" else set()))
    return _KINDS_BY_TYPE.get(item.type, frozenset())
