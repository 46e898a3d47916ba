"""A patient answers the menu's questionnaire on the way to confirming a booking (no JavaScript:
every section is a round trip), and the server is the authority."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from PIL import Image
from starlette.testclient import TestClient
from tortoise import connections

from booking.models import Appointment, AppointmentStatus, Clinic, Menu, VisitMode
from interview_forms import form_view
from interview_forms.definition import from_fhir
from interview_forms.models import FormAttachment, FormResponse, ResponseStatus
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, SMS_CODE, World
from tests.support import forms
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import Devices, post_form, sign_in_patient, sign_in_staff


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


def _hold(browser: TestClient, menu_id: str, clock: FakeClock) -> str:
    day = (clock.now + timedelta(days=3)).date().isoformat()
    page = f"/clinics/clinic-a/menus/{menu_id}?day={day}"
    start = re.search(r'name="start" value="([^"]+)"', browser.get(page).text)
    doctor = re.search(r'name="practitioner_id" value="([^"]+)"', browser.get(page).text)
    assert start
    assert doctor
    held = post_form(
        browser,
        f"/clinics/clinic-a/menus/{menu_id}/hold",
        {"practitioner_id": doctor.group(1), "start": start.group(1)},
        page=page,
        follow_redirects=False,
    )
    return str(held.headers["location"]).split("/")[2]


def _post(
    browser: TestClient,
    appointment_id: str,
    fields: dict[str, Any],
    files: dict[str, Any] | None = None,
) -> Any:
    """A section's form as a browser without JavaScript posts it (multipart, like the page),
    with the page's own hidden fields (its CSRF token and the questions it showed)."""
    url = f"/appointments/{appointment_id}/questionnaire"
    page = browser.get(f"{url}?section={fields.get('section', '0')}").text
    hidden = {
        "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', page)[-1],
        "shown": re.findall(r'name="shown" value="([^"]+)"', page),
    }
    return browser.post(
        url,
        data={**hidden, **fields},
        files=files or {"_": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _field_hidden(html: str, key: str) -> bool:
    match = re.search(
        rf'<div class="q-field[^"]*" data-field-key="{re.escape(key)}"( hidden)?>', html
    )
    assert match, key
    return match.group(1) is not None


def test_a_patient_answers_section_by_section_then_books(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock, settings: Settings
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    appointment_id = _hold(browser, menus["clinic"], clock)
    confirm = f"/appointments/{appointment_id}/confirm"
    assert "次へ:問診票" in browser.get(confirm).text
    to_form = post_form(
        browser, confirm, {"patient_id": world.patient_a}, page=confirm, follow_redirects=False
    )
    assert to_form.headers["location"] == f"/appointments/{appointment_id}/questionnaire"

    first = browser.get(to_form.headers["location"]).text
    assert "2 ページ中 1 ページ目" in first
    assert not _field_hidden(first, "fever")
    assert _field_hidden(first, "temp")  # only once there is a fever

    # Yes to fever: the temperature question appears, so the section is shown again.
    more = _post(
        browser,
        appointment_id,
        {"section": "0", "action": "next", "a:fever": "true", "shown": ["fever", "breathing"]},
    )
    assert more.status_code == 200
    assert "質問が追加されました" in more.text
    assert not _field_hidden(more.text, "temp")
    # A temperature that is not a number, then one out of range: clear errors, nothing lost.
    wrong = _post(
        browser,
        appointment_id,
        {
            "section": "0",
            "action": "next",
            "a:fever": "true",
            "a:temp": "とても高い",
            "shown": ["fever", "temp", "breathing"],
        },
    )
    assert wrong.status_code == 422
    assert 'value="とても高い"' in wrong.text  # what was typed is still there
    high = _post(
        browser,
        appointment_id,
        {
            "section": "0",
            "action": "next",
            "a:fever": "true",
            "a:temp": "48",
            "shown": ["fever", "temp", "breathing"],
        },
    )
    assert high.status_code == 422
    ok = _post(
        browser,
        appointment_id,
        {
            "section": "0",
            "action": "next",
            "a:fever": "true",
            "a:temp": "３８．５",
            "shown": ["fever", "temp", "breathing"],
        },
    )
    assert ok.status_code == 303
    assert ok.headers["location"].endswith("section=1")

    # Section 2: a second medicine, a file that is not a photo, then a real photo.
    added = _post(
        browser,
        appointment_id,
        {
            "section": "1",
            "action": "add:meds",
            "a:meds[0]/med_name": "カロナール",
            "a:meds[0]/dose": "3",
        },
    )
    assert added.status_code == 200
    assert 'name="a:meds[1]/med_name"' in added.text
    assert 'value="カロナール"' in added.text
    fake = _post(
        browser,
        appointment_id,
        {
            "section": "1",
            "action": "send",
            "a:meds[0]/med_name": "カロナール",
            "a:meds[0]/dose": "3",
            "a:meds[1]/med_name": "ムコダイン",
            "a:meds[1]/dose": "2",
        },
        files={"a:notebook": ("notebook.png", b"%PDF-1.7 not a photo", "image/png")},
    )
    assert fake.status_code == 422
    assert "写真(JPEG・PNG・WebP)だけ" in fake.text
    sent = _post(
        browser,
        appointment_id,
        {
            "section": "1",
            "action": "send",
            "a:meds[0]/med_name": "カロナール",
            "a:meds[0]/dose": "3",
            "a:meds[1]/med_name": "ムコダイン",
            "a:meds[1]/dose": "2",
        },
        files={"a:notebook": ("notebook.png", _png(), "image/png")},
    )
    assert sent.status_code == 303, sent.text
    done = browser.get(sent.headers["location"]).text
    assert "ご回答ありがとうございました" in done
    assert "予約の確定へ" in done

    # The server's record: a valid FHIR R4 QuestionnaireResponse of exactly this version.
    async def stored() -> tuple[FormResponse, list[FormAttachment], list[Any]]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                response = await FormResponse.get(appointment_id=appointment_id)
                attachments = await FormAttachment.filter(form_response=response)
                raw = await connections.get("default").execute_query_dict(
                    "SELECT answers, response FROM forms_response"
                )
                return response, attachments, raw

    response, attachments, raw = run_sync(stored())
    assert response.status is ResponseStatus.COMPLETED
    fhir = QuestionnaireResponse.model_validate(response.response)
    assert fhir.questionnaire == "https://tsunagu.dev/fhir/Questionnaire/test/fever|1"
    assert response.structured["temp"] == [38.5]
    assert list(response.answers["meds"]) == [
        {"med_name": "カロナール", "dose": 3},
        {"med_name": "ムコダイン", "dose": 2},
    ]
    assert len(attachments) == 1
    assert attachments[0].content_type == "image/png"
    assert attachments[0].data == _png()
    for row in raw:  # at rest, nothing readable
        assert str(row["answers"]).startswith("v1.")
        assert "カロナール" not in str(row["response"])

    booked = post_form(
        browser, confirm, {"patient_id": world.patient_a}, page=confirm, follow_redirects=False
    )
    assert booked.headers["location"] == "/appointments"

    # The clinic: the doctor reaches the answers from the day's list; the receptionist cannot.
    day = (clock.now + timedelta(days=3)).date().isoformat()
    devices = Devices(browser)
    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    answers_link = f"/staff/appointments/{appointment_id}/questionnaire"
    assert answers_link in doctor.get(f"/staff/schedule?day={day}").text

    async def doctor_of() -> str:
        async with database(settings, global_fallback=False):
            booked_row = await Appointment.get(id=appointment_id)
            return str(booked_row.practitioner_id)  # type: ignore[attr-defined]

    practitioner = run_sync(doctor_of())
    week = f"/staff/calendar?view=week&day={day}&practitioner={practitioner}"
    assert answers_link in doctor.get(week).text
    read = doctor.get(answers_link)
    assert read.status_code == 200
    assert "カロナール" in read.text
    assert "38.5" in read.text
    clock.advance(seconds=30)
    reception = devices("reception")
    sign_in_staff(reception, world.receptionist_a, clock)
    assert answers_link not in reception.get(f"/staff/schedule?day={day}").text
    assert reception.get(answers_link).status_code == 403
    # The photo: to the clinic's clinicians and the patient's own account, nobody else.
    photo = f"/staff/attachments/{attachments[0].id}"
    assert photo in read.text
    assert reception.get(photo).status_code == 403
    shown = devices("doctor").get(photo)
    assert shown.status_code == 200
    assert shown.content == _png()
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["cache-control"] == "no-store"
    patient = devices("patient")
    sign_in_patient(patient, PHONE_A, SMS_CODE)
    own = f"/appointments/{appointment_id}/questionnaire/attachments/{attachments[0].id}"
    assert patient.get(own).content == _png()
    stranger = devices("stranger")
    sign_in_patient(stranger, PHONE_B, SMS_CODE)
    assert stranger.get(own).status_code == 404


def test_answers_resume_on_another_device_and_stay_private(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    devices = Devices(browser)
    phone = devices("phone")
    sign_in_patient(phone, PHONE_A, SMS_CODE)
    appointment_id = _hold(phone, menus["clinic"], clock)
    confirm = f"/appointments/{appointment_id}/confirm"
    post_form(phone, confirm, {"patient_id": world.patient_a}, page=confirm)
    _post(
        phone,
        appointment_id,
        {"section": "0", "action": "next", "a:fever": "false", "shown": ["fever", "breathing"]},
    )
    tablet = devices("tablet")
    sign_in_patient(tablet, PHONE_A, SMS_CODE)
    resumed = tablet.get(f"/appointments/{appointment_id}/questionnaire?section=0").text
    assert re.search(r'value="false" checked', resumed)
    other = devices("other")
    sign_in_patient(other, PHONE_B, SMS_CODE)
    assert other.get(f"/appointments/{appointment_id}/questionnaire").status_code == 404
    nobody = devices("nobody")
    assert nobody.get(
        f"/appointments/{appointment_id}/questionnaire", follow_redirects=False
    ).status_code in (303, 401)


def test_an_emergency_answer_stops_an_online_booking(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock, settings: Settings
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    appointment_id = _hold(browser, menus["online"], clock)
    confirm = f"/appointments/{appointment_id}/confirm"
    post_form(browser, confirm, {"patient_id": world.patient_a}, page=confirm)
    _post(
        browser,
        appointment_id,
        {
            "section": "0",
            "action": "next",
            "a:fever": "false",
            "a:breathing": "true",
            "shown": ["fever", "breathing"],
        },
    )
    sent = _post(browser, appointment_id, {"section": "1", "action": "send"})
    assert sent.status_code == 303
    done = browser.get(sent.headers["location"]).text
    assert "今すぐ救急車(119番)を呼んでください" in done
    assert 'href="tel:119"' in done
    assert "オンライン診療を受けられません" in done
    assert f"/clinics/clinic-a/menus/{menus['clinic']}" in done  # the in-person visit instead

    async def status() -> AppointmentStatus:
        async with database(settings, global_fallback=False):
            return (await Appointment.get(id=appointment_id)).status

    assert run_sync(status()) is AppointmentStatus.CANCELLED  # the seat is let go
    again = post_form(
        browser, confirm, {"patient_id": world.patient_a}, page=confirm, follow_redirects=False
    )
    assert again.status_code in (303, 409)
    assert run_sync(status()) is AppointmentStatus.CANCELLED  # never booked


TEMPLATES = sorted(
    path.stem
    for path in (Path(__file__).parents[3] / "interview_forms" / "templates").glob("*.json")
)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_built_in_questionnaire_renders_section_by_section(
    template: str, settings: Settings, world: World, clock: FakeClock, browser: TestClient
) -> None:
    body = json.loads(
        (
            Path(__file__).parents[3] / "interview_forms" / "templates" / f"{template}.json"
        ).read_text()
    )

    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await Clinic.get(id=world.clinic_a)
                await forms.publish(world.clinic_a, key=template, body=body)
                menu, _ = await make_menu(clinic)
                await Menu.filter(id=menu.id).update(questionnaire_id=template)
                return str(menu.id)

    menu_id = run_sync(seed())
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    appointment_id = _hold(browser, menu_id, clock)
    confirm = f"/appointments/{appointment_id}/confirm"
    post_form(browser, confirm, {"patient_id": world.patient_a}, page=confirm)
    count = len(form_view.sections(from_fhir(body)))
    assert count >= 2
    for language in ("ja", "en"):
        browser.cookies.set("tsunagu_lang", language)
        for index in range(count):
            page = browser.get(f"/appointments/{appointment_id}/questionnaire?section={index}")
            assert page.status_code == 200, (template, index, language)
            progress = (
                f"{count} ページ中 {index + 1}"
                if language == "ja"
                else f"Part {index + 1} of {count}"
            )
            assert progress in page.text
    english = browser.get(f"/appointments/{appointment_id}/questionnaire?section=0").text
    first_section = form_view.sections(from_fhir(body))[0]
    first_question = next(i for top in first_section.items for i in top.walk() if i.is_question)
    assert form_view.item_text(first_question, "en") in english.replace("&#39;", "'")
