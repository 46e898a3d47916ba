"""Questionnaire engine benchmark: a 300-item form with 200 conditions, as ratios to json.loads.

    .venv/bin/python bench/forms.py [--repeats 200 --rounds 5]

A generated FHIR Questionnaire (20 sections of 14 questions, three of them repeating groups
answered twice, 200 enableWhen conditions on earlier questions, some with two conditions and
any/all) and answers to about 70% of its questions. Measured in this process, rounds
interleaved, each figure the median over rounds of the mean of ``--repeats`` calls:

- ``json_loads``: ``json.loads`` of the questionnaire's JSON text — the baseline;
- ``load``: ``json.loads`` + ``interview_forms.from_fhir`` (typed definition);
- ``validate``: the upload validator on the parsed document (fhir.resources R4B model + rules);
- ``evaluate_full``: ``evaluate(definition, answers)``;
- ``evaluate_incremental``: ``evaluate(definition, changed, previous=...)`` after one answer
  changed, cycling through every answered top-level question (early ones reach many items,
  late ones few);
- ``submit``: ``submit(definition, answers)`` — re-evaluation, dropping, checks and the
  QuestionnaireResponse;
- ``response_check``: validating that QuestionnaireResponse with the fhir.resources R4B model;
- ``evaluate_with_calculation``: the same form plus a BMI calculatedExpression (fhirpathpy).

Every figure is also reported as a ratio to ``json_loads`` measured in the same run. The script
checks (also under ``python -O``) that incremental results equal full ones and that the
response validates. Results go to ``bench/results/forms.json``. No network, no database.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))
sys.path.append(str(BENCH_DIR))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from provenance import git_commit, package_version  # noqa: E402 - bench/provenance.py

from interview_forms import evaluate, from_fhir, submit, validate  # noqa: E402
from interview_forms.definition import CALCULATED  # noqa: E402
from interview_forms.validate import response_problems  # noqa: E402

RESULTS_FILE = BENCH_DIR / "results" / "forms.json"
SECTIONS = 20
QUESTIONS_PER_SECTION = 14
REPEATING_SECTIONS = (4, 11, 17)
CONDITIONS = 200
SYSTEM = "https://tsunagu.dev/fhir/CodeSystem/bench"
KINDS = ("boolean", "integer", "decimal", "choice", "string", "date", "boolean")


def _check(condition: object, message: str) -> None:
    """A sanity check that also runs under ``python -O`` (unlike ``assert``)."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {message}")


# --- the form ------------------------------------------------------------------------------------


def build_form(rng: random.Random) -> dict[str, Any]:
    """300 items (20 groups + 280 questions) with exactly CONDITIONS enableWhen entries."""
    questions: list[tuple[str, str, int | None]] = []  # (linkId, type, repeating section)
    sections = []
    conditioned = set(rng.sample(range(1, SECTIONS * QUESTIONS_PER_SECTION), CONDITIONS - 20))
    double = set(rng.sample(sorted(conditioned), 20))  # 20 items carry two conditions
    number = 0
    for s in range(SECTIONS):
        repeating = s in REPEATING_SECTIONS
        items = []
        for q in range(QUESTIONS_PER_SECTION):
            kind = KINDS[(s + q) % len(KINDS)]
            link_id = f"s{s}q{q}"
            item: dict[str, Any] = {"linkId": link_id, "text": f"質問 {s}-{q}", "type": kind}
            if kind == "choice":
                item["answerOption"] = [
                    {"valueCoding": {"system": SYSTEM, "code": c}} for c in "abcd"
                ]
            if kind == "integer":
                item["extension"] = [
                    {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/maxValue",
                        "valueInteger": 120,
                    },
                ]
            if kind == "string":
                item["maxLength"] = 200
            if q % 5 == 0:
                item["required"] = True
            visible = [x for x in questions if x[2] is None or (repeating and x[2] == s)]
            if number in conditioned and visible:
                count = 2 if number in double else 1
                item["enableWhen"] = [
                    condition(rng, rng.choice(visible[-40:])) for _ in range(count)
                ]
                if count == 2:
                    item["enableBehavior"] = rng.choice(["all", "any"])
            items.append(item)
            questions.append((link_id, kind, s if repeating else None))
            number += 1
        group: dict[str, Any] = {
            "linkId": f"s{s}",
            "text": f"セクション {s}",
            "type": "group",
            "item": items,
        }
        if repeating:
            group["repeats"] = True
        sections.append(group)
    return {
        "resourceType": "Questionnaire",
        "url": "https://tsunagu.dev/fhir/Questionnaire/bench",
        "version": "1",
        "status": "active",
        "item": sections,
    }


def condition(rng: random.Random, target: tuple[str, str, int | None]) -> dict[str, Any]:
    link_id, kind = target[0], target[1]
    if kind == "boolean":
        return {"question": link_id, "operator": "=", "answerBoolean": rng.random() < 0.7}
    if kind == "integer":
        return {"question": link_id, "operator": rng.choice([">", "<=", ">="]), "answerInteger": 40}
    if kind == "decimal":
        return {"question": link_id, "operator": rng.choice([">", "<"]), "answerDecimal": 37.5}
    if kind == "choice":
        value = {"system": SYSTEM, "code": rng.choice("ab")}
        return {"question": link_id, "operator": rng.choice(["=", "!="]), "answerCoding": value}
    if kind == "date":
        return {"question": link_id, "operator": ">=", "answerDate": "2026-01-01"}
    return {"question": link_id, "operator": "exists", "answerBoolean": True}


