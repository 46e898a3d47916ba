"""Questionnaire versions on the real database: drafts change, published versions never do."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interview_forms import versions
from interview_forms.models import QuestionnaireVersion, VersionStatus
from interview_forms.versions import VersionRefused
from patient_portal.settings import Settings

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
OUTCOME = "https://tsunagu.dev/fhir/StructureDefinition/outcome"

FEVER: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "title": "発熱 問診",
    "status": "draft",
    "extension": [
        {
            "url": OUTCOME,
            "extension": [
                {"url": "id", "valueId": "breath"},
                {"url": "action", "valueCode": "visit-in-person"},
                {
                    "url": "condition",
                    "extension": [
                        {"url": "question", "valueString": "breath"},
                        {"url": "operator", "valueCode": "="},
                        {"url": "answer", "valueBoolean": True},
                    ],
                },
                {"url": "behavior", "valueCode": "any"},
                {"url": "message-ja", "valueString": "対面で受診してください。"},
                {"url": "message-en", "valueString": "Please come in person."},
            ],
        }
    ],
    "item": [
        {"linkId": "fever", "text": "熱はありますか", "type": "boolean", "required": True},
        {
            "linkId": "temp",
            "text": "体温",
            "type": "decimal",
            "enableWhen": [{"question": "fever", "operator": "=", "answerBoolean": True}],
        },
        {"linkId": "breath", "text": "息苦しさはありますか", "type": "boolean"},
    ],
}
CASES = [
    {
        "name": "熱あり",
        "answers": {"fever": True, "temp": 38.5},
        "expect": {"enabled": ["temp"], "outcomes": [], "missing": []},
    },
    {
        "name": "息苦しい",
        "answers": {"fever": False, "breath": True},
        "expect": {"disabled": ["temp"], "outcomes": ["breath"]},
    },
]


def text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


CLINIC = str(uuid.UUID(int=1))
OTHER_CLINIC = str(uuid.UUID(int=2))


async def draft(key: str = "fever", clinic: str = CLINIC) -> QuestionnaireVersion:
    version, _ = await versions.create_draft(clinic, key, text(FEVER), created_by=None, now=NOW)
    return version


async def test_a_draft_is_stamped_with_the_canonical_url_of_its_version(db: Settings) -> None:
    version = await draft()
    assert version.version == 1
    assert version.status is VersionStatus.DRAFT
    assert version.title == "発熱 問診"
    assert version.body["url"] == f"https://tsunagu.dev/fhir/Questionnaire/{CLINIC}/fever"
    assert version.body["version"] == "1"
    assert versions.definition(version).canonical == version.body["url"] + "|1"


async def test_yaml_is_accepted_like_json(db: Settings) -> None:
    import yaml

    source = yaml.safe_dump(FEVER, allow_unicode=True)
    version, _ = await versions.create_draft(CLINIC, "fever", source, created_by=None, now=NOW)
    assert version.body["item"] == FEVER["item"]


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{not json", "unreadable"),
        ("", "empty"),
        ("a: &x [1]\nb: *x\n", "yaml-alias"),
        ('{"resourceType": "Patient"}', "not-a-questionnaire"),
        (
            text({**FEVER, "item": [*FEVER["item"], {"linkId": "fever", "type": "string"}]}),
            "duplicate-link-id",
        ),
    ],
)
async def test_bad_documents_are_refused_with_precise_problems_and_nothing_written(
    db: Settings, source: str, code: str
) -> None:
    with pytest.raises(VersionRefused) as refused:
        await versions.create_draft(CLINIC, "fever", source, created_by=None, now=NOW)
    assert refused.value.code == "invalid"
    assert code in [p.code for p in refused.value.problems]
    assert all(p.message_ja and p.message_en for p in refused.value.problems)
    assert await QuestionnaireVersion.all().count() == 0


async def test_an_invalid_key_is_refused(db: Settings) -> None:
    with pytest.raises(VersionRefused) as refused:
        await versions.create_draft(CLINIC, "Not A Key", text(FEVER), created_by=None, now=NOW)
    assert [p.code for p in refused.value.problems] == ["key-invalid"]


async def test_a_published_version_is_immutable(db: Settings) -> None:
    version = await draft()
    await versions.publish(version, now=NOW)
    changed = copy.deepcopy(FEVER)
    changed["item"][0]["text"] = "書き換え"
    stale = await QuestionnaireVersion.get(id=version.id)
    with pytest.raises(VersionRefused) as refused:
        await versions.update_draft(stale, document=text(changed), now=NOW)
    assert refused.value.code == "not-a-draft"
    # Even a caller holding an old copy that still says "draft" cannot change it.
    stale.status = VersionStatus.DRAFT
    with pytest.raises(VersionRefused):
        await versions.update_draft(stale, document=text(changed), now=NOW)
    stored = await QuestionnaireVersion.get(id=version.id)
    assert stored.body["item"][0]["text"] == "熱はありますか"
    with pytest.raises(VersionRefused):
        await versions.discard_draft(stored)


async def test_publishing_retires_the_previous_version_and_numbers_increase(db: Settings) -> None:
    first = await draft()
    await versions.publish(first, now=NOW)
    second = await versions.new_draft_from(first, created_by=None, now=NOW)
    assert second.version == 2
    assert second.body["version"] == "2"
    with pytest.raises(VersionRefused) as refused:
        await versions.new_draft_from(first, created_by=None, now=NOW)
    assert refused.value.code == "draft-exists"
    retired = await versions.publish(second, now=NOW + timedelta(hours=1))
    assert retired is not None
    assert retired.id == first.id
    assert (await QuestionnaireVersion.get(id=first.id)).status is VersionStatus.RETIRED
    published = await versions.published_version(CLINIC, "fever")
    assert published is not None
    assert published.id == second.id
    assert published.body["status"] == "active"
    summary = await versions.key_versions(CLINIC, "fever")
    assert summary is not None
    assert [v.version for v in summary.versions] == [2, 1]


async def test_a_key_is_per_clinic_and_other_clinics_versions_are_not_found(db: Settings) -> None:
    mine = await draft()
    theirs = await draft(clinic=OTHER_CLINIC)
    assert theirs.version == 1
    assert await versions.clinic_version(CLINIC, str(theirs.id)) is None
    assert await versions.clinic_version(CLINIC, str(mine.id)) is not None
    assert await versions.clinic_version(CLINIC, "not-a-uuid") is None
    with pytest.raises(VersionRefused) as refused:
        await draft()
    assert refused.value.code == "key-taken"


async def test_test_cases_run_on_save_and_publishing_waits_for_them(db: Settings) -> None:
    version = await draft()
    results = await versions.update_draft(version, tests=CASES, now=NOW)
    assert [r.passed for r in results] == [True, True]
    failing = [
        *CASES,
        {"name": "間違い", "answers": {"fever": True}, "expect": {"outcomes": ["x"]}},
    ]
    results = await versions.update_draft(version, tests=failing, now=NOW)
    assert [r.passed for r in results] == [True, True, False]
    assert "x" in results[2].failures[0].message_en
    with pytest.raises(VersionRefused) as refused:
        await versions.publish(version, now=NOW)
    assert refused.value.code == "tests-failing"
    assert (await QuestionnaireVersion.get(id=version.id)).status is VersionStatus.DRAFT
    await versions.update_draft(version, tests=CASES, now=NOW)
    await versions.publish(version, now=NOW)


async def test_a_case_that_answers_a_misspelt_question_fails(db: Settings) -> None:
    version = await draft()
    results = await versions.update_draft(
        version, tests=[{"name": "typo", "answers": {"fevr": True}, "expect": {}}], now=NOW
    )
    assert not results[0].passed
    assert "fevr" in results[0].failures[0].message_en


@pytest.mark.parametrize(
    "tests",
    [
        {"name": "not a list"},
        [{"answers": {}}],
        [{"name": "x", "expect": {"shown": ["a"]}}],
        [{"name": "x", "expect": {"enabled": "temp"}}],
        [{"name": "x", "answers": [1]}],
    ],
)
async def test_malformed_test_cases_are_refused(db: Settings, tests: Any) -> None:
    version = await draft()
    with pytest.raises(VersionRefused) as refused:
        await versions.update_draft(version, tests=tests, now=NOW)
    assert refused.value.problems[0].code == "tests-invalid"
    assert (await QuestionnaireVersion.get(id=version.id)).tests == []


async def test_export_then_import_round_trips(db: Settings) -> None:
    version = await draft()
    await versions.update_draft(version, tests=CASES, now=NOW)
    await versions.publish(version, now=NOW)
    exported = versions.export(version)
    assert exported["url"].endswith(f"/{CLINIC}/fever")
    assert exported["version"] == "1"
    assert exported["status"] == "active"
    assert versions.key_from(exported) == "fever"
    imported, results = await versions.create_draft(
        OTHER_CLINIC, "fever", text(exported), created_by=None, now=NOW
    )
    assert [r.passed for r in results] == [True, True]
    assert imported.tests == CASES
    again = versions.export(imported)
    for key in ("url", "status"):
        exported.pop(key), again.pop(key)
    assert again == exported
    # Into the same clinic's key: the next number, refused while a draft exists.
    into, _ = await versions.create_draft(
        CLINIC, "fever", text(versions.export(version)), created_by=None, now=NOW, new_key=False
    )
    assert into.version == 2
    with pytest.raises(VersionRefused) as refused:
        await versions.create_draft(
            CLINIC, "fever", text(versions.export(version)), created_by=None, now=NOW, new_key=False
        )
    assert refused.value.code == "draft-exists"


def test_every_built_in_template_is_valid() -> None:
    for template in versions.templates():
        parsed = versions.parse(template.text)
        assert parsed.ok, (template.name, [p.message_en for p in parsed.validation.errors])
        results = versions.run_tests(parsed.questionnaire, parsed.tests)  # type: ignore[arg-type]
        assert all(r.passed for r in results), (template.name, results)


def test_answer_option_extensions_survive_load_and_write() -> None:
    from interview_forms import from_fhir, to_fhir

    ordinal = {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 1}
    item = {
        "linkId": "a",
        "type": "choice",
        "answerOption": [{"valueString": "x", "extension": [ordinal]}],
    }
    document = {"resourceType": "Questionnaire", "status": "draft", "item": [item]}
    assert to_fhir(from_fhir(document))["item"][0]["answerOption"][0]["extension"] == [ordinal]


def test_validate_reports_yaml_values_that_are_not_json() -> None:
    from interview_forms import validate

    validation = validate("resourceType: Questionnaire\nstatus: draft\nfoo: !!set {a}\n")
    assert not validation.ok


def test_versions_parse_refuses_yaml_values_that_are_not_json() -> None:
    parsed = versions.parse("resourceType: Questionnaire\nstatus: draft\nfoo: !!set {a}\n")
    assert [p.code for p in parsed.validation.problems] == ["not-json"]
