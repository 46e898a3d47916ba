"""Definitions: FHIR JSON/YAML → typed immutable objects → FHIR JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from interview_forms import DefinitionError, from_fhir, load, to_fhir
from interview_forms.values import Coding, Kind

from .vectors import files


def normalised(value: Any) -> Any:
    """Extension lists compared as sets (their order is not meaningful)."""
    if isinstance(value, dict):
        out = {k: normalised(v) for k, v in value.items()}
        if isinstance(out.get("extension"), list):
            out["extension"] = sorted(out["extension"], key=lambda e: json.dumps(e, sort_keys=True))
        return out
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


@pytest.mark.parametrize("path", files(), ids=lambda p: p.stem)
def test_round_trip_of_every_vector_definition(path: Any) -> None:
    original = json.loads(path.read_text(encoding="utf-8"))["questionnaire"]
    definition = from_fhir(original)
    assert normalised(to_fhir(definition)) == normalised(original)
    assert from_fhir(to_fhir(definition)) == definition


def test_unmodelled_elements_survive() -> None:
    original = {
        "resourceType": "Questionnaire",
        "status": "active",
        "publisher": "つなぐクリニック",
        "extension": [{"url": "https://example.org/x", "valueString": "kept"}],
        "item": [
            {
                "linkId": "a",
                "type": "boolean",
                "code": [{"system": "http://loinc.org", "code": "1234-5"}],
                "extension": [{"url": "https://example.org/y", "valueInteger": 3}],
            }
        ],
    }
    assert to_fhir(from_fhir(original)) == original


def test_typed_fields() -> None:
    definition = load(
        """
resourceType: Questionnaire
url: https://tsunagu.dev/fhir/Questionnaire/x
version: "2"
status: active
item:
  - linkId: w
    type: quantity
    required: true
    extension:
      - url: http://hl7.org/fhir/StructureDefinition/questionnaire-unit
        valueCoding: {system: http://unitsofmeasure.org, code: kg, display: kg}
      - url: http://hl7.org/fhir/StructureDefinition/questionnaire-hidden
        valueBoolean: true
  - linkId: c
    type: choice
    repeats: true
    answerOption:
      - valueCoding: {system: s, code: a}
        initialSelected: true
      - valueCoding: {system: s, code: b}
"""
    )
    weight, choice = definition.items
    assert definition.canonical == "https://tsunagu.dev/fhir/Questionnaire/x|2"
    assert weight.required
    assert weight.hidden
    assert weight.unit == Coding(code="kg", system="http://unitsofmeasure.org", display="kg")
    assert choice.answer_options[0].initial_selected
    assert choice.answer_options[1].value.kind is Kind.CODING
    with pytest.raises(dataclasses.FrozenInstanceError):
        weight.required = False  # type: ignore[misc]
    edited = dataclasses.replace(definition, version="3")
    assert to_fhir(edited)["version"] == "3"


def test_unloadable_documents_raise_with_every_problem() -> None:
    with pytest.raises(DefinitionError) as caught:
        from_fhir(
            {
                "resourceType": "Questionnaire",
                "status": "draft",
                "item": [
                    {"type": "boolean"},
                    {"linkId": "x", "type": "integer", "required": "yes"},
                ],
            }
        )
    codes = {(p.link_id, p.code) for p in caught.value.problems}
    assert codes == {(None, "missing-link-id"), ("x", "invalid-element")}


def test_answer_option_extensions_survive() -> None:
    ordinal = {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 2}
    option = {
        "valueCoding": {"system": "s", "code": "a"},
        "initialSelected": True,
        "extension": [ordinal],
    }
    document = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "a", "type": "choice", "answerOption": [option]}],
    }
    assert to_fhir(from_fhir(document)) == document


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("resourceType: Questionnaire\nstatus: draft\nfoo: !!set {a}\n", "$.foo"),
        ("resourceType: Questionnaire\nstatus: draft\n1: x\n", "$.1"),
        (
            "resourceType: Questionnaire\nstatus: draft\nitem: [{linkId: a, x: .inf}]\n",
            "$.item[0].x",
        ),
        ("resourceType: Questionnaire\nstatus: draft\nb: !!binary aGVsbG8=\n", "$.b"),
    ],
)
def test_yaml_values_json_cannot_hold_are_refused(text: str, where: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load(text)
    [problem] = caught.value.problems
    assert problem.code == "not-json"
    assert where in problem.message_en
