"""The engine against the shared JSON vectors (the browser evaluator runs the same files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interview_forms import evaluate, from_fhir, submit, validate
from interview_forms.validate import response_problems

from .vectors import Case, cases, files, same_numbers

CASES = cases()


def test_there_are_enough_vectors() -> None:
    assert len(CASES) >= 60
    assert len(files()) >= 10


@pytest.mark.parametrize("path", files(), ids=lambda p: p.stem)
def test_every_vector_definition_passes_the_upload_validator(path: Path) -> None:
    result = validate(json.loads(path.read_text(encoding="utf-8"))["questionnaire"])
    assert result.problems == ()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_vector(case: Case) -> None:
    questionnaire = from_fhir(case.questionnaire)
    evaluation = evaluate(questionnaire, case.answers)
    expected = case.expected
    assert sorted(evaluation.enabled) == expected["enabled"]
    assert sorted(evaluation.missing_required) == expected["missing"]
    assert sorted([e.key, e.code] for e in evaluation.errors) == expected["errors"]
    assert same_numbers(dict(evaluation.computed), expected["computed"]), evaluation.computed
    assert [o.id for o in evaluation.outcomes] == expected["outcomes"]
    assert sorted(evaluation.disabled_with_answers) == expected["dropped"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_vector_submit(case: Case) -> None:
    """Submit agrees with evaluate: errors exactly when there are errors or missing answers."""
    questionnaire = from_fhir(case.questionnaire)
    result = submit(questionnaire, case.answers)
    expected = case.expected
    codes = sorted([e.key, e.code] for e in result.errors)
    wanted = sorted(expected["errors"] + [[key, "required"] for key in expected["missing"]])
    assert codes == wanted
    if not wanted:
        assert result.response is not None
        assert response_problems(result.response) == []
        assert result.response["questionnaire"] == questionnaire.canonical
        answered = {key.split("/")[-1].split("[")[0] for key in (result.structured or {})}
        for key in expected["dropped"]:
            assert key not in (result.structured or {})
        assert answered <= {item.link_id for item in questionnaire.walk()}
