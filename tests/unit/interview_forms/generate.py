"""Random questionnaires and answers, from any ``random.Random`` (Hypothesis's or a seeded one).

Definitions are often invalid on purpose (conditions on later or out-of-scope items, operators
that do not fit, several conditions without enableBehavior): the engine must never crash on
them. Answers mix plausible values with junk.
"""

from __future__ import annotations

import random
from typing import Any

from interview_forms.definition import CALCULATED, HIDDEN, MAX_VALUE, MIN_VALUE, OUTCOME, UNIT

SYSTEM = "https://tsunagu.dev/fhir/CodeSystem/test"
UCUM = "http://unitsofmeasure.org"
TYPES = [
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
]
OPERATORS = ["exists", "=", "!=", ">", "<", ">=", "<="]
TEXT = ["", " ", "\u3000", "a", "b", "m", "太郎", "山田\u3000花子", "Zz", "\t", "x" * 12]
DATES = ["2026-04-01", "2025-12-31", "2026", "2026-02", "2026-02-30", "0000-01-01", "2024-02-29"]
DATETIMES = [
    "2026-04-01T10:00:00+09:00",
    "2026-04-01T01:00:00Z",
    "2026-04-01",
    "2026-04-01T10:00:00",
    "2026-04-01T10:00:00.25-05:00",
]
TIMES = ["08:00:00", "12:30:00", "23:59:59.5", "8:00", "24:00:00"]
JUNK: list[Any] = [
    None,
    "",
    [],
    {},
    [1, "a"],
    {"code": " bad"},
    1.5,
    True,
    "text",
    -3,
    {"value": "x"},
]


