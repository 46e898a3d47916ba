"""Upload validation: each rule, with the linkId it names and text in both languages."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from interview_forms import validate
from interview_forms.definition import (
    CALCULATED,
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    MAX_VALUE,
    MIN_VALUE,
    OUTCOME,
)
from interview_forms.messages import MESSAGES

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def questionnaire(items: list[dict[str, Any]], **root: Any) -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "url": "https://tsunagu.dev/fhir/Questionnaire/test",
        "version": "1",
        "status": "draft",
        **root,
        "item": items,
    }


def found(items: list[dict[str, Any]], **root: Any) -> set[tuple[str | None, str]]:
    return {(p.link_id, p.code) for p in validate(questionnaire(items, **root)).problems}


def boolean(link_id: str, **extra: Any) -> dict[str, Any]:
    return {"linkId": link_id, "type": "boolean", "text": link_id, **extra}


def when(question: str, operator: str = "=", **answer: Any) -> dict[str, Any]:
    return {"question": question, "operator": operator, **(answer or {"answerBoolean": True})}


def calculated(expression: str) -> list[dict[str, Any]]:
    value = {"language": "text/fhirpath", "expression": expression}
    return [{"url": CALCULATED, "valueExpression": value}]


CASES: list[tuple[str, list[dict[str, Any]], tuple[str | None, str]]] = [
    ("duplicate linkId", [boolean("a"), boolean("a")], ("a", "duplicate-link-id")),
    (
        "unknown question",
        [boolean("a", enableWhen=[when("zz")])],
        ("a", "enable-when-unknown-question"),
    ),
    (
        "later question",
        [boolean("a", enableWhen=[when("b")]), boolean("b")],
        ("a", "enable-when-later-question"),
    ),
    (
        "group as question",
        [
            {"linkId": "g", "type": "group", "item": [boolean("x")]},
            boolean("a", enableWhen=[when("g")]),
        ],
        ("a", "enable-when-not-question"),
    ),
    (
        "ordering on a boolean",
        [boolean("a"), boolean("b", enableWhen=[when("a", ">")])],
        ("b", "enable-when-operator-type"),
    ),
    (
        "string answer for an integer question",
        [
            {"linkId": "n", "type": "integer"},
            boolean("b", enableWhen=[when("n", answerString="1")]),
        ],
        ("b", "enable-when-answer-type"),
    ),
    (
        "exists with an integer",
        [
            {"linkId": "n", "type": "integer"},
            boolean("b", enableWhen=[when("n", "exists", answerInteger=1)]),
        ],
        ("b", "enable-when-exists-boolean"),
    ),
    (
        "unknown operator",
        [boolean("a"), boolean("b", enableWhen=[when("a", "~")])],
        ("b", "enable-when-operator"),
    ),
    (
        "several conditions without enableBehavior",
        [boolean("a"), boolean("b"), boolean("c", enableWhen=[when("a"), when("b")])],
        ("c", "enable-behavior-missing"),
    ),
    (
        "options on a string",
        [{"linkId": "s", "type": "string", "answerOption": [{"valueString": "x"}]}],
        ("s", "answer-option-not-choice"),
    ),
    (
        "a cycle",
        [boolean("a", enableWhen=[when("b")]), boolean("b", enableWhen=[when("a")])],
        ("a", "enable-when-cycle"),
    ),
    (
        "a group waiting on its own child",
        [{"linkId": "g", "type": "group", "enableWhen": [when("x")], "item": [boolean("x")]}],
        ("g", "enable-when-cycle"),
    ),
    (
        "initial on a group",
        [
            {
                "linkId": "g",
                "type": "group",
                "initial": [{"valueBoolean": True}],
                "item": [boolean("x")],
            }
        ],
        ("g", "not-answerable-property"),
    ),
    (
        "required display",
        [{"linkId": "d", "type": "display", "text": "x", "required": True}],
        ("d", "not-answerable-property"),
    ),
    ("empty group", [{"linkId": "g", "type": "group"}], ("g", "group-without-items")),
    (
        "display with items",
        [{"linkId": "d", "type": "display", "item": [boolean("x")]}],
        ("d", "display-with-items"),
    ),
    (
        "initial of the wrong type",
        [{"linkId": "n", "type": "integer", "initial": [{"valueString": "1"}]}],
        ("n", "initial-type"),
    ),
    (
        "two initial values, not repeating",
        [{"linkId": "n", "type": "integer", "initial": [{"valueInteger": 1}, {"valueInteger": 2}]}],
        ("n", "initial-not-repeating"),
    ),
    (
        "maxLength on an integer",
        [{"linkId": "n", "type": "integer", "maxLength": 3}],
        ("n", "max-length-not-text"),
    ),
    ("unknown type", [{"linkId": "u", "type": "signature"}], ("u", "unknown-type")),
    (
        "calculated expression that does not parse",
        [{"linkId": "c", "type": "decimal", "extension": calculated("1 + + (")}],
        ("c", "calculated-invalid"),
    ),
    (
        "calculated expression with an unknown function",
        [{"linkId": "c", "type": "decimal", "extension": calculated("%resource.item.nope()")}],
        ("c", "calculated-invalid"),
    ),
    (
        "calculated expressions in a cycle",
        [
            {
                "linkId": "x",
                "type": "decimal",
                "extension": calculated("%resource.item.where(linkId='y').answer.value"),
            },
            {
                "linkId": "y",
                "type": "decimal",
                "extension": calculated("%resource.item.where(linkId='x').answer.value"),
            },
        ],
        ("x", "calculated-cycle"),
    ),
    (
        "a condition on another repeating group",
        [
            {"linkId": "r1", "type": "group", "repeats": True, "item": [boolean("a")]},
            {
                "linkId": "r2",
                "type": "group",
                "repeats": True,
                "item": [boolean("b", enableWhen=[when("a")])],
            },
        ],
        ("b", "enable-when-out-of-scope"),
    ),
    (
        "min above max",
        [
            {
                "linkId": "n",
                "type": "integer",
                "extension": [
                    {"url": MIN_VALUE, "valueInteger": 5},
                    {"url": MAX_VALUE, "valueInteger": 1},
                ],
            }
        ],
        ("n", "min-above-max"),
    ),
    (
        "slider on a string",
        [
            {
                "linkId": "s",
                "type": "string",
                "extension": [
                    {
                        "url": ITEM_CONTROL,
                        "valueCodeableConcept": {
                            "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "slider"}]
                        },
                    }
                ],
            }
        ],
        ("s", "item-control-invalid"),
    ),
    (
        "choice without options",
        [{"linkId": "c", "type": "choice"}],
        ("c", "choice-without-options"),
    ),
    (
        "options and initial",
        [
            {
                "linkId": "c",
                "type": "choice",
                "answerOption": [{"valueString": "a"}],
                "initial": [{"valueString": "a"}],
            }
        ],
        ("c", "answer-option-with-initial"),
    ),
    ("boolean that repeats", [boolean("a", repeats=True)], ("a", "repeats-on-boolean")),
]


@pytest.mark.parametrize(
    ("items", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(items: list[dict[str, Any]], expected: tuple[str | None, str]) -> None:
    assert expected in found(items)


def test_a_sound_definition_has_no_problem() -> None:
    items = [
        boolean("a"),
        {"linkId": "g", "type": "group", "enableWhen": [when("a")], "item": [boolean("b")]},
        {"linkId": "c", "type": "string", "maxLength": 20, "enableWhen": [when("b", "exists")]},
    ]
    result = validate(questionnaire(items))
    assert result.ok
    assert result.problems == ()


def test_outcome_with_an_unknown_action_and_question() -> None:
    outcome = {
        "url": OUTCOME,
        "extension": [
            {"url": "id", "valueId": "x"},
            {"url": "action", "valueCode": "teleport"},
            {
                "url": "condition",
                "extension": [
                    {"url": "question", "valueString": "nope"},
                    {"url": "operator", "valueCode": "="},
                    {"url": "answer", "valueBoolean": True},
                ],
            },
        ],
    }
    problems = validate(questionnaire([boolean("a")], extension=[outcome])).problems
    details = [p.message_en for p in problems if p.code == "outcome-invalid"]
    assert any("teleport" in d for d in details)
    assert any("nope" in d for d in details)


def test_structure_checked_by_the_fhir_r4_models() -> None:
    result = validate(questionnaire([boolean("a", colour="red")]))
    assert not result.ok
    assert any(
        p.code == "fhir-invalid" and "item.0.colour" in p.message_en for p in result.problems
    )


def test_missing_status_is_a_fhir_problem() -> None:
    data = questionnaire([boolean("a")])
    del data["status"]
    assert any(p.code == "fhir-invalid" for p in validate(data).problems)


def test_unreadable_text_and_not_a_questionnaire() -> None:
    assert [p.code for p in validate("item: [unclosed").problems] == ["unreadable"]
    assert [p.code for p in validate({"resourceType": "Patient"}).problems] == [
        "not-a-questionnaire"
    ]


def test_yaml_authoring_keeps_dates_as_text() -> None:
    text = """
