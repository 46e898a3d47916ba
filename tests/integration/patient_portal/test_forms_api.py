"""The questionnaire through the API: definition, drafts with live feedback, sending, and the
booking that waits for it."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from starlette.testclient import TestClient

from booking.models import Clinic, Menu, VisitMode
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, World
from tests.integration.patient_portal.test_booking import free, hold, token
from tests.integration.patient_portal.test_clinic_setup import bearer as staff_token
from tests.support import forms
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync


@pytest.fixture
def menus(settings: Settings, world: World) -> dict[str, str]:
    async def seed() -> dict[str, str]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await Clinic.get(id=world.clinic_a)
                await forms.publish(world.clinic_a)
                at_clinic, _ = await make_menu(clinic)
                online, _ = await make_menu(clinic, mode=VisitMode.ONLINE)
                for menu in (at_clinic, online):
                    await Menu.filter(id=menu.id).update(questionnaire_id="fever")
                return {"clinic": str(at_clinic.id), "online": str(online.id)}

    return run_sync(seed())


def test_answer_then_book_through_the_api(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    auth = token(browser, PHONE_A)
    held = hold(browser, auth, menus["clinic"], free(browser, menus["clinic"])[0]).json()
    base = f"/api/v1/appointments/{held['id']}"
    early = browser.post(f"{base}/confirm", json={"patient_id": world.patient_a}, headers=auth)
    assert early.status_code == 409
    assert early.json()["questionnaire"] == f"{base}/questionnaire"

    blank = browser.get(f"{base}/questionnaire", headers=auth).json()
    assert blank["status"] == "not_started"
    assert blank["questionnaire"]["resourceType"] == "Questionnaire"

    draft = browser.put(
        f"{base}/questionnaire",
        json={"patient_id": world.patient_a, "answers": {"fever": True}},
        headers=auth,
    )
    assert draft.status_code == 200, draft.text
    assert "temp" in draft.json()["enabled"]
    assert draft.json()["missing_required"] == ["temp"]

    wrong = browser.post(
        f"{base}/questionnaire/submit",
        json={"patient_id": world.patient_a, "answers": {"fever": True, "temp": 51}},
        headers=auth,
    )
    assert wrong.status_code == 422
    assert [e["key"] for e in wrong.json()["answer_errors"]] == ["temp"]
    assert all(e["message_ja"] and e["message_en"] for e in wrong.json()["answer_errors"])

    # An answer to a question that no longer applies is dropped, not stored.
    sent = browser.post(
        f"{base}/questionnaire/submit",
        json={
            "patient_id": world.patient_a,
            "answers": {"fever": False, "temp": 39.0, "meds": [{"med_name": "カロナール"}]},
        },
        headers=auth,
    )
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["online_blocked"] is False
    response = QuestionnaireResponse.model_validate(body["response"])
    answered = [item.linkId for group in response.item or [] for item in group.item or []]
    assert "temp" not in answered
    assert "fever" in answered

    again = browser.post(
        f"{base}/questionnaire/submit",
        json={"patient_id": world.patient_a, "answers": {"fever": False}},
        headers=auth,
    )
    assert again.status_code == 409
    booked = browser.post(f"{base}/confirm", json={"patient_id": world.patient_a}, headers=auth)
    assert booked.status_code == 200, booked.text
    assert booked.json()["status"] == "booked"

    other = token(browser, PHONE_B)
    assert browser.get(f"{base}/questionnaire", headers=other).status_code == 404

    # The karte bridge reads the answers with the S-note summary, as a clinician.
    for_clinic = f"/api/v1/staff/appointments/{held['id']}/questionnaire"
    doctor = staff_token(browser, world.doctor_a, clock)
    read = browser.get(for_clinic, headers=doctor)
    assert read.status_code == 200, read.text
    body = read.json()
    assert "カロナール" in body["summary_ja"]
    assert "体温" not in body["summary_ja"]  # the temperature no longer applied: dropped
    assert body["questionnaire"] == "https://tsunagu.dev/fhir/Questionnaire/test/fever|1"
    clock.advance(seconds=30)
    reception = staff_token(browser, world.receptionist_a, clock)
    assert browser.get(for_clinic, headers=reception).status_code == 403


def test_red_flags_release_an_online_hold(
    browser: TestClient, world: World, menus: dict[str, str]
) -> None:
    auth = token(browser, PHONE_A)
    held = hold(browser, auth, menus["online"], free(browser, menus["online"])[0]).json()
    base = f"/api/v1/appointments/{held['id']}"
    sent = browser.post(
        f"{base}/questionnaire/submit",
        json={"patient_id": world.patient_a, "answers": {"fever": False, "breathing": True}},
        headers=auth,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["online_blocked"] is True
    assert [o["action"] for o in sent.json()["outcomes"]] == ["call-ambulance"]
    confirm = browser.post(f"{base}/confirm", json={"patient_id": world.patient_a}, headers=auth)
    assert confirm.status_code == 409
