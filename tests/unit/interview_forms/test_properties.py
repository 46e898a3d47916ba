"""Generated definitions and answers: no crash; submit gives errors or a valid R4 response."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interview_forms import (
    DefinitionError,
    answers_from_response,
    evaluate,
    from_fhir,
    prune,
    submit,
)
from interview_forms.validate import response_problems, validate

from .generate import Generator, random_case

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_submit_is_errors_or_a_valid_questionnaire_response(rng: random.Random) -> None:
    document, answers = random_case(rng)
    try:
        questionnaire = from_fhir(document)
    except DefinitionError:  # the generator only writes loadable documents
        raise AssertionError("generated definition could not be loaded") from None
    validate(document)  # never crashes, whatever it finds
    evaluation = evaluate(questionnaire, answers)
    result = submit(questionnaire, answers)
    if result.errors:
        assert result.response is None
        assert result.structured is None
        for error in result.errors:
            assert error.message_ja
            assert error.message_en
    else:
        assert result.response is not None
        assert response_problems(result.response) == []
        assert result.response["questionnaire"] == questionnaire.canonical
        assert set(result.structured or {}) <= evaluation.enabled
    draft = submit(questionnaire, answers, complete=False)
    if draft.response is not None:
        assert response_problems(draft.response) == []


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_dropping_disabled_answers_is_idempotent_and_changes_nothing_else(
    rng: random.Random,
) -> None:
    document, answers = random_case(rng)
    questionnaire = from_fhir(document)
    pruned = prune(questionnaire, answers)
    assert prune(questionnaire, pruned) == pruned
    before, after = evaluate(questionnaire, answers), evaluate(questionnaire, pruned)
    assert after.enabled == before.enabled
    assert after.disabled_with_answers == ()
    assert dict(after.computed) == dict(before.computed)
    assert after.outcomes == before.outcomes
    result = submit(questionnaire, answers)
    if result.response is not None:
        assert submit(questionnaire, pruned).response == result.response


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_a_saved_response_resumes_to_the_same_response(rng: random.Random) -> None:
    document, answers = random_case(rng)
    questionnaire = from_fhir(document)
    result = submit(questionnaire, answers)
    if result.response is not None:
        resumed = answers_from_response(questionnaire, result.response)
        assert submit(questionnaire, resumed).response == result.response


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_incremental_evaluation_equals_a_full_one(rng: random.Random) -> None:
    document, answers = random_case(rng)
    questionnaire = from_fhir(document)
    previous = evaluate(questionnaire, answers)
    fresh = Generator(rng).answers(document["item"])
    changed = dict(answers)
    for key in rng.sample(sorted(fresh), k=min(len(fresh), rng.randint(0, 2))):
        changed[key] = fresh[key]
    for key in rng.sample(sorted(changed), k=min(len(changed), rng.randint(0, 1))):
        del changed[key]
    assert evaluate(questionnaire, changed, previous=previous) == evaluate(questionnaire, changed)
    # the same answers again: everything reused, nothing different
    assert evaluate(questionnaire, changed, previous=previous) == evaluate(questionnaire, changed)


def test_incremental_evaluation_is_safe_against_answers_changed_in_place() -> None:
    questionnaire = from_fhir(
        {
            "resourceType": "Questionnaire",
            "status": "draft",
            "item": [
                {"linkId": "w", "type": "quantity"},
                {
                    "linkId": "heavy",
                    "type": "display",
                    "enableWhen": [
                        {
                            "question": "w",
                            "operator": ">",
                            "answerQuantity": {"value": 100, "code": "kg"},
                        }
                    ],
                },
            ],
        }
    )
    answers = {"w": {"value": 60, "code": "kg"}}
    previous = evaluate(questionnaire, answers)
    answers["w"]["value"] = 120  # the caller edits its own dict
    assert evaluate(questionnaire, answers, previous=previous).is_enabled("heavy")
