"""Validation of a questionnaire on upload: every broken rule, with linkId, code, ja + en text.

Two layers. The FHIR structure is checked with the ``fhir.resources`` models of FHIR **R4B**
(``fhir.resources.R4B``, FHIR 4.3.0): fhir.resources 8.x ships R5 as its default package, R4B and
STU3, but no 4.0.1 package, and Questionnaire / QuestionnaireResponse did not change between R4
and R4B, so the R4B models are the R4-compatible ones. Then this module's own rules, which the
models do not enforce: the R4 invariants (que-1 …), enableWhen references and types, the SDC
extensions, calculated expressions, and Tsunagu outcomes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pydantic
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse as FhirQuestionnaireResponse,
)

from . import fhirpath
from .definition import (
    ITEM_TYPES,
    NOT_ANSWERABLE,
    OPERATORS,
    EnableWhen,
    Item,
    OutcomeAction,
    Questionnaire,
    answer_kinds,
    from_fhir,
    parse_document,
)
from .errors import DefinitionError, Problem
from .values import JSON, Kind, compare

MAX_FHIR_PROBLEMS = 20

_ORDERED = frozenset(
    {Kind.INTEGER, Kind.DECIMAL, Kind.DATE, Kind.DATETIME, Kind.TIME, Kind.STRING, Kind.QUANTITY}
)
_CONTROLS: dict[str, frozenset[str]] = {
    "radio-button": frozenset({"choice", "open-choice", "boolean"}),
    "check-box": frozenset({"choice", "open-choice", "boolean"}),
    "drop-down": frozenset({"choice", "open-choice"}),
    "autocomplete": frozenset({"choice", "open-choice"}),
    "slider": frozenset({"integer", "decimal"}),
    "spinner": frozenset({"integer", "decimal"}),
    "text-box": frozenset({"string", "text"}),
    "page": frozenset({"group"}),
    "table": frozenset({"group"}),
    "gtable": frozenset({"group"}),
    "list": frozenset({"group"}),
    "header": frozenset({"group", "display"}),
    "footer": frozenset({"group", "display"}),
    "help": frozenset({"display"}),
    "flyover": frozenset({"display"}),
    "legal": frozenset({"display"}),
    "prompt": frozenset({"display"}),
}
_BOUND_KINDS: dict[str, frozenset[Kind]] = {
    "integer": frozenset({Kind.INTEGER}),
    "decimal": frozenset({Kind.DECIMAL, Kind.INTEGER}),
    "date": frozenset({Kind.DATE}),
    "dateTime": frozenset({Kind.DATETIME}),
    "time": frozenset({Kind.TIME}),
    "quantity": frozenset({Kind.QUANTITY, Kind.DECIMAL, Kind.INTEGER}),
}
_OPTION_KINDS = frozenset({Kind.INTEGER, Kind.DATE, Kind.TIME, Kind.STRING, Kind.CODING})
_CALCULATED_TYPES = frozenset({"decimal", "integer", "string", "text", "boolean"})
_LINK_ID_IN_EXPRESSION = re.compile(r"linkId\s*=\s*'((?:[^'\\]|\\.)*)'")


@dataclass(frozen=True, slots=True)
class Validation:
    """The outcome of :func:`validate`: the definition when it could be read, and the problems."""

    questionnaire: Questionnaire | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.questionnaire is not None and not any(
            p.severity == "error" for p in self.problems
        )

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


def validate(document: JSON | str | bytes) -> Validation:
    """All problems of an uploaded definition (FHIR JSON as a dict, or JSON/YAML text)."""
    try:
        if isinstance(document, str | bytes):
            data = parse_document(document)
            questionnaire = from_fhir(data)
        else:
            data = document
            questionnaire = from_fhir(document)
    except DefinitionError as error:
        return Validation(None, error.problems)
    problems = fhir_problems(data) + check(questionnaire)
    return Validation(questionnaire, tuple(problems))


def fhir_problems(data: JSON) -> list[Problem]:
    """Structural problems according to the fhir.resources R4B Questionnaire model."""
    return _pydantic_problems(FhirQuestionnaire, data, "fhir-invalid")


def response_problems(data: JSON) -> list[Problem]:
    """Structural problems of a QuestionnaireResponse (R4B model); empty when it is valid."""
    return _pydantic_problems(FhirQuestionnaireResponse, data, "fhir-response-invalid")


def _pydantic_problems(model: type[pydantic.BaseModel], data: JSON, code: str) -> list[Problem]:
    try:
        model.model_validate(data)
    except pydantic.ValidationError as error:
        out = []
        for detail in error.errors()[:MAX_FHIR_PROBLEMS]:
            location = ".".join(str(part) for part in detail["loc"]) or "-"
            out.append(Problem.of(code, None, location=location, detail=detail["msg"]))
        return out
    return []


def check(questionnaire: Questionnaire) -> list[Problem]:
    """This module's rules over a loaded definition (also usable on one built in an editor)."""
    return list(_Checker(questionnaire).run())


