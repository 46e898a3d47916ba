"""Booking through the real app: pages and API, holds, capacity, expiry, policies, bad input."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from booking.models import Appointment, AppointmentStatus, Clinic, SeatClaim
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, SMS_CODE, World
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import Devices, post_form, sign_in_patient, sign_in_staff


@pytest.fixture
def menus(settings: Settings, world: World) -> dict[str, str]:
    """At clinic A: a one-seat menu and a two-seat menu; at clinic B: one menu."""

    async def seed() -> dict[str, str]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                a = await Clinic.get(id=world.clinic_a)
                b = await Clinic.get(id=world.clinic_b)
                single, doctor = await make_menu(a, cancel_deadline_minutes=24 * 60)
                pair, pair_doctor = await make_menu(a, capacity=2)
                other, _ = await make_menu(b)
                return {
                    "single": str(single.id),
                    "doctor": str(doctor.id),
                    "pair": str(pair.id),
                    "pair_doctor": str(pair_doctor.id),
                    "other": str(other.id),
                }

    return run_sync(seed())


def token(client: TestClient, phone: str) -> dict[str, str]:
    client.cookies.clear()
    client.post("/api/v1/auth/sms/start", json={"phone": phone})
    answer = client.post("/api/v1/auth/sms/verify", json={"phone": phone, "code": SMS_CODE})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def free(client: TestClient, menu_id: str, **query: Any) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/clinics/clinic-a/menus/{menu_id}/slots", params=query)
    assert response.status_code == 200, response.text
    return response.json()["slots"]  # type: ignore[no-any-return]


def hold(client: TestClient, auth: dict[str, str], menu_id: str, slot: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/holds",
        json={
            "clinic": "clinic-a",
            "menu_id": menu_id,
            "practitioner_id": slot["practitioner_id"],
            "start": slot["start"],
        },
        headers=auth,
    )


def test_a_patient_books_and_cancels_in_the_browser(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    assert "/clinics/clinic-a" in browser.get("/").text
    clinic = browser.get("/clinics/clinic-a")
    assert f"/clinics/clinic-a/menus/{menus['single']}" in clinic.text
    later = (clock.now + timedelta(days=3)).date().isoformat()  # well before the deadline
    page = f"/clinics/clinic-a/menus/{menus['single']}?day={later}"
    assert "disabled" in browser.get(page).text  # look first, sign in to book
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    slots = browser.get(page).text
    start = re.search(r'name="start" value="([^"]+)"', slots).group(1)  # type: ignore[union-attr]
    held = post_form(
        browser,
        f"/clinics/clinic-a/menus/{menus['single']}/hold",
        {"practitioner_id": menus["doctor"], "start": start},
        page=page,
        follow_redirects=False,
    )
    confirm = held.headers["location"]
    assert confirm.endswith("/confirm")
    form = browser.get(confirm).text
    assert "一子" in form
    booked = post_form(
        browser, confirm, {"patient_id": world.patient_a}, page=confirm, follow_redirects=False
    )
    assert booked.headers["location"] == "/appointments"
    mine = browser.get("/appointments").text
    assert mine.count("/cancel") == 1
    assert start not in browser.get(page).text  # the time is no longer offered
    appointment_id = confirm.split("/")[2]
    post_form(browser, f"/appointments/{appointment_id}/cancel", {}, page="/appointments")
    assert "/cancel" not in browser.get("/appointments").text.split("<h2")[1]
    assert start in browser.get(page).text  # free again


def test_the_last_seat_goes_to_one_patient_only(
    browser: TestClient, world: World, menus: dict[str, str]
) -> None:
    first, second = token(browser, PHONE_A), token(browser, "090-1111-0003")
    slot = free(browser, menus["single"])[0]
    assert hold(browser, first, menus["single"], slot).status_code == 201
    taken = hold(browser, second, menus["single"], slot)
    assert taken.status_code == 409
    problem = taken.json()
    assert problem["type"] == "urn:tsunagu:problem:conflict"
    assert "ほかの方" in problem["detail"]
    assert problem["alternatives"]
    assert problem["alternatives"][0]["start"] != slot["start"]


def test_a_two_seat_menu_takes_two(
    browser: TestClient, world: World, menus: dict[str, str]
) -> None:
    slot = free(browser, menus["pair"])[0]
    assert slot["free_seats"] == 2
    statuses = [
        hold(browser, token(browser, phone), menus["pair"], slot).status_code
        for phone in (PHONE_A, "090-1111-0003", "090-1111-0004")
    ]
    assert statuses == [201, 201, 409]


def test_an_expired_hold_frees_the_seat(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    first = token(browser, PHONE_A)
    # A time well after the hold's ten minutes (the first free one may be minutes away).
    later = clock.now + timedelta(hours=1)
    slot = next(
        s for s in free(browser, menus["single"]) if datetime.fromisoformat(s["start"]) > later
    )
    held = hold(browser, first, menus["single"], slot).json()
    clock.advance(minutes=11)
    second = token(browser, "090-1111-0003")
    assert hold(browser, second, menus["single"], slot).status_code == 201
    late = browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=first,
    )
    assert late.status_code == 409
    assert "有効期限" in late.json()["detail"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"start": "2001-01-01T10:00:00+09:00"}, 422),  # the past
        ({"start_shift": timedelta(minutes=7)}, 422),  # not on the grid
        ({"start_shift": timedelta(hours=-14)}, 422),  # outside hours
        ({"practitioner_id": "00000000-0000-4000-8000-000000000000"}, 422),
        ({"start": "2030-01-07T10:00:00"}, 422),  # no time zone
        ({"menu": "other"}, 404),  # a menu of another clinic
        ({"menu": "nonsense"}, 404),
    ],
)
def test_bad_holds_get_a_clear_4xx_and_write_nothing(
    browser: TestClient, world: World, menus: dict[str, str], change: dict[str, Any], status: int
) -> None:
    auth = token(browser, PHONE_A)
    slot = dict(free(browser, menus["single"])[0])
    if "start_shift" in change:
        slot["start"] = (datetime.fromisoformat(slot["start"]) + change["start_shift"]).isoformat()
    if "start" in change:
        slot["start"] = change["start"]
    if "practitioner_id" in change:
        slot["practitioner_id"] = change["practitioner_id"]
    menu_id = {"other": menus["other"], "nonsense": "x"}.get(
        change.get("menu", ""), menus["single"]
    )
    response = hold(browser, auth, menu_id, slot)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]

    async def count() -> int:
        settings = browser.app.state.settings  # type: ignore[attr-defined]
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                return await Appointment.filter(menu_id=menus["single"]).count()

    assert run_sync(count()) == 0


def test_family_booking_and_nobody_elses(
    browser: TestClient, world: World, menus: dict[str, str]
) -> None:
    auth = token(browser, PHONE_A)
    slot = free(browser, menus["single"])[0]
    held = hold(browser, auth, menus["single"], slot).json()
    refused = browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_b},
        headers=auth,
    )
    assert refused.status_code == 422
    booked = browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=auth,
    )
    assert booked.status_code == 200
    assert booked.json()["status"] == "booked"
    listed = browser.get("/api/v1/appointments", headers=auth).json()["appointments"]
    assert [a["id"] for a in listed] == [held["id"]]
    # Another account cannot see or cancel it.
    other = token(browser, PHONE_B)
    cancel = browser.post(f"/api/v1/appointments/{held['id']}/cancel", headers=other)
    assert cancel.status_code == 404


def test_patients_cancel_until_the_deadline_and_staff_after_it(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    auth = token(browser, PHONE_A)
    slot = free(browser, menus["single"])[0]  # today: inside the 24-hour deadline
    held = hold(browser, auth, menus["single"], slot).json()
    browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=auth,
    )
    too_late = browser.post(f"/api/v1/appointments/{held['id']}/cancel", headers=auth)
    assert too_late.status_code == 409
    assert "お電話" in too_late.json()["detail"]

    devices = Devices(browser)
    staff = devices("reception")
    sign_in_staff(staff, world.receptionist_a, clock)
    day = datetime.fromisoformat(slot["start"]).date().isoformat()
    schedule = staff.get(f"/staff/schedule?day={day}").text
    assert "一子" in schedule
    checked = post_form(
        staff,
        f"/staff/appointments/{held['id']}/status",
        {"status": "checked_in"},
        page=f"/staff/schedule?day={day}",
        follow_redirects=False,
    )
    assert checked.status_code == 303
    assert "受付済" in staff.get(f"/staff/schedule?day={day}").text


async def test_concurrent_holds_never_exceed_capacity(db: Settings) -> None:
    """Twenty holds for one two-seat slot at once: two win, the rest are told it was taken."""
    from booking import service
    from booking.errors import SlotTaken

    clinic = await Clinic.create(
        slug="race",
        name="見本",
        name_kana="ミホン",
        postal_code="100-0000",
        address="見本町",
        phone="03-0000-0000",
    )
    menu, doctor = await make_menu(clinic, capacity=2)
    now = datetime.now().astimezone()
    found = await service.search(clinic, menu, now=now, days=2)
    slot = found[0].slots[0]

    async def attempt(n: int) -> str:
        try:
            await service.hold(
                clinic,
                menu,
                practitioner_id=str(doctor.id),
                start=slot.start,
                account_id=f"00000000-0000-4000-8000-{n:012d}",
                now=now,
            )
        except SlotTaken:
            return "taken"
        return "held"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(20)))
    assert sorted(outcomes).count("held") == 2
    seats = await SeatClaim.filter(appointment__status=AppointmentStatus.HELD).values_list(
        "cell_start", "seat"
    )
    assert len(seats) == len(set(seats))


def test_an_appointment_goes_into_a_calendar_without_personal_detail(
    browser: TestClient, world: World, menus: dict[str, str]
) -> None:
    from icalendar import Calendar

    auth = token(browser, PHONE_A)
    slot = free(browser, menus["single"])[0]
    held = hold(browser, auth, menus["single"], slot).json()
    browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=auth,
    )
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    ics = browser.get(f"/appointments/{held['id']}/calendar.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    event = next(iter(Calendar.from_ical(ics.content).walk("VEVENT")))
    assert event.decoded("dtstart") == datetime.fromisoformat(slot["start"])
    assert "見本クリニック" in str(event.get("summary"))
    assert "一子" not in ics.text
    other = browser.get(f"/appointments/{world.appointment_b}/calendar.ics")
    assert other.status_code == 404


def statuses(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    answer = client.get("/api/v1/appointments", headers=auth).json()["appointments"]
    return {a["id"]: a["status"] for a in answer}


def test_rescheduling_moves_the_booking_atomically(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    auth = token(browser, PHONE_A)
    later = (clock.now + timedelta(days=3)).date().isoformat()
    first, second = free(browser, menus["single"], **{"from": later, "days": 1})[:2]
    held = hold(browser, auth, menus["single"], first).json()
    browser.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=auth,
    )
    moved = browser.post(
        f"/api/v1/appointments/{held['id']}/reschedule",
        json={"practitioner_id": second["practitioner_id"], "start": second["start"]},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    new = moved.json()
    assert new["status"] == "booked"
    assert datetime.fromisoformat(new["start"]) == datetime.fromisoformat(second["start"])
    listed = statuses(browser, auth)
    assert listed == {held["id"]: "cancelled", new["id"]: "booked"}
    starts = {s["start"] for s in free(browser, menus["single"], **{"from": later, "days": 1})}
    assert first["start"] in starts  # the old time is free again
    assert second["start"] not in starts
    # Moving onto a time that is taken changes nothing.
    other = token(browser, "090-1111-0003")
    third = free(browser, menus["single"], **{"from": later, "days": 1})[0]
    hold(browser, other, menus["single"], third)
    refused = browser.post(
        f"/api/v1/appointments/{new['id']}/reschedule",
        json={"practitioner_id": third["practitioner_id"], "start": third["start"]},
        headers=auth,
    )
    assert refused.status_code == 409
    assert statuses(browser, auth)[new["id"]] == "booked"


@pytest.mark.parametrize("slug", ["x" * 65, "Ω≈ç√∫˜µ≤≥÷" * 10, "nul%00here"])
def test_an_odd_clinic_address_is_a_4xx(browser: TestClient, slug: str) -> None:
    expected = 400 if "%00" in slug else 404
    assert browser.get(f"/clinics/{slug}").status_code == expected
    api = browser.get(f"/api/v1/clinics/{slug}/menus")
    assert api.status_code == expected
    assert api.headers["content-type"] == "application/problem+json"


def test_a_nul_in_a_query_is_a_400_not_a_database_error(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    sign_in_staff(browser, world.admin_a, clock)
    assert browser.get("/staff/admin/audit?action=a%00b").status_code == 400


def test_an_odd_appointment_id_is_a_404_and_is_audited(browser: TestClient, world: World) -> None:
    auth = token(browser, PHONE_A)
    odd = "Ω≈ç√∫" * 30
    for path in (f"/api/v1/appointments/{odd}/confirm", f"/api/v1/appointments/{odd}/cancel"):
        response = browser.post(path, json={"patient_id": world.patient_a}, headers=auth)
        assert response.status_code == 404, (path, response.text)


def test_reception_books_by_phone_and_over_books_deliberately(
    browser: TestClient, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    sign_in_staff(browser, world.receptionist_a, clock)
    page = f"/staff/patients/{world.patient_a}/book?menu={menus['single']}"
    form = browser.get(page).text
    start = re.search(r'name="start" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    booked = post_form(
        browser,
        f"/staff/patients/{world.patient_a}/book",
        {"menu_id": menus["single"], "practitioner_id": menus["doctor"], "start": start},
        page=page,
        follow_redirects=False,
    )
    assert booked.status_code == 303
    assert booked.headers["location"].startswith("/staff/schedule?day=")
    # The same time again: full now, so only a deliberate over-booking takes it.
    again = post_form(
        browser,
        f"/staff/patients/{world.patient_a}/book",
        {"menu_id": menus["single"], "practitioner_id": menus["doctor"], "start": start},
        page=page,
    )
    assert again.status_code == 409
    full = browser.get(page).text
    offered_again = rf'value="{re.escape(start)}">\s*<input type="hidden" name="overbook"'
    assert re.search(offered_again, full)  # listed under the full times
    over = post_form(
        browser,
        f"/staff/patients/{world.patient_a}/book",
        {
            "menu_id": menus["single"],
            "practitioner_id": menus["doctor"],
            "start": start,
            "overbook": "1",
        },
        page=page,
        follow_redirects=False,
    )
    assert over.status_code == 303
    schedule = browser.get(over.headers["location"]).text
    assert schedule.count("一子") == 2
    # The over-booking is in the audit log, and another clinic cannot book clinic A's patient.
    sign_in_staff(browser, world.admin_a, clock)
    assert (
        "appointment.overbook" in browser.get("/staff/admin/audit?action=appointment.overbook").text
    )
    sign_in_staff(browser, world.doctor_b, clock)
    assert browser.get(f"/staff/patients/{world.patient_a}/book").status_code == 404


def test_the_hold_lasts_as_long_as_the_clinic_configures(
    settings: Settings, world: World, menus: dict[str, str], clock: FakeClock
) -> None:
    from dataclasses import replace

    from patient_portal.app import create_app
    from patient_portal.auth.verifier import ConsoleVerifier

    app = create_app(
        replace(settings, hold_minutes=3),
        verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE),
        clock=clock,
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        auth = token(client, PHONE_A)
        held = hold(client, auth, menus["single"], free(client, menus["single"])[-1])
        assert held.status_code == 201, held.text
        expires = datetime.fromisoformat(held.json()["hold_expires_at"])
        assert abs((expires - clock.now).total_seconds() - 180) < 1
