"""Differential test: the browser evaluator and the server engine agree on random cases.

The shared vectors pin the semantics case by case; this runs a few hundred generated
questionnaires (often invalid on purpose) and answers (often junk) through both and compares
everything the browser shows, error texts included. Calculations use integers only, where
decimals and doubles agree.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

from interview_forms import evaluate, from_fhir

from .generate import Generator, random_case

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "interview_forms" / "templates"
CASES = 400
TEMPLATE_CASES = 60


def python_verdict(questionnaire: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    evaluation = evaluate(from_fhir(questionnaire), answers)
    return {
        "enabled": sorted(evaluation.enabled),
        "missing": list(evaluation.missing_required),
        "errors": sorted([e.key, e.code, e.message_ja, e.message_en] for e in evaluation.errors),
        "computed": dict(evaluation.computed),
        "outcomes": [o.id for o in evaluation.outcomes],
        "dropped": list(evaluation.disabled_with_answers),
    }


def normalised(verdict: dict[str, Any]) -> dict[str, Any]:
    return verdict | {
        "enabled": sorted(verdict["enabled"]),
        "errors": sorted(list(e) for e in verdict["errors"]),
        "computed": {
            k: round(v, 9) if isinstance(v, float) else v for k, v in verdict["computed"].items()
        },
    }


def test_python_and_javascript_agree_on_random_cases() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not installed: the JS evaluator cannot be checked"
    rng = random.Random(20260401)  # noqa: S311 - reproducible test data, not secrets
    cases = [random_case(rng, integer_calculations=True) for _ in range(CASES)]
    for path in sorted(TEMPLATES.glob("*.json")):  # the built-in forms, with random answers
        template = json.loads(path.read_text(encoding="utf-8"))
        cases += [
            (template, Generator(rng).answers(template["item"])) for _ in range(TEMPLATE_CASES)
        ]
    payload = json.dumps([{"questionnaire": q, "answers": a} for q, a in cases])
    result = subprocess.run(
        [node, "tests/js/evaluate_stdin.mjs"],
        cwd=REPO,
        input=payload,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads(result.stdout)
    assert len(verdicts) == len(cases) >= CASES
    disagreements = []
    for number, ((questionnaire, answers), js) in enumerate(zip(cases, verdicts, strict=True)):
        expected = normalised(python_verdict(questionnaire, answers))
        if normalised(js) != expected:
            disagreements.append((number, expected, normalised(js)))
    assert not disagreements, json.dumps(disagreements[:2], ensure_ascii=False, indent=1)[:6000]
    assert sum(bool(python_verdict(q, a)["computed"]) for q, a in cases) > 0
    assert not any(
        math.isnan(v) for q, a in cases for v in python_verdict(q, a)["computed"].values()
    )