class _Checker:
    def __init__(self, questionnaire: Questionnaire) -> None:
        self.q = questionnaire

    def run(self) -> Iterator[Problem]:
        seen: set[str] = set()
        for item in self.q.walk():
            if item.link_id in seen:
                yield Problem.of("duplicate-link-id", item.link_id)
            seen.add(item.link_id)
        for item in self.q.walk():
            yield from self.item(item)
        yield from self.cycles()
        yield from self.calculated_cycles()
        for outcome in self.q.outcomes:
            yield from self.outcome(outcome.id, outcome.action, outcome.behavior, outcome.menu)
            for condition in outcome.conditions:
                for problem in self.condition(None, condition, check_order=False):
                    detail = problem.message_en
                    yield Problem.of("outcome-invalid", None, outcome=outcome.id, detail=detail)

    def item(self, item: Item) -> Iterator[Problem]:
        link_id, kind = item.link_id, item.type
        if kind not in ITEM_TYPES:
            yield Problem.of("unknown-type", link_id, type=kind)
            return
        yield from self.structure(item)
        for condition in item.enable_when:
            yield from self.condition(item, condition, check_order=True)
        if len(item.enable_when) > 1 and item.enable_behavior is None:
            yield Problem.of("enable-behavior-missing", link_id)
        if item.enable_behavior is not None and item.enable_behavior not in ("all", "any"):
            yield Problem.of("enable-behavior-invalid", link_id)
        if item.is_question:
            yield from self.question(item)

    def structure(self, item: Item) -> Iterator[Problem]:
        link_id, kind = item.link_id, item.type
        if kind == "group" and not item.items:
            yield Problem.of("group-without-items", link_id)
        if kind == "display" and item.items:
            yield Problem.of("display-with-items", link_id)
        if item.is_question and item.items:
            yield Problem.of("question-with-items", link_id)
        if kind in NOT_ANSWERABLE:
            properties = {
                "answerOption": bool(item.answer_options),
                "initial": bool(item.initial),
                "maxLength": item.max_length is not None,
                "calculatedExpression": item.calculated_expression is not None,
                "minValue/maxValue": item.min_value is not None or item.max_value is not None,
                "questionnaire-unit": item.unit is not None,
            }
            if kind == "display":
                properties |= {
                    "required": item.required,
                    "repeats": item.repeats,
                    "readOnly": item.read_only,
                }
            for name, present in properties.items():
                if present:
                    yield Problem.of("not-answerable-property", link_id, type=kind, property=name)
        if item.item_control is not None and kind not in _CONTROLS.get(item.item_control, ()):
            yield Problem.of("item-control-invalid", link_id, control=item.item_control, type=kind)

    def question(self, item: Item) -> Iterator[Problem]:
        link_id, kind = item.link_id, item.type
        kinds = answer_kinds(item)
        if item.answer_options and kind not in ("choice", "open-choice"):
            yield Problem.of("answer-option-not-choice", link_id)
        if kind == "choice" and not item.answer_options and '"answerValueSet"' not in item.extra:
            yield Problem.of("choice-without-options", link_id)
        for index, option in enumerate(item.answer_options):
            if option.value.kind not in _OPTION_KINDS:
                yield Problem.of("answer-option-type", link_id, kind=option.value.kind.value)
            if option.value in [o.value for o in item.answer_options[:index]]:
                yield Problem.of("answer-option-duplicate", link_id)
        if item.answer_options and item.initial:
            yield Problem.of("answer-option-with-initial", link_id)
        if not item.repeats and sum(o.initial_selected for o in item.answer_options) > 1:
            yield Problem.of("initial-selected-not-repeating", link_id)
        for value in item.initial:
            if value.kind not in kinds:
                yield Problem.of("initial-type", link_id, kind=value.kind.value, type=kind)
        if len(item.initial) > 1 and not item.repeats:
            yield Problem.of("initial-not-repeating", link_id)
        if item.max_length is not None:
            if kind not in ("string", "text"):
                yield Problem.of("max-length-not-text", link_id)
            if item.max_length < 1:
                yield Problem.of("max-length-invalid", link_id)
        if kind == "boolean" and item.repeats:
            yield Problem.of("repeats-on-boolean", link_id, severity="warning")
        yield from self.bounds(item)
        if item.unit is not None and kind not in ("decimal", "integer", "quantity"):
            yield Problem.of("unit-not-quantity", link_id)
        if item.hidden and item.required and not item.initial and not item.calculated_expression:
            yield Problem.of("hidden-required", link_id, severity="warning")
        if item.calculated_expression is not None:
            yield from self.calculated(item)

    def bounds(self, item: Item) -> Iterator[Problem]:
        allowed = _BOUND_KINDS.get(item.type, frozenset())
        for name, bound in (("minValue", item.min_value), ("maxValue", item.max_value)):
            if bound is not None and bound.kind not in allowed:
                yield Problem.of(
                    "min-max-type", item.link_id, bound=name, kind=bound.kind.value, type=item.type
                )
        low, high = item.min_value, item.max_value
        if low is not None and high is not None and compare(low, high) == 1:
            yield Problem.of("min-above-max", item.link_id)

    def calculated(self, item: Item) -> Iterator[Problem]:
        link_id = item.link_id
        if item.calculated_language != "text/fhirpath":
            yield Problem.of("calculated-language", link_id)
            return
        if item.type not in _CALCULATED_TYPES:
            yield Problem.of("calculated-type", link_id)
        if self.q.repeating_scope(link_id):
            yield Problem.of("calculated-in-repeat", link_id)
        error = fhirpath.check(item.calculated_expression or "")
        if error is not None:
            yield Problem.of("calculated-invalid", link_id, detail=error)

    def condition(
        self, item: Item | None, condition: EnableWhen, *, check_order: bool
    ) -> Iterator[Problem]:
        link_id = item.link_id if item is not None else None
        question_id = condition.question
        if condition.operator not in OPERATORS:
            yield Problem.of("enable-when-operator", link_id, operator=condition.operator)
            return
        question = self.q.item(question_id)
        if question is None:
            yield Problem.of("enable-when-unknown-question", link_id, question=question_id)
            return
        if not question.is_question:
            yield Problem.of("enable-when-not-question", link_id, question=question_id)
            return
        if item is not None and check_order:
            if self.q.position(question_id) >= self.q.position(item.link_id):
                yield Problem.of("enable-when-later-question", link_id, question=question_id)
            scope = self.q.repeating_scope(item.link_id)
            question_scope = self.q.repeating_scope(question_id)
            if scope[: len(question_scope)] != question_scope:
                yield Problem.of("enable-when-out-of-scope", link_id, question=question_id)
        answer = condition.answer
        if answer is None:
            yield Problem.of("enable-when-answer-missing", link_id)
            return
        if condition.operator == "exists":
            if answer.kind is not Kind.BOOLEAN:
                yield Problem.of("enable-when-exists-boolean", link_id)
            return
        kinds = answer_kinds(question)
        if question.type == "dateTime":
            kinds |= {Kind.DATE}
        if answer.kind not in kinds:
            yield Problem.of(
                "enable-when-answer-type",
                link_id,
                kind=answer.kind.value,
                question=question_id,
                type=question.type,
            )
        elif condition.operator not in ("=", "!=") and answer.kind not in _ORDERED:
            yield Problem.of(
                "enable-when-operator-type",
                link_id,
                operator=condition.operator,
                question=question_id,
                type=question.type,
            )

    def cycles(self) -> Iterator[Problem]:
        """Cycles through enableWhen and parent edges (an item waits for its parent's state)."""
        edges: dict[str, list[str]] = {}
        for item in self.q.walk():
            targets = [c.question for c in item.enable_when if self.q.item(c.question) is not None]
            parent = self.q.parent_of(item.link_id)
            edges[item.link_id] = targets + ([parent] if parent is not None else [])
        yield from (
            Problem.of("enable-when-cycle", cycle[0], cycle=" → ".join(cycle))
            for cycle in _find_cycles(edges)
        )

    def calculated_cycles(self) -> Iterator[Problem]:
        calculated = {
            item.link_id: item.calculated_expression
            for item in self.q.walk()
            if item.calculated_expression is not None
        }
        edges = {
            link_id: [t for t in _LINK_ID_IN_EXPRESSION.findall(text) if t in calculated]
            for link_id, text in calculated.items()
        }
        yield from (
            Problem.of("calculated-cycle", cycle[0], cycle=" → ".join(cycle))
            for cycle in _find_cycles(edges)
        )

    def outcome(
        self, outcome_id: str, action: str, behavior: str, menu: str | None
    ) -> Iterator[Problem]:
        if action not in OutcomeAction.ALL:
            yield Problem.of("outcome-invalid", None, outcome=outcome_id, detail=f"action {action}")
        if behavior not in ("all", "any"):
            yield Problem.of("outcome-invalid", None, outcome=outcome_id, detail="behavior")
        if action == OutcomeAction.RECOMMEND_MENU and not menu:
            yield Problem.of("outcome-invalid", None, outcome=outcome_id, detail="menu missing")


def _find_cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """One representative per cycle found by an iterative depth-first search."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    cycles: list[list[str]] = []
    for start in edges:
        if colour[start] != white:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        path = [start]
        colour[start] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                colour[node] = black
            elif colour.get(child, black) == grey:
                cycles.append([*path[path.index(child) :], child])
            elif colour.get(child, black) == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(edges[child])))
    return cycles
