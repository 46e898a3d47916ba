"""The branching engine (pure): a definition and the answers so far → what is enabled, missing,
invalid, computed, and which outcomes fire; and :func:`submit`, the server's authoritative check.

Answers are plain JSON, shaped by the questionnaire's repeating groups::

    {"smoker": true, "cigarettes": 10,                      # questions: one value or a list
     "meds": [{"med_name": "ロキソニン", "dose": 2}, {...}]}  # a repeating group: instances

A question outside any repeating group is answered at the top level, whatever plain groups
enclose it; inside a repeating group it is answered in that group's instances. Values are FHIR
JSON (``valueCoding`` as ``{"system": …, "code": …}``, ``valueQuantity`` as ``{"value": …,
"code": …}`` …); a bare string answers a choice with coded options by code. ``None`` and blank
strings (only whitespace, 全角スペース included) mean "no answer".

Every item instance has a **key**: its linkId, prefixed by the repeating-group instances that
enclose it — ``"smoker"``, ``"meds[1]/dose"``. Keys name items in every result.

R4 rules (standards.md §1.2): a disabled item disables its descendants; ``required`` is ignored
while disabled; a condition on a disabled question sees no answer; with several answers a
condition holds if any answer matches (no answer: only ``exists false`` holds); inside a repeating
group a condition reads the same instance, and a question outside it at its own level. An invalid
answer (wrong type, out of range, not an option …) counts as no answer; its error is reported
while its item is enabled. Items the patient cannot edit — ``hidden`` or ``readOnly`` with an
``initial`` value or ``initialSelected`` options — answer with those values; calculated items
answer with their computed value. Calculated expressions see a QuestionnaireResponse of the
enabled answers; enablement and calculations are repeated until nothing changes (at most one
round per calculated item, plus one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from . import fhirpath
from .definition import EnableWhen, Item, Outcome, OutcomeAction, Questionnaire, answer_kinds
from .errors import AnswerError
from .messages import expected
from .values import (
    JSON,
    Coding,
    InvalidValue,
    Kind,
    Quantity,
    TypedValue,
    compare,
    equal,
    is_blank,
    parse_value,
)

Answers = Mapping[str, JSON]
# Kinds tried in this order when an answer could be several (e.g. 3 for a decimal item).
_KIND_ORDER = (
    Kind.CODING,
    Kind.BOOLEAN,
    Kind.DECIMAL,
    Kind.INTEGER,
    Kind.DATE,
    Kind.DATETIME,
    Kind.TIME,
    Kind.QUANTITY,
    Kind.ATTACHMENT,
    Kind.REFERENCE,
    Kind.URI,
    Kind.STRING,
)


@dataclass(eq=False, slots=True)
class _Node:
    """One item instance. Repeating groups have one node, and one more per instance."""

    key: str
    item: Item
    parent: _Node | None
    indices: tuple[int, ...]  # instance numbers of the enclosing repeating groups
    raw: list[JSON] = field(default_factory=list)
    instance: bool = False  # a repeating group's instance (not the group itself)
    children: list[_Node] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the engine concluded from a definition and answers (all keys are item keys).

    ``enabled``: every enabled item instance (questions, groups, displays). ``answers``: the
    effective, well-typed answers of enabled questions (what a response would contain).
    ``missing_required``: enabled required items without an answer, in document order.
    ``errors``: invalid answers. ``computed``: calculated values. ``outcomes``: fired outcomes.
    ``instances``: the number of instances of each enabled repeating group.
    """

    enabled: frozenset[str]
    answers: Mapping[str, tuple[TypedValue, ...]]
    missing_required: tuple[str, ...]
    errors: tuple[AnswerError, ...]
    computed: Mapping[str, JSON]
    outcomes: tuple[Outcome, ...]
    instances: Mapping[str, int]
    disabled_with_answers: tuple[str, ...]
    _run: _Run | None = field(default=None, repr=False, compare=False)

    def is_enabled(self, key: str) -> bool:
        return key in self.enabled

    @property
    def blocks_online(self) -> bool:
        """A fired outcome forbids an online visit (emergency, in person only, no online 初診)."""
        return any(o.action in OutcomeAction.BLOCKING_ONLINE for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """:func:`submit`'s verdict: ``errors`` (nothing saved) or ``response`` + ``structured``.

    ``response`` is a FHIR R4 QuestionnaireResponse (dict); ``structured`` maps each answered
    item's key to its answers as JSON values, for search; ``dropped`` lists the keys whose answers
    were discarded because their item was disabled.
    """

    errors: tuple[AnswerError, ...]
    response: dict[str, JSON] | None
    structured: dict[str, list[JSON]] | None
    outcomes: tuple[Outcome, ...]
    dropped: tuple[str, ...]
    evaluation: Evaluation

    @property
    def ok(self) -> bool:
        return self.response is not None


def evaluate(
    questionnaire: Questionnaire, answers: Answers, *, previous: Evaluation | None = None
) -> Evaluation:
    """Enablement, missing required items, invalid answers, computed values and outcomes.

    With ``previous`` (an evaluation of the same definition, e.g. before the patient changed one
    answer) the work is incremental: answers that did not change are not parsed again, and the
    enablement of items that no changed answer can reach (through conditions and parents) is
    reused. The result is always equal to a full evaluation. Definitions with calculated items
    re-evaluate enablement fully (a calculation may read any answer).
    """
    base = previous._run if previous is not None else None
    return _Run(
        questionnaire, answers, base if base is not None and base.q is questionnaire else None
    ).evaluation()


def submit(
    questionnaire: Questionnaire,
    answers: Answers,
    *,
    complete: bool = True,
    authored: datetime | None = None,
) -> SubmitResult:
    """The server's authoritative check of submitted answers.

    Re-evaluates, drops answers to disabled items, validates the rest. With ``complete`` (the
    patient pressed "send"), enabled required items must be answered and the response's status is
    ``completed``; without it (a draft) they need not be and the status is ``in-progress``.
    ``authored`` must be timezone-aware.
    """
    run = _Run(questionnaire, answers)
    evaluation = run.evaluation()
    errors = list(evaluation.errors)
    if complete:
        errors += [
            AnswerError.of("required", key, run.node(key).item.link_id)
            for key in evaluation.missing_required
        ]
    if errors:
        return SubmitResult(
            tuple(errors),
            None,
            None,
            evaluation.outcomes,
            evaluation.disabled_with_answers,
            evaluation,
        )
    response: dict[str, JSON] = {"resourceType": "QuestionnaireResponse"}
    if questionnaire.canonical is not None:
        response["questionnaire"] = questionnaire.canonical
    response["status"] = "completed" if complete else "in-progress"
    if authored is not None:
        if authored.tzinfo is None:
            raise ValueError("authored must be timezone-aware")
        response["authored"] = authored.isoformat()
    items = run.response_items(evaluation.answers)
    if items:
        response["item"] = items
    structured = {
        key: [v.to_json() for v in values] for key, values in evaluation.answers.items() if values
    }
    return SubmitResult(
        (), response, structured, evaluation.outcomes, evaluation.disabled_with_answers, evaluation
    )


def prune(questionnaire: Questionnaire, answers: Answers) -> dict[str, JSON]:
    """``answers`` without the answers of disabled items and unknown linkIds (same shape)."""
    run = _Run(questionnaire, answers)
    evaluation = run.evaluation()
    return run.pruned(evaluation.enabled)


def answers_from_response(
    questionnaire: Questionnaire, response: Mapping[str, JSON]
) -> dict[str, JSON]:
    """The engine's answer shape of a QuestionnaireResponse (e.g. a saved draft to resume)."""
    out: dict[str, JSON] = {}

    def collect(items: JSON, scope: dict[str, JSON]) -> None:
        for entry in items if isinstance(items, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("linkId"), str):
                continue
            item = questionnaire.item(entry["linkId"])
            if item is None:
                continue
            if item.is_repeating_group:
                instance: dict[str, JSON] = {}
                collect(entry.get("item"), instance)
                scope.setdefault(item.link_id, []).append(instance)
            elif item.type == "group":
                collect(entry.get("item"), scope)
            else:
                answers = entry.get("answer")
                values = [
                    v
                    for answer in (answers if isinstance(answers, list) else [])
                    if isinstance(answer, dict)
                    for k, v in answer.items()
                    if k.startswith("value")
                ]
                single = len(values) == 1 and not item.repeats and not isinstance(values[0], list)
                if values:
                    scope[item.link_id] = values[0] if single else values

    collect(response.get("item"), out)
    return out


# --- one evaluation ------------------------------------------------------------------------------


class _Run:
    def __init__(
        self, questionnaire: Questionnaire, answers: Answers, previous: _Run | None = None
    ) -> None:
        self.q = questionnaire
        self.errors: list[AnswerError] = []
        self.nodes: list[_Node] = []  # document order, instance nodes included
        self.by_key: dict[str, _Node] = {}
        self.position: dict[str, int] = {}
        self.by_link_id: dict[str, list[_Node]] = {}
        self.roots = self._build(questionnaire.items, answers, "", None, ())
        self.values: dict[str, list[TypedValue]] = {}  # parsed answers of question nodes
        self.computed: dict[str, TypedValue] = {}
        self.enabled: dict[str, bool] = {}
        self.node_errors: dict[str, list[AnswerError]] = {}
        self.reusable: dict[str, bool] = {}
        changed: set[str] = set()
        for node in self.nodes:
            if node.item.type == "group" or node.instance:
                continue
            old = previous.by_key.get(node.key) if previous is not None else None
            if (
                previous is not None
                and old is not None
                and node.item.is_question
                and _same_json(old.raw, node.raw)
            ):
                self.values[node.key] = previous.values[node.key]
                if node.key in previous.node_errors:
                    self.node_errors[node.key] = previous.node_errors[node.key]
            else:  # displays are parsed every time: their error is not a node error
                self.values[node.key] = self._parse(node)
                if old is None or not _same_json(old.raw, node.raw):
                    changed.add(node.item.link_id)
        has_calculations = any(n.item.calculated_expression is not None for n in self.nodes)
        if previous is not None and not has_calculations:
            for key in previous.by_key.keys() ^ self.by_key.keys():
                changed.add((previous.by_key.get(key) or self.by_key[key]).item.link_id)
            stale = self.q.downstream(changed)
            self.reusable = {
                key: on
                for key, on in previous.enabled.items()
                if key in self.by_key and self.by_key[key].item.link_id not in stale
            }

    def node(self, key: str) -> _Node:
        return self.by_key[key]

    # -- building the instance tree ----------------------------------------------------------

    def _build(
        self,
        items: tuple[Item, ...],
        scope: Answers,
        prefix: str,
        parent: _Node | None,
        indices: tuple[int, ...],
    ) -> list[_Node]:
        if not isinstance(scope, Mapping):
            return []
        allowed = set(self._scope_link_ids(items))
        for link_id in scope:
            if link_id not in allowed and _present(scope[link_id]):
                self.errors.append(
                    AnswerError.of("unknown-item", prefix + str(link_id), str(link_id))
                )
        return self._build_items(items, scope, prefix, parent, indices)

    def _scope_link_ids(self, items: tuple[Item, ...]) -> Iterator[str]:
        for item in items:
            yield item.link_id
            if item.type == "group" and not item.repeats:
                yield from self._scope_link_ids(item.items)

    def _build_items(
        self,
        items: tuple[Item, ...],
        scope: Answers,
        prefix: str,
        parent: _Node | None,
        indices: tuple[int, ...],
    ) -> list[_Node]:
        out: list[_Node] = []
        for item in items:
            key = prefix + item.link_id
            if key in self.by_key:
                continue  # a duplicate linkId: the validator reports it, the first one wins
            node = _Node(key, item, parent, indices)
            self._add(node)
            out.append(node)
            raw = scope.get(item.link_id)
            if item.is_repeating_group:
                if raw is not None and not (
                    isinstance(raw, list) and all(isinstance(i, Mapping) for i in raw)
                ):
                    self.errors.append(AnswerError.of("invalid-group-instances", key, item.link_id))
                    raw = []
                for number, instance_answers in enumerate(raw or []):
                    instance = _Node(
                        f"{key}[{number}]", item, node, (*indices, number), instance=True
                    )
                    self._add(instance)
                    node.children.append(instance)
                    instance.children = self._build(
                        item.items, instance_answers, f"{instance.key}/", instance, instance.indices
                    )
            elif item.type == "group":
                if _present(raw):
                    self.errors.append(AnswerError.of("not-answerable", key, item.link_id))
                node.children = self._build_items(item.items, scope, prefix, node, indices)
            else:
                given = raw if isinstance(raw, list) else [raw]
                # Copies of mutable values: a later evaluation compares against them.
                node.raw = [
                    copy.deepcopy(v) if isinstance(v, dict | list) else v
                    for v in given
                    if _present(v)
                ]
                if item.items:  # children of a question (unsupported): evaluated, never answered
                    node.children = self._build_items(item.items, {}, prefix, node, indices)
        return out

    def _add(self, node: _Node) -> None:
        self.nodes.append(node)
        self.by_key[node.key] = node
        self.position[node.key] = len(self.position)
        if not node.instance:
            self.by_link_id.setdefault(node.item.link_id, []).append(node)

    # -- answers --------------------------------------------------------------------------

    def _parse(self, node: _Node) -> list[TypedValue]:
        """The valid answers of a question; the invalid ones become errors of the node.

        An invalid answer counts as no answer for conditions and calculations; its error is
        reported only while the item is enabled (a disabled item's answers are dropped anyway).
        """
        item = node.item
        if item.type == "display":
            if node.raw:
                self.errors.append(AnswerError.of("not-answerable", node.key, item.link_id))
            return []
        if not _editable(item):
            return _fixed_values(item) or []
        errors = self.node_errors.setdefault(node.key, [])
        if len(node.raw) > 1 and not item.repeats:
            errors.append(AnswerError.of("not-repeating", node.key, item.link_id))
        out: list[TypedValue] = []
        allowed = answer_kinds(item)
        kinds = [k for k in _KIND_ORDER if k in allowed]
        for raw in node.raw:
            value = _parse_one(item, kinds, raw)
            if isinstance(value, str):
                errors.append(AnswerError.of(value, node.key, item.link_id, **expected(item.type)))
                continue
            code, params = _violation(item, value)
            if code is not None:
                errors.append(AnswerError.of(code, node.key, item.link_id, **params))
                continue
            out.append(value)
        return out

    def _visible(self, node: _Node) -> list[TypedValue]:
        """The answers a condition sees: none while the node is disabled."""
        if not self._is_enabled(node):
            return []
        if node.item.calculated_expression is not None and _fixed_values(node.item) is None:
            value = self.computed.get(node.key)
            return [value] if value is not None else []
        return self.values.get(node.key, [])

    # -- enablement ----------------------------------------------------------------------

    def _is_enabled(self, node: _Node) -> bool:
        known = self.enabled.get(node.key)
        if known is not None:
            return known
        self.enabled[node.key] = False  # a cycle back to this node sees it disabled
        result = (node.parent is None or self._is_enabled(node.parent)) and (
            node.instance or self._conditions_hold(node)
        )
        self.enabled[node.key] = result
        return result

    def _conditions_hold(self, node: _Node) -> bool:
        conditions = node.item.enable_when
        if not conditions:
            return True
        results = (self._holds(c, self._sources(node, c.question)) for c in conditions)
        return any(results) if node.item.enable_behavior == "any" else all(results)

    def _sources(self, node: _Node | None, link_id: str) -> list[_Node]:
        """The question nodes a condition of ``node`` reads: the same instance where possible."""
        candidates = self.by_link_id.get(link_id, [])
        if node is None or not candidates:
            return candidates
        question_scope = self.q.repeating_scope(link_id)
        own_scope = self.q.repeating_scope(node.item.link_id)
        shared = 0
        while (
            shared < min(len(question_scope), len(own_scope))
            and question_scope[shared] == own_scope[shared]
        ):
            shared += 1
        return [c for c in candidates if c.indices[:shared] == node.indices[:shared]]

    def _holds(self, condition: EnableWhen, sources: list[_Node]) -> bool:
        answers = [a for source in sources for a in self._visible(source)]
        return condition_holds(condition, answers)

    # -- the whole evaluation ----------------------------------------------------------------

    def evaluation(self) -> Evaluation:
        calculated = [
            n for n in self.nodes if n.item.calculated_expression is not None and not n.instance
        ]
        for _ in range(len(calculated) + 1):
            self.enabled = {}
            for node in self.nodes:
                self._is_enabled(node)
            computed = self._calculate(calculated)
            if computed == self.computed:
                break
            self.computed = computed
        self.enabled = dict(self.reusable)
        for node in self.nodes:
            self._is_enabled(node)
        return self._result()

    def _calculate(self, calculated: list[_Node]) -> dict[str, TypedValue]:
        out: dict[str, TypedValue] = {}
        if not calculated:
            return out
        answers = self._effective_answers()
        response: dict[str, JSON] = {
            "resourceType": "QuestionnaireResponse",
            "status": "in-progress",
        }
        response["item"] = self.response_items(answers)
        for node in calculated:
            if not self.enabled.get(node.key) or _fixed_values(node.item) is not None:
                continue
            expression = node.item.calculated_expression
            if expression is None:
                continue
            try:
                result = fhirpath.evaluate(expression, response)
            except Exception:  # noqa: S112 - a runtime error in an expression means "no value"
                continue
            value = _computed_value(node.item, result)
            if value is not None:
                out[node.key] = value
        return out

    def _effective_answers(self) -> dict[str, tuple[TypedValue, ...]]:
        out: dict[str, tuple[TypedValue, ...]] = {}
        for node in self.nodes:
            if node.item.is_question and not node.instance and self.enabled.get(node.key):
                values = self._visible(node)
                if values:
                    out[node.key] = tuple(values)
        return out

    def _result(self) -> Evaluation:
        answers = self._effective_answers()
        for key, node_errors in self.node_errors.items():
            if self.enabled[key]:
                self.errors += node_errors
        missing = [
            n.key
            for n in self.nodes
            if n.item.required
            and n.item.type != "display"
            and not n.instance
            and self.enabled[n.key]
            and not self._answered(n, answers)
        ]
        outcomes = tuple(o for o in self.q.outcomes if self._fires(o))
        instances = {
            n.key: len(n.children)
            for n in self.nodes
            if n.item.is_repeating_group and not n.instance and self.enabled[n.key]
        }
        dropped = tuple(
            n.key for n in self.nodes if not self.enabled[n.key] and n.item.is_question and n.raw
        )
        errors = sorted(self.errors, key=lambda e: self._order(e.key))
        return Evaluation(
            enabled=frozenset(
                k for k, on in self.enabled.items() if on and not self.by_key[k].instance
            ),
            answers=answers,
            missing_required=tuple(missing),
            errors=tuple(errors),
            computed={k: v.to_json() for k, v in self.computed.items() if self.enabled.get(k)},
            outcomes=outcomes,
            instances=instances,
            disabled_with_answers=dropped,
            _run=self,
        )

    def _order(self, key: str) -> int:
        return self.position.get(key, len(self.position))

    def _answered(self, node: _Node, answers: Mapping[str, tuple[TypedValue, ...]]) -> bool:
        if node.item.is_question:
            return node.key in answers or bool(self.node_errors.get(node.key))
        return any(
            self._answered(child, answers)
            for child in node.children
            if self.enabled.get(child.key) and child.item.type != "display"
        )

    def _fires(self, outcome: Outcome) -> bool:
        if not outcome.conditions:
            return False
        results = (self._holds(c, self._sources(None, c.question)) for c in outcome.conditions)
        return all(results) if outcome.behavior == "all" else any(results)

    # -- writing a response --------------------------------------------------------------

    def response_items(
        self, answers: Mapping[str, tuple[TypedValue, ...]]
    ) -> list[dict[str, JSON]]:
        return self._items_of(self.roots, answers)

    def _items_of(
        self, nodes: list[_Node], answers: Mapping[str, tuple[TypedValue, ...]]
    ) -> list[dict[str, JSON]]:
        out: list[dict[str, JSON]] = []
        for node in nodes:
            item = node.item
            if item.is_repeating_group:
                for instance in node.children:
                    children = self._items_of(instance.children, answers)
                    if children:
                        out.append(_response_item(item, {"item": children}))
            elif item.type == "group":
                children = self._items_of(node.children, answers)
                if children:
                    out.append(_response_item(item, {"item": children}))
            elif node.key in answers:
                values = answers[node.key]
                out.append(_response_item(item, {"answer": [v.to_fhir("value") for v in values]}))
        return out

    def pruned(self, enabled: frozenset[str]) -> dict[str, JSON]:
        return self._pruned_scope(self.roots, enabled)

    def _pruned_scope(self, nodes: list[_Node], enabled: frozenset[str]) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for node in nodes:
            if node.key not in enabled:
                continue
            item = node.item
            if item.is_repeating_group and node.children:
                out[item.link_id] = [self._pruned_scope(i.children, enabled) for i in node.children]
            elif item.type == "group":
                out.update(self._pruned_scope(node.children, enabled))
            elif node.raw and item.is_question:
                single = len(node.raw) == 1 and not isinstance(node.raw[0], list)
                out[item.link_id] = node.raw[0] if single else list(node.raw)
        return out


# --- pieces --------------------------------------------------------------------------------------


def condition_holds(condition: EnableWhen, answers: list[TypedValue]) -> bool:
    """One enableWhen over the answers it sees (any answer matching is enough)."""
    expected = condition.answer
    if expected is None:
        return False
    if condition.operator == "exists":
        return bool(answers) == (expected.value is True)
    return any(_matches(condition.operator, answer, expected) for answer in answers)


def _matches(operator: str, answer: TypedValue, expected: TypedValue) -> bool:
    if operator == "=":
        return equal(answer, expected)
    if operator == "!=":
        return not equal(answer, expected)
    order = compare(answer, expected)
    if order is None:
        return False
    return {">": order > 0, "<": order < 0, ">=": order >= 0, "<=": order <= 0}.get(operator, False)


def _same_json(a: JSON, b: JSON) -> bool:
    """Equal JSON values of the same types (``1``, ``1.0`` and ``True`` are different answers)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    return bool(a == b)


def _present(raw: JSON) -> bool:
    if raw is None or (isinstance(raw, str) and is_blank(raw)):
        return False
    if isinstance(raw, list):
        return any(_present(v) for v in raw)
    return True


def _editable(item: Item) -> bool:
    """Whether the patient's answers count (not fixed by the definition, not calculated)."""
    return _fixed_values(item) is None and item.calculated_expression is None


def _fixed_values(item: Item) -> list[TypedValue] | None:
    """Values of an item the patient cannot edit (hidden / readOnly with initial values)."""
    if not (item.hidden or item.read_only):
        return None
    values = list(item.initial) + [o.value for o in item.answer_options if o.initial_selected]
    return values or None


def _parse_one(item: Item, kinds: list[Kind], raw: JSON) -> TypedValue | str:
    """The typed answer, or the error code of the first kind tried."""
    if isinstance(raw, str) and item.type in ("choice", "open-choice") and item.has_coded_options:
        for option in item.answer_options:
            value = option.value.value
            if isinstance(value, Coding) and value.code == raw:
                return option.value
    unit = item.unit if item.type == "quantity" else None
    if unit is not None and isinstance(raw, Mapping) and raw.get("code") is raw.get("unit") is None:
        raw = {**raw, **_unit_fields(unit)}
    first_error: str | None = None
    for kind in kinds:
        try:
            return parse_value(kind, raw)
        except InvalidValue as error:
            first_error = first_error or error.code
    return first_error or "invalid-type"


def _unit_fields(unit: Coding) -> dict[str, str]:
    out = {"unit": unit.display or unit.code, "code": unit.code}
    if unit.system is not None:
        out["system"] = unit.system
    return out


def _violation(item: Item, value: TypedValue) -> tuple[str | None, dict[str, object]]:
    if item.type in ("choice", "open-choice") and item.answer_options:
        free_text = item.type == "open-choice" and value.kind is Kind.STRING
        if not free_text and not any(equal(value, o.value) for o in item.answer_options):
            return "not-an-option", {}
    limit = item.max_length if item.type in ("string", "text") else None
    if limit is not None and isinstance(value.value, str) and len(value.value) > limit:
        return "too-long", {"limit": limit}
    unit = item.unit if item.type == "quantity" else None
    if (
        unit is not None
        and isinstance(value.value, Quantity)
        and value.value.unit_key() != unit.code
    ):
        return "wrong-unit", {"unit": unit.display or unit.code}
    for bound, code, bad in ((item.min_value, "below-min", -1), (item.max_value, "above-max", 1)):
        if bound is not None and _bound_compare(value, bound) == bad:
            return code, {"limit": _bound_text(bound)}
    return None, {}


def _bound_compare(value: TypedValue, bound: TypedValue) -> int | None:
    if isinstance(value.value, Quantity) and bound.kind in (Kind.DECIMAL, Kind.INTEGER):
        return compare(TypedValue(Kind.DECIMAL, value.value.value), bound)
    return compare(value, bound)


def _bound_text(bound: TypedValue) -> str:
    if isinstance(bound.value, Quantity):
        return f"{bound.value.value} {bound.value.unit or bound.value.code or ''}".strip()
    return str(bound.value)


def _computed_value(item: Item, result: list[JSON]) -> TypedValue | None:
    if len(result) != 1:
        return None
    value = result[0]
    if item.type == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
        return TypedValue(Kind.DECIMAL, float(value))
    if item.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer():
            return TypedValue(Kind.INTEGER, int(value))
        return None
    if item.type in ("string", "text") and isinstance(value, str) and value:
        return TypedValue(Kind.STRING, value)
    if item.type == "boolean" and isinstance(value, bool):
        return TypedValue(Kind.BOOLEAN, value)
    return None


def _response_item(item: Item, content: dict[str, JSON]) -> dict[str, JSON]:
    out: dict[str, JSON] = {"linkId": item.link_id}
    if item.text:
        out["text"] = item.text
    out.update(content)
    return out