def value(rng: random.Random, kind: str) -> Any:
    return {
        "boolean": lambda: rng.random() < 0.6,
        "integer": lambda: rng.randint(0, 90),
        "decimal": lambda: round(rng.uniform(35.5, 39.5), 1),
        "choice": lambda: rng.choice("abcd"),
        "string": lambda: rng.choice(["ロキソニン", "特になし", "昨日から咳が出る"]),
        "date": lambda: rng.choice(["2025-11-03", "2026-02-14", "2026-04-01"]),
    }[kind]()


def build_answers(rng: random.Random, form: dict[str, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for section in form["item"]:

        def fill(scope: dict[str, Any], items: list[dict[str, Any]]) -> None:
            for item in items:
                if rng.random() < 0.7:
                    scope[item["linkId"]] = value(rng, item["type"])

        if section.get("repeats"):
            instances: list[dict[str, Any]] = [{}, {}]
            for instance in instances:
                fill(instance, section["item"])
            answers[section["linkId"]] = instances
        else:
            fill(answers, section["item"])
    return answers


def with_bmi(form: dict[str, Any]) -> dict[str, Any]:
    expression = (
        "(%resource.repeat(item).where(linkId='weight').answer.value / "
        "(%resource.repeat(item).where(linkId='height').answer.value / 100).power(2)).round(1)"
    )
    extra = [
        {"linkId": "height", "text": "身長", "type": "decimal"},
        {"linkId": "weight", "text": "体重", "type": "decimal"},
        {
            "linkId": "bmi",
            "text": "BMI",
            "type": "decimal",
            "readOnly": True,
            "extension": [
                {
                    "url": CALCULATED,
                    "valueExpression": {"language": "text/fhirpath", "expression": expression},
                }
            ],
        },
    ]
    return form | {"item": [*form["item"], {"linkId": "body", "type": "group", "item": extra}]}


# --- measuring -------------------------------------------------------------------------------


def mean_seconds(call: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    form = build_form(rng)
    text = json.dumps(form, ensure_ascii=False)
    items = sum(1 + len(s["item"]) for s in form["item"])
    conditions = sum(len(i.get("enableWhen", [])) for s in form["item"] for i in s["item"])
    _check(items == 300, f"{items} items")
    _check(conditions == CONDITIONS, f"{conditions} conditions")
    validation = validate(form)
    _check(validation.ok, f"the generated form is invalid: {validation.problems[:3]}")
    definition = from_fhir(form)
    answers = build_answers(rng, form)
    full = evaluate(definition, answers)
    result = submit(definition, answers, complete=False)
    _check(result.response is not None, f"submit refused the answers: {result.errors[:3]}")
    assert result.response is not None
    _check(response_problems(result.response) == [], "the QuestionnaireResponse is invalid")

    # one changed answer at a time, for every answered top-level question, alternating values
    changes = []
    for key in [k for k, v in answers.items() if not isinstance(v, list)]:
        kind = definition.item(key).type  # type: ignore[union-attr]
        changed = dict(answers)
        changed[key] = value(rng, kind)
        changes.append(changed)
    for changed in changes:
        _check(
            evaluate(definition, changed, previous=full) == evaluate(definition, changed),
            "incremental and full evaluations differ",
        )
    cursor = iter(range(10**12))

    def incremental() -> object:
        return evaluate(definition, changes[next(cursor) % len(changes)], previous=full)

    bmi_definition = from_fhir(with_bmi(form))
    bmi_answers = answers | {"height": 170, "weight": 65}
    _check(evaluate(bmi_definition, bmi_answers).computed.get("bmi") == 22.5, "BMI not computed")
    response = result.response
    targets: dict[str, Callable[[], object]] = {
        "json_loads": lambda: json.loads(text),
        "load": lambda: from_fhir(json.loads(text)),
        "validate": lambda: validate(json.loads(text)),
        "evaluate_full": lambda: evaluate(definition, answers),
        "evaluate_incremental": incremental,
        "submit": lambda: submit(definition, answers, complete=False),
        "response_check": lambda: response_problems(response),
        "evaluate_with_calculation": lambda: evaluate(bmi_definition, bmi_answers),
    }
    slow = {"validate", "evaluate_with_calculation", "response_check"}
    rounds: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    for number in range(args.rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            repeats = max(1, args.repeats // 10) if name in slow else args.repeats
            rounds[name].append(mean_seconds(targets[name], repeats))
    medians = {name: statistics.median(times) for name, times in rounds.items()}
    baseline = medians["json_loads"]
    return {
        "form": {
            "items": items,
            "conditions": conditions,
            "json_bytes": len(text.encode()),
            "answered_keys": len(result.structured or {}),
            "enabled_items": len(full.enabled),
            "repeating_instances": dict(full.instances),
            "incremental_changes_cycled": len(changes),
        },
        "median_ms": {name: round(seconds * 1000, 4) for name, seconds in medians.items()},
        "ratio_to_json_loads": {
            name: round(seconds / baseline, 2) for name, seconds in medians.items()
        },
        "rounds_ms": {name: [round(t * 1000, 4) for t in times] for name, times in rounds.items()},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="calls per measurement (200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--seed", type=int, default=7, help="form and answers generator seed (7)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        parser.error("--repeats and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "fhir.resources": package_version("fhir.resources"),
            "fhirpathpy": package_version("fhirpathpy"),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    report |= run(args)
    form = report["form"]
    print(
        f"form: {form['items']} items, {form['conditions']} conditions, {form['json_bytes']} bytes"
        f" of JSON; {form['enabled_items']} items enabled by the answers"
    )
    print(f"{'':28}{'median ms':>12}{'× json.loads':>15}")
    for name, ms in report["median_ms"].items():
        print(f"{name:28}{ms:12.3f}{report['ratio_to_json_loads'][name]:15.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
