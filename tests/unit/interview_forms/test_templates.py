"""Built-in questionnaire templates: valid, bilingual, and their red flags route as intended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import interview_forms
from interview_forms import evaluate, from_fhir, submit, to_fhir, validate
from interview_forms.validate import response_problems
from interview_forms.values import Coding

from .test_definition import normalised

TEMPLATES = Path(interview_forms.__file__).parent / "templates"
NAMES = sorted(p.stem for p in TEMPLATES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def english(element: dict[str, Any], key: str) -> str | None:
    for entry in element.get(f"_{key}", {}).get("extension", []):
        parts = {p["url"]: p for p in entry["extension"]}
        if parts["lang"]["valueCode"] == "en":
            return str(parts["content"]["valueString"])
    return None


def test_the_five_templates_are_there() -> None:
    assert NAMES == [
        "cold-fever-online",
        "hay-fever-online-first-visit",
        "internal-medicine-first-visit",
        "paediatric-parent",
        "revisit-check",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_template_passes_the_validator_and_round_trips(name: str) -> None:
    document = load(name)
    result = validate(document)
    assert result.problems == ()
    assert result.questionnaire is not None
    assert normalised(to_fhir(result.questionnaire)) == normalised(document)


@pytest.mark.parametrize("name", NAMES)
def test_every_text_and_option_is_in_japanese_and_english(name: str) -> None:
    document = load(name)
    assert english(document, "title")
    questionnaire = from_fhir(document)
    raw_items: list[dict[str, Any]] = []

    def collect(items: list[dict[str, Any]]) -> None:
        for item in items:
            raw_items.append(item)
            collect(item.get("item", []))

    collect(document["item"])
    for item in raw_items:
        assert english(item, "text"), item["linkId"]
    for item in questionnaire.walk():
        for option in item.answer_options:
            coding = option.value.value
            assert isinstance(coding, Coding)
            assert coding.display
            assert coding.display_in("en") != coding.display, (item.link_id, coding.code)
    for outcome in questionnaire.outcomes:
        assert outcome.message_ja
        assert outcome.message_en


def outcome_ids(name: str, answers: dict[str, Any]) -> list[str]:
    return [o.id for o in evaluate(from_fhir(load(name)), answers).outcomes]


CALM_COLD = {
    "rf_consciousness": False,
    "rf_cyanosis": False,
    "rf_breath": False,
    "rf_chest": False,
    "rf_drink": False,
    "fever_now": True,
    "temperature": 38.2,
    "fever_days": 2,
    "symptoms": ["cough", "sore_throat"],
    "age": 34,
    "chronic": False,
}


def test_cold_fever_without_red_flags_submits_cleanly() -> None:
    result = submit(from_fhir(load("cold-fever-online")), CALM_COLD)
    assert result.errors == ()
    assert result.outcomes == ()
    assert result.response is not None
    assert response_problems(result.response) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"spo2": 88}, ["emergency", "in-person"]),
        ({"spo2": 92}, ["in-person"]),
        ({"spo2": 97}, []),
        ({"rf_cyanosis": True}, ["emergency"]),
        ({"rf_drink": True}, ["in-person"]),
        ({"fever_days": 4}, ["long-fever"]),
        ({"fever_now": False, "fever_days": 6}, []),  # the disabled fever_days is not seen
    ],
)
def test_cold_fever_red_flags(change: dict[str, Any], expected: list[str]) -> None:
    assert outcome_ids("cold-fever-online", CALM_COLD | change) == expected


def test_emergency_blocks_online_and_tells_to_call_119() -> None:
    evaluation = evaluate(
        from_fhir(load("cold-fever-online")), CALM_COLD | {"rf_consciousness": True}
    )
    assert evaluation.blocks_online
    assert "119" in evaluation.outcomes[0].message_ja
    assert "119" in evaluation.outcomes[0].message_en


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"age_years": 0, "age_months": 2, "fever": True}, ["young-infant-fever"]),
        ({"age_years": 0, "age_months": 5, "fever": True}, []),
        ({"age_years": 1, "age_months": 2, "fever": True}, []),  # months only asked under 1
        ({"age_years": 4, "rf_convulsion": True}, ["emergency"]),
        ({"age_years": 4, "rf_breathing": True}, ["in-person"]),
    ],
)
def test_paediatric_routes(answers: dict[str, Any], expected: list[str]) -> None:
    assert outcome_ids("paediatric-parent", answers) == expected


def test_hay_fever_with_fever_recommends_an_existing_menu_template() -> None:
    evaluation = evaluate(from_fhir(load("hay-fever-online-first-visit")), {"fever": True})
    [outcome] = evaluation.outcomes
    assert outcome.action == "recommend-menu"
    assert outcome.menu in NAMES
    assert not evaluation.blocks_online
    assert outcome_ids("hay-fever-online-first-visit", {"wheeze": True, "eye_pain": True}) == [
        "wheeze",
        "eye",
    ]


def test_internal_medicine_bmi_and_branches() -> None:
    questionnaire = from_fhir(load("internal-medicine-first-visit"))
    evaluation = evaluate(
        questionnaire,
        {
            "height": 160,
            "weight": 64,
            "symptoms": ["fever"],
            "sex": "male",
            "takes_meds": True,
            "meds": [{}],
        },
    )
    assert evaluation.computed == {"bmi": 25.0}
    assert evaluation.is_enabled("temperature")
    assert not evaluation.is_enabled("pregnant")
    assert "meds[0]/med_name" in evaluation.missing_required


def test_revisit_very_high_blood_pressure() -> None:
    assert outcome_ids("revisit-check", {"home_sbp": 185, "home_dbp": 100}) == ["very-high-bp"]
    assert outcome_ids("revisit-check", {"home_sbp": 150, "home_dbp": 95}) == []