class Generator:
    def __init__(self, rng: random.Random, *, integer_calculations: bool = False) -> None:
        self.rng = rng
        self.count = 0
        self.questions: list[dict[str, Any]] = []
        self.integer_calculations = integer_calculations

    # -- definitions ---------------------------------------------------------------------

    def questionnaire(self) -> dict[str, Any]:
        items = self.items(0)
        out: dict[str, Any] = {
            "resourceType": "Questionnaire",
            "url": "https://tsunagu.dev/fhir/Questionnaire/generated",
            "version": "1",
            "status": "draft",
            "item": items,
        }
        outcomes = [self.outcome(n) for n in range(self.rng.randint(0, 2)) if self.questions]
        if outcomes:
            out["extension"] = outcomes
        return out

    def items(self, depth: int) -> list[dict[str, Any]]:
        return [self.item(depth) for _ in range(self.rng.randint(1, 4 if depth else 6))]

    def item(self, depth: int) -> dict[str, Any]:
        rng = self.rng
        kinds = TYPES if depth < 3 else TYPES[1:]
        kind = rng.choice(kinds)
        link_id = f"q{self.count}"
        self.count += 1
        item: dict[str, Any] = {"linkId": link_id, "type": kind, "text": link_id}
        if self.questions and rng.random() < 0.5:
            conditions = [self.condition() for _ in range(rng.choice([1, 1, 2, 3]))]
            item["enableWhen"] = conditions
            if len(conditions) > 1 and rng.random() < 0.9:
                item["enableBehavior"] = rng.choice(["all", "any"])
        if kind == "group":
            item["item"] = self.items(depth + 1)
            if rng.random() < 0.35:
                item["repeats"] = True
            if rng.random() < 0.2:
                item["required"] = True
            return item
        if kind == "display":
            return item
        if rng.random() < 0.3:
            item["required"] = True
        if kind != "boolean" and rng.random() < 0.2:
            item["repeats"] = True
        self.decorate(item)
        self.questions.append(item)
        return item

    def decorate(self, item: dict[str, Any]) -> None:
        rng, kind = self.rng, item["type"]
        extensions: list[dict[str, Any]] = []
        if kind in ("choice", "open-choice"):
            if kind == "choice" and rng.random() < 0.3:
                item["answerOption"] = [{"valueInteger": n} for n in range(4)]
            else:
                options = [{"valueCoding": {"system": SYSTEM, "code": c}} for c in "abc"]
                if rng.random() < 0.3:
                    options[0]["initialSelected"] = True
                item["answerOption"] = options
        if kind in ("string", "text") and rng.random() < 0.3:
            item["maxLength"] = rng.randint(1, 8)
        if kind in ("integer", "decimal") and rng.random() < 0.3:
            extensions.append({"url": MIN_VALUE, "valueInteger": 0})
            extensions.append({"url": MAX_VALUE, "valueInteger": 100})
        if kind == "quantity" and rng.random() < 0.6:
            extensions.append(
                {"url": UNIT, "valueCoding": {"system": UCUM, "code": "kg", "display": "kg"}}
            )
        if kind in ("string", "integer", "boolean") and rng.random() < 0.1:
            extensions.append({"url": HIDDEN, "valueBoolean": True})
            item["initial"] = [{"valueString": "v1"} if kind == "string" else {"valueInteger": 3}]
            if kind == "boolean":
                item["initial"] = [{"valueBoolean": True}]
        numeric = [q["linkId"] for q in self.questions if q["type"] == "integer"]
        if kind in ("integer", "decimal") and numeric and rng.random() < 0.5:
            a, b = rng.choice(numeric), rng.choice(numeric)
            op = rng.choice(["+", "-", "*"]) if self.integer_calculations else rng.choice("+-*/")
            path = "%resource.repeat(item).where(linkId='{}').answer.value"
            expression = f"{path.format(a)} {op} {path.format(b)}"
            value = {"language": "text/fhirpath", "expression": expression}
            extensions.append({"url": CALCULATED, "valueExpression": value})
            item["readOnly"] = True
        if extensions:
            item["extension"] = extensions

    def condition(self) -> dict[str, Any]:
        rng = self.rng
        target = rng.choice(self.questions)
        operator = rng.choice(OPERATORS)
        if operator == "exists":
            return {
                "question": target["linkId"],
                "operator": "exists",
                "answerBoolean": rng.random() < 0.5,
            }
        key, value = self.typed_answer(target)
        return {"question": target["linkId"], "operator": operator, key: value}

    def typed_answer(self, target: dict[str, Any]) -> tuple[str, Any]:
        rng, kind = self.rng, target["type"]
        options = target.get("answerOption", [])
        if options and "valueInteger" in options[0]:
            return "answerInteger", rng.randint(0, 4)
        table: dict[str, tuple[str, Any]] = {
            "boolean": ("answerBoolean", rng.random() < 0.5),
            "decimal": ("answerDecimal", rng.choice([0, 1.5, 37.5, 50, 99.9])),
            "integer": ("answerInteger", rng.randint(-1, 60)),
            "date": ("answerDate", rng.choice(DATES[:4])),
            "dateTime": ("answerDateTime", rng.choice(DATETIMES[:3])),
            "time": ("answerTime", rng.choice(TIMES[:3])),
            "string": ("answerString", rng.choice(["a", "m", "太郎"])),
            "text": ("answerString", rng.choice(["a", "m", "太郎"])),
            "choice": ("answerCoding", {"system": SYSTEM, "code": rng.choice("abc")}),
            "open-choice": rng.choice(
                [
                    ("answerCoding", {"system": SYSTEM, "code": rng.choice("ab")}),
                    ("answerString", "a"),
                ]
            ),
            "quantity": (
                "answerQuantity",
                {"value": rng.choice([1, 60, 70.5]), "system": UCUM, "code": "kg"},
            ),
            "attachment": ("answerBoolean", True),
        }
        return table[kind]

    def outcome(self, number: int) -> dict[str, Any]:
        rng = self.rng
        parts: list[dict[str, Any]] = [
            {"url": "id", "valueId": f"o{number}"},
            {
                "url": "action",
                "valueCode": rng.choice(["call-ambulance", "notice", "visit-in-person"]),
            },
        ]
        for _ in range(rng.randint(1, 2)):
            condition = self.condition()
            answer = {
                k.replace("answer", "value", 1): v
                for k, v in condition.items()
                if k.startswith("answer")
            }
            parts.append(
                {
                    "url": "condition",
                    "extension": [
                        {"url": "question", "valueString": condition["question"]},
                        {"url": "operator", "valueCode": condition["operator"]},
                        {"url": "answer", **answer},
                    ],
                }
            )
        parts.append({"url": "behavior", "valueCode": rng.choice(["all", "any"])})
        parts.append({"url": "message-ja", "valueString": "注意"})
        parts.append({"url": "message-en", "valueString": "Note"})
        return {"url": OUTCOME, "extension": parts}

    # -- answers -------------------------------------------------------------------------

    def answers(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.fill(items, out)
        if self.rng.random() < 0.05:
            out["nope"] = 1
        return out

    def fill(self, items: list[dict[str, Any]], scope: dict[str, Any]) -> None:
        rng = self.rng
        for item in items:
            kind = item["type"]
            if kind == "group" and item.get("repeats"):
                if rng.random() < 0.8:
                    scope[item["linkId"]] = [
                        self.answers(item["item"]) for _ in range(rng.randint(0, 3))
                    ]
            elif kind == "group":
                self.fill(item["item"], scope)
            elif kind == "display":
                if rng.random() < 0.02:
                    scope[item["linkId"]] = "x"
            elif rng.random() < 0.65:
                values = [self.value(item) for _ in range(rng.choice([1, 1, 1, 2]))]
                scope[item["linkId"]] = (
                    values if len(values) > 1 or rng.random() < 0.3 else values[0]
                )

    def value(self, item: dict[str, Any]) -> Any:
        rng, kind = self.rng, item["type"]
        if rng.random() < 0.1:
            return rng.choice(JUNK)
        options = item.get("answerOption", [])
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "decimal":
            return rng.choice([0, 1, 2.5, 37.2, 38.4, 99.9, 150, -4])
        if kind == "integer":
            return rng.choice([0, 1, 2, 5, 15, 20, 64, 65, 101, -1, 2.0])
        if kind == "date":
            return rng.choice(DATES)
        if kind == "dateTime":
            return rng.choice(DATETIMES)
        if kind == "time":
            return rng.choice(TIMES)
        if kind in ("string", "text"):
            return rng.choice(TEXT)
        if kind in ("choice", "open-choice"):
            if options and "valueInteger" in options[0]:
                return rng.randint(0, 5)
            codes = [o["valueCoding"]["code"] for o in options if "valueCoding" in o]
            if codes and rng.random() < 0.6:
                return rng.choice(codes)
            return rng.choice(
                ["a", "b", "c", "z", {"system": SYSTEM, "code": "b"}, {"code": "a"}, "自由記述"]
            )
        if kind == "quantity":
            return rng.choice(
                [{"value": 60}, {"value": 70.5, "code": "kg"}, {"value": 1, "code": "g"}, 5]
            )
        if kind == "attachment":
            return rng.choice(
                [
                    {"contentType": "image/png", "url": "https://files.example/1", "size": 10},
                    {"url": "x"},
                ]
            )
        return None


def random_case(
    rng: random.Random, *, integer_calculations: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    generator = Generator(rng, integer_calculations=integer_calculations)
    questionnaire = generator.questionnaire()
    return questionnaire, generator.answers(questionnaire["item"])
