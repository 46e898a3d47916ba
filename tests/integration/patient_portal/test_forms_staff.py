"""Questionnaire authoring and the doctor's view, through the real app on the real database."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from booking.models import Clinic, Menu
from interview_forms import submit, versions
from interview_forms.models import FormResponse, QuestionnaireVersion, ResponseStatus, VersionStatus
from patient_portal.accounts.models import Patient
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import SMS_CODE, World
from tests.support.booking import make_appointment, make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import Devices, csrf_token, post_form, sign_in_staff

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
                {"url": "message-ja", "valueString": "息苦しさがあるため対面で受診してください。"},
                {"url": "message-en", "valueString": "Please come in person."},
            ],
        }
    ],
    "item": [
        {"linkId": "complaint", "text": "今日の症状", "type": "string", "required": True},
        {"linkId": "fever", "text": "熱はありますか", "type": "boolean"},
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
    {"name": "熱あり", "answers": {"fever": True}, "expect": {"enabled": ["temp"]}},
    {"name": "息苦しい", "answers": {"breath": True}, "expect": {"outcomes": ["breath"]}},
]


@dataclass(frozen=True)
class Seeded:
    appointment_a: str  # patient A's appointment at clinic A, with a completed questionnaire
    empty_appointment_a: str  # no questionnaire answered
    version_a: str  # clinic A's published "fever" version
    version_b: str  # clinic B's published version


async def _response(
    version: QuestionnaireVersion,
    patient: Patient,
    appointment_id: Any,
    answers: dict[str, Any],
    at: Any,
) -> None:
    result = submit(versions.definition(version), answers, authored=at)
    assert result.ok, result.errors
    await FormResponse.create(
        clinic_id=version.clinic_id,
        questionnaire=version,
        account_id=patient.account_id,  # type: ignore[attr-defined]
        patient_id=patient.id,
        appointment_id=appointment_id,
        status=ResponseStatus.COMPLETED,
        answers=answers,
        response=result.response,
        structured=result.structured,
        outcomes=[{"id": o.id, "action": o.action} for o in result.outcomes],
        created_at=at,
        updated_at=at,
        completed_at=at,
    )


@pytest.fixture
def seeded(settings: Settings, world: World) -> Seeded:
    async def seed() -> Seeded:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic_a = await Clinic.get(id=world.clinic_a)
                patient = await Patient.get(id=world.patient_a)
                appointment = await make_appointment(clinic_a, patient)
                earlier = await make_appointment(clinic_a, patient)
                empty = await make_appointment(clinic_a, patient)
                now = appointment.starts_at - timedelta(days=1)
                version, _ = await versions.create_draft(
                    world.clinic_a, "fever", json.dumps(FEVER), created_by=None, now=now
                )
                await versions.publish(version, now=now)
                await _response(
                    version,
                    patient,
                    earlier.id,
                    {"complaint": "咳", "fever": True, "temp": 37.4},
                    now - timedelta(days=30),
                )
                await _response(
                    version,
                    patient,
                    appointment.id,
                    {"complaint": "咳と熱", "fever": False, "temp": 39.9, "breath": True},
                    now,
                )
                await Menu.filter(id=appointment.menu_id).update(  # type: ignore[attr-defined]
                    questionnaire_id="fever", title_ja="発熱外来"
                )
                unpublished, _ = await make_menu(clinic_a)
                await Menu.filter(id=unpublished.id).update(
                    questionnaire_id="gone", title_ja="健診"
                )
                other, _ = await versions.create_draft(
                    world.clinic_b, "fever", json.dumps(FEVER), created_by=None, now=now
                )
                await versions.publish(other, now=now)
                return Seeded(str(appointment.id), str(empty.id), str(version.id), str(other.id))

    return run_sync(seed())


@pytest.fixture
def portal(settings: Settings, clock: FakeClock, world: World, seeded: Seeded) -> Starlette:
    return create_app(settings, verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE), clock=clock)


def create(client: TestClient, key: str, document: str) -> Any:
    return post_form(
        client,
        "/staff/questionnaires",
        {"source": "upload", "key": key, "document": document},
        page="/staff/questionnaires",
        follow_redirects=False,
    )


def version_id(response: Any) -> str:
    match = re.search(
        r"/staff/questionnaires/versions/([0-9a-f-]{36})", response.headers["location"]
    )
    assert match, response.headers.get("location")
    return match.group(1)


def stored(version: str, settings: Settings) -> QuestionnaireVersion:
    async def load() -> QuestionnaireVersion:
        async with database(settings, global_fallback=False):
            return await QuestionnaireVersion.get(id=version)

    return run_sync(load())


def audit(devices: Devices, world: World, clock: FakeClock, action: str) -> str:
    sign_in_staff(devices("admin"), world.admin_a, clock)
    return str(devices("admin").get(f"/staff/admin/audit?action={action}").text)


def test_a_doctor_uploads_edits_tests_and_publishes(
    browser: TestClient, world: World, clock: FakeClock, settings: Settings
) -> None:
    devices = Devices(browser)
    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    created = create(doctor, "fever-2", json.dumps(FEVER, ensure_ascii=False))
    assert created.status_code == 303
    draft = version_id(created)
    editor = doctor.get(f"/staff/questionnaires/versions/{draft}")
    assert editor.status_code == 200
    assert "息苦しさはありますか" in editor.text  # structured view and preview
    assert 'class="phone"' in editor.text
    assert "表示条件" in editor.text  # "temp" is shown when fever = yes
    assert "YAML" in editor.text

    # An invalid edit is refused with the linkId and both languages' reason; nothing changes.
    broken = {**FEVER, "item": [*FEVER["item"], {"linkId": "temp", "type": "string"}]}
    refused = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}",
        {"document": json.dumps(broken)},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    assert refused.status_code == 422
    assert "linkId「temp」が複数の項目で使われています。" in refused.text
    assert len(stored(draft, settings).body["item"]) == 4

    # A failing test case blocks publishing; the result names the case.
    failing = [
        *CASES,
        {"name": "誤った期待", "answers": {"fever": False}, "expect": {"enabled": ["temp"]}},
    ]
    saved = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}/tests",
        {"tests": json.dumps(failing, ensure_ascii=False)},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    assert saved.status_code == 200
    assert "誤った期待" in saved.text
    assert "「temp」が表示されていません。" in saved.text
    publishing = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}/publish",
        {},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    assert publishing.status_code == 422
    assert "失敗しているテストケースがあるため公開できません。" in publishing.text
    assert stored(draft, settings).status is VersionStatus.DRAFT

    # Malformed test JSON: 422 and the stored cases stay as they were.
    bad = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}/tests",
        {"tests": "[{"},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    assert bad.status_code == 422
    assert len(stored(draft, settings).tests) == 3

    post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}/tests",
        {"tests": json.dumps(CASES, ensure_ascii=False)},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    published = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}/publish",
        {},
        page=f"/staff/questionnaires/versions/{draft}",
        follow_redirects=False,
    )
    assert published.status_code == 303
    assert stored(draft, settings).status is VersionStatus.PUBLISHED

    # A published version is immutable: an edit is refused and the body stays.
    changed = json.loads(json.dumps(FEVER))
    changed["item"][0]["text"] = "書き換え"
    immutable = post_form(
        doctor,
        f"/staff/questionnaires/versions/{draft}",
        {"document": json.dumps(changed)},
        page=f"/staff/questionnaires/versions/{draft}",
    )
    assert immutable.status_code == 409
    assert stored(draft, settings).body["item"][0]["text"] == "今日の症状"

    # Editing means a new draft, numbered next.
    again = post_form(
        doctor,
        "/staff/questionnaires/keys/fever-2/draft",
        {},
        page="/staff/questionnaires/keys/fever-2",
        follow_redirects=False,
    )
    second = stored(version_id(again), settings)
    assert second.version == 2
    assert second.status is VersionStatus.DRAFT

    log = audit(devices, world, clock, "questionnaire.publish")
    assert "questionnaire.publish" in log
    assert "failure" in log  # the refused attempt is there too


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{oops", "JSON または YAML として読み取れません"),
        (
            "resourceType: Questionnaire\nstatus: draft\nitem:\n  - linkId: a\n    type: colour\n",
            "項目の種類「colour」には対応していません",
        ),
        ("", "定義が空です。"),
    ],
)
def test_bad_uploads_are_422_with_precise_messages_and_nothing_written(
    browser: TestClient,
    world: World,
    clock: FakeClock,
    settings: Settings,
    document: str,
    expected: str,
) -> None:
    sign_in_staff(browser, world.admin_a, clock)
    refused = create(browser, "broken", document)
    assert refused.status_code == 422
    assert expected in refused.text
    assert "/staff/questionnaires/keys/broken" not in browser.get("/staff/questionnaires").text
    browser.cookies.set("tsunagu_lang", "en")
    english = create(browser, "broken", document)
    assert english.status_code == 422
    assert "The definition has problems" in english.text


def test_export_and_import_round_trip_between_clinics(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded, settings: Settings
) -> None:
    devices = Devices(browser)
    sign_in_staff(devices("a"), world.doctor_a, clock)
    exported = devices("a").get(f"/staff/questionnaires/versions/{seeded.version_a}/export")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    document = exported.json()
    assert document["url"] == f"https://tsunagu.dev/fhir/Questionnaire/{world.clinic_a}/fever"
    assert document["version"] == "1"
    assert document["status"] == "active"

    sign_in_staff(devices("b"), world.admin_b, clock)
    taken = create(devices("b"), "", exported.text)  # the key comes from the url: "fever"
    assert taken.status_code == 422
    assert "このキーはすでに使われています" in taken.text
    imported = create(devices("b"), "fever-copy", exported.text)
    assert imported.status_code == 303
    copy = stored(version_id(imported), settings)
    assert copy.key == "fever-copy"
    round_trip = devices("b").get(f"/staff/questionnaires/versions/{copy.id}/export").json()
    for key in ("url", "version", "status"):
        document.pop(key)
        round_trip.pop(key)
    assert round_trip == document


def test_import_into_an_existing_key_makes_the_next_draft(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded, settings: Settings
) -> None:
    sign_in_staff(browser, world.admin_b, clock)
    exported = browser.get(f"/staff/questionnaires/versions/{seeded.version_b}/export").text
    imported = post_form(
        browser,
        "/staff/questionnaires/keys/fever/import",
        {"document": exported},
        page="/staff/questionnaires/keys/fever",
        follow_redirects=False,
    )
    assert imported.status_code == 303
    assert stored(version_id(imported), settings).version == 2


def test_other_clinics_versions_are_not_found(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    for path in (
        f"/staff/questionnaires/versions/{seeded.version_b}",
        f"/staff/questionnaires/versions/{seeded.version_b}/export",
        "/staff/questionnaires/keys/no-such-key",
    ):
        assert browser.get(path).status_code == 404, path
    token = csrf_token(browser, "/staff/questionnaires")
    publishing = browser.post(
        f"/staff/questionnaires/versions/{seeded.version_b}/publish", data={"csrf_token": token}
    )
    assert publishing.status_code == 404
    assert "/staff/questionnaires/keys/fever" in browser.get("/staff/questionnaires").text


def test_reception_may_neither_author_nor_read_answers(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded
) -> None:
    sign_in_staff(browser, world.receptionist_a, clock)
    assert browser.get("/staff/questionnaires").status_code == 403
    answers = browser.get(f"/staff/appointments/{seeded.appointment_a}/questionnaire")
    assert answers.status_code == 403
    assert "咳と熱" not in answers.text


def test_the_doctor_reads_the_answers_of_an_appointment(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded
) -> None:
    devices = Devices(browser)
    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    page = doctor.get(f"/staff/appointments/{seeded.appointment_a}/questionnaire")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "息苦しさがあるため対面で受診してください。" in text  # the red flag
    summary = re.search(r'<textarea id="s-text"[^>]*>(.*?)</textarea>', text, re.S)
    assert summary
    s_text = summary.group(1)
    assert "今日の症状: 咳と熱" in s_text
    assert "熱はありますか: いいえ" in s_text
    assert "⚠ 息苦しさはありますか: はい" in s_text
    assert "39.9" not in s_text  # the temperature was disabled when fever became "no"
    assert "前回から変更" in s_text  # the previous response said 咳 and a fever
    assert "readonly" in text  # copyable without JavaScript

    empty = doctor.get(f"/staff/appointments/{seeded.empty_appointment_a}/questionnaire")
    assert empty.status_code == 200
    assert "まだ回答されていません" in empty.text
    assert doctor.get(f"/staff/appointments/{world.appointment_b}/questionnaire").status_code == 404

    log = audit(devices, world, clock, "form.response.read")
    assert log.count("form.response.read") >= 3
    assert "denied" in log


def test_live_validation_returns_problems_and_a_preview(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    token = csrf_token(browser, "/staff/questionnaires")
    good = browser.post(
        "/staff/questionnaires/validate",
        json={"document": json.dumps(FEVER)},
        headers={"X-CSRF-Token": token},
    )
    assert good.status_code == 200
    assert good.json()["ok"] is True
    assert "息苦しさはありますか" in good.json()["preview"]
    bad = browser.post(
        "/staff/questionnaires/validate",
        json={"document": json.dumps({**FEVER, "item": [{"linkId": "x", "type": "group"}]})},
        headers={"X-CSRF-Token": token},
    )
    problems = bad.json()["problems"]
    assert bad.json()["ok"] is False
    assert problems[0]["link_id"] == "x"
    assert problems[0]["code"] == "group-without-items"
    assert (
        browser.post(
            "/staff/questionnaires/validate", content=b"nope", headers={"X-CSRF-Token": token}
        ).status_code
        == 422
    )


def test_every_built_in_template_can_be_created_and_published(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    sign_in_staff(browser, world.admin_a, clock)
    for number, template in enumerate(versions.templates()):
        created = post_form(
            browser,
            "/staff/questionnaires",
            {"source": "template", "template": template.name, "key": f"t-{number}"},
            page="/staff/questionnaires",
            follow_redirects=False,
        )
        assert created.status_code == 303, (template.name, created.text[:2000])
        draft = version_id(created)
        published = post_form(
            browser,
            f"/staff/questionnaires/versions/{draft}/publish",
            {},
            page=f"/staff/questionnaires/versions/{draft}",
            follow_redirects=False,
        )
        assert published.status_code == 303, template.name


def test_the_demo_questionnaires_are_published_and_linked_to_the_demo_menus(
    settings: Settings, world: World
) -> None:
    from patient_portal.demo_forms import DEMO_QUESTIONNAIRES, seed_demo_questionnaires

    async def run() -> tuple[list[str], list[str], str | None, str | None]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await Clinic.get(id=world.clinic_a)
                first_visit, _ = await make_menu(clinic)
                await Menu.filter(id=first_visit.id).update(title_ja="内科 初診(対面)")
                chosen, _ = await make_menu(clinic)
                await Menu.filter(id=chosen.id).update(
                    title_ja="花粉症 オンライン初診", questionnaire_id="clinic-choice"
                )
                published = await seed_demo_questionnaires(world.clinic_a)
                again = await seed_demo_questionnaires(world.clinic_a)
                keys = await versions.clinic_versions(world.clinic_a)
                for found in keys:
                    if found.key in DEMO_QUESTIONNAIRES:
                        assert found.published is not None
                        _, results = versions.results_of(found.published)
                        assert results
                        assert all(r.passed for r in results), found.key
                linked = await Menu.get(id=first_visit.id)
                kept = await Menu.get(id=chosen.id)
                return published, again, linked.questionnaire_id, kept.questionnaire_id

    published, again, linked, kept = run_sync(run())
    assert sorted(published) == sorted(DEMO_QUESTIONNAIRES)
    assert again == []
    assert linked == "naika-shoshin"
    assert kept == "clinic-choice"  # a clinic's own choice is not overwritten


def test_the_list_shows_which_menus_use_a_questionnaire_and_which_ask_nothing(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    listing = browser.get("/staff/questionnaires").text
    assert "発熱外来" in listing
    warning = listing.split('class="alert"')[1].split("</div>")[0]
    assert "健診" in warning
    assert "gone" in warning
    assert "発熱外来" not in warning
    assert "発熱外来" in browser.get("/staff/questionnaires/keys/fever").text


def test_the_yaml_view_saves_back_unchanged(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded, settings: Settings
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    drafted = post_form(
        browser,
        "/staff/questionnaires/keys/fever/draft",
        {},
        page="/staff/questionnaires/keys/fever",
        follow_redirects=False,
    )
    draft = version_id(drafted)
    before = stored(draft, settings).body
    editor = browser.get(f"/staff/questionnaires/versions/{draft}?format=yaml").text
    match = re.search(r'<textarea id="f-definition"[^>]*>(.*?)</textarea>', editor, re.S)
    assert match
    source = html.unescape(match.group(1))
    assert source.startswith("resourceType: Questionnaire")
    saved = post_form(
        browser,
        f"/staff/questionnaires/versions/{draft}",
        {"document": source},
        page=f"/staff/questionnaires/versions/{draft}",
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert stored(draft, settings).body == before


def test_the_structured_view_edits_wording_and_required(
    browser: TestClient, world: World, clock: FakeClock, seeded: Seeded, settings: Settings
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    drafted = post_form(
        browser,
        "/staff/questionnaires/keys/fever/draft",
        {},
        page="/staff/questionnaires/keys/fever",
        follow_redirects=False,
    )
    draft = version_id(drafted)
    editor = f"/staff/questionnaires/versions/{draft}"
    fields = {f"text:{item['linkId']}": item["text"] for item in FEVER["item"]}
    fields["text:temp"] = "いちばん高い体温"
    token = csrf_token(browser, editor)
    saved = browser.post(
        f"{editor}/items",
        data={**fields, "required": ["complaint", "fever"], "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    items = {i["linkId"]: i for i in stored(draft, settings).body["item"]}
    assert items["temp"]["text"] == "いちばん高い体温"
    assert items["fever"]["required"] is True
    assert items["complaint"]["required"] is True
    assert "required" not in items["breath"]
    assert stored(draft, settings).body["extension"] == FEVER["extension"]  # untouched
    # Not on a published version.
    refused = browser.post(
        f"/staff/questionnaires/versions/{seeded.version_a}/items",
        data={**fields, "csrf_token": token},
    )
    assert refused.status_code == 409
