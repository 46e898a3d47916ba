"""Walks the whole route table as attackers: another clinic's staff, another patient, nobody.

A new route is covered without touching this file, unless it has a path parameter this file has
never seen — then the test fails and asks for a filler, which is the point.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from patient_portal.auth.policy import Action, Principal, Resource, Role, decide
from tests.integration.patient_portal.conftest import PHONE_A, SMS_CODE, World
from tests.support.clock import FakeClock
from tests.support.web import Devices, csrf_token, sign_in_patient, sign_in_staff

PUBLIC = {
    "/",
    "/healthz",
    "/readyz",
    "/language",
    "/signin",
    "/signin/code",
    "/signout",
    "/staff/signin",
    "/staff/signin/code",
    "/staff/signin/enrol",
    "/staff/signout",
    "/staff/invitation/{token}",
    "/a/{token}",  # a signed link shows clinic and time only; the rest needs sign-in
    "/api/v1/health",
    "/api/v1/openapi.json",
    "/api/v1/preferences/language",
    "/api/v1/auth/sms/start",
    "/api/v1/auth/sms/verify",
    "/api/v1/auth/staff/signin",
    "/api/v1/auth/token/refresh",
    "/api/v1/auth/password/signin",
    "/signin/password",
    "/passkeys/signin/options",
    "/passkeys/signin",
    "/clinics/{slug}",
    "/clinics/{slug}/menus/{menu_id}",
    "/api/v1/clinics/{slug}/menus",
    "/api/v1/clinics/{slug}/menus/{menu_id}/slots",
}
# Endpoints that scripts call (fetch): they answer 401 like the API rather than redirecting.
SCRIPT_ENDPOINTS = ("/api/", "/passkeys/")
PROFILE = {
    "family_name": "攻撃",
    "given_name": "者",
    "family_name_kana": "こうげき",
    "given_name_kana": "しゃ",
    "birth_date": "1990-01-01",
    "sex": "unknown",
}
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/patients/{patient_id}": PROFILE,
    "/api/v1/me/patients": {**PROFILE, "relationship": "child"},
    "/api/v1/holds": {
        "clinic": "clinic-b",
        "menu_id": "00000000-0000-4000-8000-00000000feed",
        "practitioner_id": "00000000-0000-4000-8000-00000000feed",
        "start": "2030-01-07T10:00:00+09:00",
    },
    "/api/v1/appointments/{appointment_id}/confirm": {"patient_id": "someone else"},
    "/api/v1/waitlist": {
        "clinic": "clinic-b",
        "menu_id": "00000000-0000-4000-8000-00000000feed",
        "patient_id": "someone else",
        "first_day": "2030-01-07",
        "last_day": "2030-01-07",
    },
    "/api/v1/staff/clinic/profile": {
        "name": "乗っ取り",
        "name_kana": "ノットリ",
        "postal_code": "100-0001",
        "address": "東京都",
        "phone": "03-1000-0000",
        "slug": "taken-over",
    },
    "/api/v1/staff/practitioners": {"display_name": "偽 医師", "display_name_kana": "ニセ イシ"},
    "/api/v1/staff/practitioners/{practitioner_id}": {
        "display_name": "偽 医師",
        "display_name_kana": "ニセ イシ",
    },
    "/api/v1/staff/practitioners/{practitioner_id}/hours": {
        "weekdays": [0],
        "start": "09:00",
        "end": "10:00",
    },
    "/api/v1/staff/menus": {
        "title_ja": "偽",
        "title_en": "Fake",
        "mode": "in_person",
        "visit_kind": "either",
        "duration_minutes": 15,
    },
    "/api/v1/staff/menus/{menu_id}": {
        "title_ja": "偽",
        "title_en": "Fake",
        "mode": "in_person",
        "visit_kind": "either",
        "duration_minutes": 15,
    },
    "/api/v1/staff/exceptions": {"day": "2030-01-07", "kind": "closed_day"},
    "/api/v1/consults/{appointment_id}/identity": {"document": "passport", "result": "confirmed"},
    "/api/v1/consults/{appointment_id}/precall": {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"},
    "/api/v1/consults/{appointment_id}/recording": {
        "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
        "segment": 1,
    },
    "/api/v1/appointments/{appointment_id}/questionnaire": {
        "patient_id": "someone else",
        "answers": {"fever": True},
    },
    "/api/v1/appointments/{appointment_id}/questionnaire/submit": {
        "patient_id": "someone else",
        "answers": {"fever": True},
    },
    "/api/v1/appointments/{appointment_id}/reschedule": {
        "practitioner_id": "00000000-0000-4000-8000-00000000feed",
        "start": "2030-01-07T10:00:00+09:00",
    },
}


# 404 hides whether the record exists; 403 for actions outside the role; 401 for an API token
# of the other kind of account; 303 back to sign-in for pages of the other kind of account.
REFUSED = (303, 401, 403, 404)


def fillers(world: World) -> dict[str, str]:
    """Every path parameter → a value that belongs to somebody else."""
    return {
        "patient_id": world.patient_b,
        "clinic_id": world.clinic_b,
        "staff_id": world.doctor_b.id,
        "token": "not-a-real-invitation-token",
        "action": "disable",
        "passkey_id": "00000000-0000-4000-8000-00000000beef",
        "appointment_id": world.appointment_b,
        "entry_id": "00000000-0000-4000-8000-0000000000aa",
        "slug": "clinic-b",
        "menu_id": "00000000-0000-4000-8000-00000000feed",
        # clinic set-up and calendar (ids of nothing: clinic A's staff must get 404, not a page)
        "practitioner_id": "00000000-0000-4000-8000-00000000f00d",
        "hours_id": "00000000-0000-4000-8000-00000000f00e",
        "exception_id": "00000000-0000-4000-8000-00000000f00f",
        # questionnaires: authoring (version), answers (response, attachment)
        "version_id": "00000000-0000-4000-8000-00000000f010",
        "response_id": "00000000-0000-4000-8000-00000000f011",
        "attachment_id": "00000000-0000-4000-8000-00000000f012",
        "key": "no-such-questionnaire",
        "check_id": "00000000-0000-4000-8000-00000000f013",
        "recording_id": "00000000-0000-4000-8000-00000000f014",
    }


def routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Mount) or not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, route.path))
    return found


def call(client: TestClient, method: str, path: str, template: str, bearer: str | None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    if template.startswith("/api/"):
        body = BODIES.get(template)
        return client.request(
            method,
            path,
            json=body if method != "GET" else None,
            headers=headers,
            follow_redirects=False,
        )
    if method == "GET":
        return client.get(path, follow_redirects=False)
    data = {**PROFILE, "csrf_token": csrf_token(client, "/")}
    return client.request(method, path, data=data, follow_redirects=False)


def walk(client: TestClient, world: World, bearer: str | None) -> list[tuple[str, str, int]]:
    values = fillers(world)
    results = []
    for method, template in routes(client.app):
        params = re.findall(r"{(\w+)}", template)
        if not params or template in PUBLIC:
            continue
        missing = [p for p in params if p not in values]
        assert not missing, f"add a filler for {missing} (route {template})"
        path = template.format(**values)
        response = call(client, method, path, template, bearer)
        results.append((method, template, response.status_code))
        if response.status_code == 303:
            assert response.headers["location"] in ("/signin", "/staff/signin"), template
        assert "二子" not in response.text, (method, template)  # patient B's name never shows
    return results


def test_staff_of_another_clinic_reach_nothing(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    for staff in (world.doctor_a, world.admin_a, world.receptionist_a):
        browser.cookies.clear()
        sign_in_staff(browser, staff, clock)
        token = browser.post(
            "/api/v1/auth/staff/signin",
            json={
                "login_id": staff.login_id,
                "password": staff.password,
                "code": pyotp.TOTP(staff.totp_secret).at(clock.now),
            },
        )
        clock.advance(seconds=30)
        bearer = token.json()["access_token"] if token.status_code == 200 else None
        for method, template, status in walk(browser, world, bearer):
            assert status in REFUSED, (staff.login_id, method, template, status)


def test_a_patient_reaches_no_other_patient(browser: TestClient, world: World) -> None:
    browser.post("/api/v1/auth/sms/start", json={"phone": PHONE_A})
    verified = browser.post("/api/v1/auth/sms/verify", json={"phone": PHONE_A, "code": SMS_CODE})
    bearer = verified.json()["access_token"]
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    for method, template, status in walk(browser, world, bearer):
        assert status in REFUSED, (method, template, status)


def test_nobody_signed_in_reaches_nothing_private(browser: TestClient, world: World) -> None:
    values = fillers(world)
    for method, template in routes(browser.app):
        if template in PUBLIC:
            continue
        path = template.format(**{k: values[k] for k in re.findall(r"{(\w+)}", template)})
        response = call(browser, method, path, template, None)
        if template.startswith(SCRIPT_ENDPOINTS):
            assert response.status_code == 401, (method, template)
        else:
            assert response.status_code == 303, (method, template)
            assert response.headers["location"] in ("/signin", "/staff/signin"), template


def test_every_form_refuses_a_missing_or_foreign_csrf_token(
    browser: TestClient, world: World
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    values = fillers(world)
    checked = 0
    for method, template in routes(browser.app):
        if method == "GET" or template.startswith("/api/"):
            continue
        path = template.format(**{k: values[k] for k in re.findall(r"{(\w+)}", template)})
        for token in ("", "0" * 64):
            response = browser.request(
                method, path, data={"csrf_token": token, **PROFILE}, follow_redirects=False
            )
            assert response.status_code == 403, (method, template, token)
        checked += 1
    assert checked >= 10


def test_the_api_needs_the_csrf_header_when_a_session_cookie_rides_along(
    browser: TestClient, world: World
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    refused = browser.post("/api/v1/me/patients", json={**PROFILE, "relationship": "child"})
    assert refused.status_code == 403
    allowed = browser.post(
        "/api/v1/me/patients",
        json={**PROFILE, "relationship": "child"},
        headers={"X-CSRF-Token": csrf_token(browser, "/account")},
    )
    assert allowed.status_code == 201


def test_reads_and_refusals_are_audited_and_the_admin_sees_them(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    sign_in_staff(devices("doctor"), world.doctor_a, clock)
    assert devices("doctor").get(f"/staff/patients/{world.patient_a}").status_code == 200
    assert devices("doctor").get(f"/staff/patients/{world.patient_b}").status_code == 404
    sign_in_staff(devices("admin"), world.admin_a, clock)
    log = devices("admin").get("/staff/admin/audit?action=patient.read").text
    rows = [row for row in log.split("<tr>") if row.startswith("<td>") and "patient.read" in row]
    outcomes = sorted(row.split("<td>")[6].split("</td>")[0] for row in rows)
    assert outcomes == ["denied", "success"]
    assert world.doctor_a.id[:8] in log
    export = devices("admin").get("/staff/admin/audit.csv")
    assert export.headers["content-type"].startswith("text/csv")
    assert "patient.read" in export.text
    # The export itself is in the log; clinic B's admin sees none of clinic A's entries.
    sign_in_staff(devices("admin-b"), world.admin_b, clock)
    other = devices("admin-b").get("/staff/admin/audit").text
    assert world.doctor_a.id[:8] not in other
    assert "audit.export" in devices("admin").get("/staff/admin/audit?action=audit.export").text


PRINCIPALS = {
    "patient": Principal("patient", "acc", Role.PATIENT, patient_ids=frozenset({"p1"})),
    "receptionist": Principal("staff", "s1", Role.RECEPTIONIST, clinic_id="c1"),
    "nurse": Principal("staff", "s2", Role.NURSE, clinic_id="c1"),
    "doctor": Principal("staff", "s3", Role.DOCTOR, clinic_id="c1"),
    "clinic_admin": Principal("staff", "s4", Role.CLINIC_ADMIN, clinic_id="c1"),
    "operator": Principal("staff", "s5", Role.PLATFORM_OPERATOR),
}
OWN_PATIENT = Resource("patient", patient_id="p1", clinic_ids=frozenset({"c1"}))
OTHER_PATIENT = Resource("patient", patient_id="p2", clinic_ids=frozenset({"c2"}))
OWN_CLINIC = Resource("clinic", "c1", clinic_ids=frozenset({"c1"}))
OTHER_CLINIC = Resource("clinic", "c2", clinic_ids=frozenset({"c2"}))
OWN_ACCOUNT_HOLD = Resource("appointment", "a1", clinic_ids=frozenset({"c1"}), account_id="acc")

# (action, resource, principals allowed) — everything else is refused.
MATRIX = [
    (
        Action.PATIENT_READ,
        OWN_PATIENT,
        {"patient", "receptionist", "nurse", "doctor", "clinic_admin"},
    ),
    (Action.PATIENT_READ, OTHER_PATIENT, set()),
    (Action.PATIENT_WRITE, OWN_PATIENT, {"patient", "receptionist", "clinic_admin"}),
    (Action.PATIENT_WRITE, OTHER_PATIENT, set()),
    (Action.PATIENT_LIST, OWN_CLINIC, {"receptionist", "nurse", "doctor", "clinic_admin"}),
    (Action.PATIENT_LIST, OTHER_CLINIC, set()),
    (Action.STAFF_INVITE, OWN_CLINIC, {"clinic_admin"}),
    (Action.STAFF_INVITE, OTHER_CLINIC, set()),
    (Action.STAFF_DISABLE, OWN_CLINIC, {"clinic_admin"}),
    (Action.STAFF_RESET_MFA, OWN_CLINIC, {"clinic_admin"}),
    (Action.AUDIT_READ, OWN_CLINIC, {"clinic_admin"}),
    (Action.AUDIT_READ, OTHER_CLINIC, set()),
    (Action.AUDIT_EXPORT, OWN_CLINIC, {"clinic_admin"}),
    (
        Action.CLINIC_READ,
        OWN_CLINIC,
        {"receptionist", "nurse", "doctor", "clinic_admin", "operator"},
    ),
    (Action.CLINIC_READ, OTHER_CLINIC, {"operator"}),
    (Action.APPOINTMENT_BOOK, OWN_PATIENT, {"patient"}),
    (Action.APPOINTMENT_BOOK, OTHER_PATIENT, set()),
    (
        Action.APPOINTMENT_READ,
        OWN_PATIENT,
        {"patient", "receptionist", "nurse", "doctor", "clinic_admin"},
    ),
    (Action.APPOINTMENT_READ, OTHER_PATIENT, set()),
    (
        Action.APPOINTMENT_READ,
        OWN_ACCOUNT_HOLD,
        {"patient", "receptionist", "nurse", "doctor", "clinic_admin"},
    ),
    (Action.APPOINTMENT_CANCEL, OWN_PATIENT, {"patient", "receptionist", "clinic_admin"}),
    (Action.APPOINTMENT_CANCEL, OTHER_PATIENT, set()),
    (Action.SCHEDULE_READ, OWN_CLINIC, {"receptionist", "nurse", "doctor", "clinic_admin"}),
    (Action.SCHEDULE_READ, OTHER_CLINIC, set()),
    (Action.APPOINTMENT_MANAGE, OWN_CLINIC, {"receptionist", "nurse", "doctor", "clinic_admin"}),
    (Action.APPOINTMENT_MANAGE, OTHER_CLINIC, set()),
    (Action.CLINIC_MANAGE, OWN_CLINIC, {"clinic_admin"}),
    (Action.CLINIC_MANAGE, OTHER_CLINIC, set()),
    (Action.FORM_MANAGE, OWN_CLINIC, {"clinic_admin", "doctor"}),
    (Action.FORM_MANAGE, OTHER_CLINIC, set()),
    (Action.FORM_ANSWER, OWN_PATIENT, {"patient"}),
    (Action.FORM_ANSWER, OTHER_PATIENT, set()),
    (Action.FORM_RESPONSE_READ, OWN_PATIENT, {"patient", "nurse", "doctor", "clinic_admin"}),
    (Action.FORM_RESPONSE_READ, OTHER_PATIENT, set()),
    # a consult's recording: the clinic's clinical staff only, never the patient or reception
    (Action.RECORDING_READ, OWN_PATIENT, {"nurse", "doctor", "clinic_admin"}),
    (Action.RECORDING_READ, OTHER_PATIENT, set()),
]


@pytest.mark.parametrize(("action", "resource", "allowed"), MATRIX)
def test_role_action_matrix(action: Action, resource: Resource, allowed: set[str]) -> None:
    for name, principal in PRINCIPALS.items():
        assert decide(principal, action, resource).allowed == (name in allowed), (name, action)


def test_every_action_is_in_the_matrix() -> None:
    assert {row[0] for row in MATRIX} | {Action.FAMILY_ADD, Action.STAFF_LIST} == set(Action)