resourceType: Questionnaire
status: draft
item:
  - {linkId: d, type: date}
  - linkId: e
    type: boolean
    enableWhen: [{question: d, operator: ">", answerDate: 2024-04-01}]
"""
    result = validate(text)
    assert result.ok, result.problems
    assert result.questionnaire is not None
    condition = result.questionnaire.items[1].enable_when[0]
    assert condition.answer is not None
    assert condition.answer.value == "2024-04-01"


def test_malformed_values_are_located() -> None:
    result = validate(
        questionnaire([{"linkId": "d", "type": "date", "initial": [{"valueDate": "2024-13-01"}]}])
    )
    assert ("d", "invalid-element") in {(p.link_id, p.code) for p in result.problems}
    assert result.questionnaire is None


def test_every_message_has_both_languages() -> None:
    for code, (ja, en) in MESSAGES.items():
        assert JAPANESE.search(ja), code
        assert en, code
        assert not JAPANESE.search(en), code


def test_problems_are_json_friendly_and_bilingual() -> None:
    problems = validate(questionnaire([boolean("a"), boolean("a")])).problems
    for problem in problems:
        json.dumps([problem.code, problem.link_id, problem.message_ja, problem.message_en])
        assert "a" in problem.message_ja
        assert "a" in problem.message_en
