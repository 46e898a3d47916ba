"""The clinic administrator sets the clinic up in the browser: profile, practitioners, menus,
weekly hours and date exceptions — through the real app and database, checked in the rows
stored, the audit log, and the free times patients then see."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pyotp
import pytest
from starlette.testclient import TestClient

from booking.availability import japanese_holiday
from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    HoursException,
    Menu,
    Practitioner,
    VisitMode,
    WeeklyHours,
)
from patient_portal.audit.models import AuditEntry
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import World
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import Devices, csrf_token, sign_in_staff

T = TypeVar("T")
TOKYO = ZoneInfo("Asia/Tokyo")

PROFILE = {
    "name": "つなぐ内科クリニック",
    "name_kana": "つなぐないかくりにっく",
    "postal_code": "１００-０００５",
    "address": "東京都千代田区丸の内1-1-1",
    "phone": "0312345678",
    "departments": "内科\n小児科, 皮膚科",
    "time_zone": "Asia/Tokyo",
    "slug": "tsunagu-naika",
    "open_on_holidays": "1",
    "reminder": ["1440", "180"],
    "reminder_other": "90",
}
MENU = {
    "title_ja": "オンライン再診",
    "title_en": "Online follow-up",
    "description_ja": "",
    "description_en": "",
    "mode": "online",
    "visit_kind": "revisit",
    "duration_minutes": "20",
    "capacity": "1",
    "fee_yen": "1,500",
    "booking_fee_yen": "0",
    "questionnaire_id": "",
    "min_notice_minutes": "0",
    "max_days_ahead": "120",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "0",
    "cancel_deadline_minutes": "60",
    "visible_to_patients": "1",
    "online_rules": ["existing_patients_only"],
    "sort_order": "1",
}


def in_db(client: TestClient, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` against the app's database (beside the running app, as other tests do)."""

    async def run() -> T:
        settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                return await work()

    return run_sync(run())


def post(client: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    return client.post(
        path, data={**data, "csrf_token": csrf_token(client, page)}, follow_redirects=False
    )


def audit_actions(client: TestClient, clinic_id: str) -> list[tuple[str, str, str]]:
    async def read() -> list[tuple[str, str, str]]:
        rows = await AuditEntry.filter(clinic_id=clinic_id).order_by("seq")
        return [(r.action, r.outcome.value, r.target_id) for r in rows]

    return in_db(client, read)


@pytest.fixture
def admin(browser: TestClient, world: World, clock: FakeClock) -> TestClient:
    sign_in_staff(browser, world.admin_a, clock)
    return browser


def next_weekday(today: date, weekday: int, after: int = 2) -> date:
    day = today + timedelta(days=after)
    while day.weekday() != weekday or japanese_holiday(day):
        day += timedelta(days=1)
    return day


def slot_times(client: TestClient, menu_id: str, day: date, slug: str = "clinic-a") -> list[str]:
    response = client.get(
        f"/api/v1/clinics/{slug}/menus/{menu_id}/slots", params={"from": day.isoformat(), "days": 1}
    )
    assert response.status_code == 200, response.text
    return [
        datetime.fromisoformat(s["start"]).astimezone(TOKYO).strftime("%H:%M")
        for s in response.json()["slots"]
    ]


# --- the profile ----------------------------------------------------------------------------


def test_the_admin_saves_the_profile_and_it_is_stored_and_audited(
    admin: TestClient, world: World
) -> None:
    assert admin.get("/staff/clinic").status_code == 200
    response = post(admin, "/staff/clinic", PROFILE, "/staff/clinic")
    assert response.status_code == 303, response.text
    clinic = in_db(admin, lambda: Clinic.get(id=world.clinic_a))
    assert clinic.name == "つなぐ内科クリニック"
    assert clinic.postal_code == "100-0005"
    assert clinic.phone == "03-1234-5678"
    assert clinic.departments == ["内科", "小児科", "皮膚科"]
    assert clinic.slug == "tsunagu-naika"
    assert clinic.open_on_holidays is True
    assert clinic.reminder_offsets_minutes == [1440, 180, 90]
    assert ("clinic.update", "success", world.clinic_a) in audit_actions(admin, world.clinic_a)
    entry = in_db(admin, lambda: AuditEntry.get(action="clinic.update"))
    assert set(entry.detail["fields"]) >= {"name", "slug", "departments", "open_on_holidays"}  # type: ignore[call-overload]
    assert "つなぐ" not in str(entry.detail)  # which fields changed, not what they say
    # The public page moved with the address; the form shows what was saved.
    assert "つなぐ内科クリニック" in admin.get("/clinics/tsunagu-naika").text
    assert admin.get("/clinics/clinic-a").status_code == 404
    assert "tsunagu-naika" in admin.get("/staff/clinic").text


@pytest.mark.parametrize(
    ("change", "field", "ja", "en"),
    [
        ({"postal_code": "12-345"}, "postal_code", "123-4567 の形", "like 123-4567"),
        ({"phone": "12345"}, "phone", "電話番号を正しく", "valid phone number"),
        ({"time_zone": "Asia/Atlantis"}, "time_zone", "IANA", "IANA time zone"),
        ({"slug": "Bad Slug!"}, "slug", "半角英小文字", "lowercase letters"),
        ({"slug": "clinic-b"}, "slug", "ほかの医療機関", "already uses this address"),
        ({"name": "  "}, "name", "入力してください", "required"),
        ({"name_kana": "Tsunagu"}, "name_kana", "ひらがな", "in kana"),
        ({"reminder_other": "5"}, "reminder_offsets_minutes", "10 分前から", "10 minutes"),
        (
            {"reminder_other": "2d, 4d, 5d, 6d"},
            "reminder_offsets_minutes",
            "件まで",
            "at most 5",
        ),
    ],
)
def test_a_bad_profile_is_shown_again_in_both_languages_and_nothing_is_saved(
    admin: TestClient,
    world: World,
    change: dict[str, str],
    field: str,
    ja: str,
    en: str,
) -> None:
    japanese = post(admin, "/staff/clinic", {**PROFILE, **change}, "/staff/clinic")
    assert japanese.status_code == 422
    assert re.search(rf'id="e-{field}">[^<]*{re.escape(ja)}', japanese.text), japanese.text
    admin.cookies.set("tsunagu_lang", "en")
    english = post(admin, "/staff/clinic", {**PROFILE, **change}, "/staff/clinic")
    assert english.status_code == 422
    assert re.search(rf'id="e-{field}">[^<]*{re.escape(en)}', english.text), english.text
    clinic = in_db(admin, lambda: Clinic.get(id=world.clinic_a))
    assert clinic.slug == "clinic-a"
    assert clinic.departments == []
    assert "clinic.update" not in [a for a, _, _ in audit_actions(admin, world.clinic_a)]


# --- who may ------------------------------------------------------------------------------


def test_other_staff_get_403_and_other_clinics_ids_404(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    def seed() -> Awaitable[tuple[Menu, Practitioner]]:
        async def run() -> tuple[Menu, Practitioner]:
            return await make_menu(await Clinic.get(id=world.clinic_b))

        return run()

    menu_b, doctor_b = in_db(browser, seed)
    devices = Devices(browser)
    for name, staff in (("doctor", world.doctor_a), ("reception", world.receptionist_a)):
        sign_in_staff(devices(name), staff, clock)
        for path in ("/staff/clinic", "/staff/clinic/menus", "/staff/clinic/practitioners"):
            assert devices(name).get(path).status_code == 403, (name, path)
        refused = post(devices(name), "/staff/clinic", PROFILE, "/staff")
        assert refused.status_code == 403
    sign_in_staff(devices("admin"), world.admin_a, clock)
    admin = devices("admin")
    for path in (
        f"/staff/clinic/menus/{menu_b.id}",
        f"/staff/clinic/practitioners/{doctor_b.id}",
        f"/staff/clinic/practitioners/{doctor_b.id}/hours",
    ):
        assert admin.get(path).status_code == 404, path
    assert post(admin, f"/staff/clinic/menus/{menu_b.id}", MENU, "/staff/clinic").status_code == (
        404
    )
    deactivate = post(
        admin, f"/staff/clinic/practitioners/{doctor_b.id}/active", {"active": "0"}, "/staff"
    )
    assert deactivate.status_code == 404
    doctor = in_db(browser, lambda: Practitioner.get(id=doctor_b.id))
    assert doctor.is_active
    assert admin.get("/staff/clinic/practitioners").text.count(str(doctor_b.id)) == 0
    actions = audit_actions(browser, world.clinic_a)
    assert ("clinic.manage", "denied", str(menu_b.id)) in actions


# --- practitioners, menus, hours → free times ---------------------------------------------


def test_a_clinic_set_up_in_the_browser_offers_the_right_times(
    admin: TestClient, world: World, clock: FakeClock
) -> None:
    # A practitioner, linked to the doctor's staff account.
    created = post(
        admin,
        "/staff/clinic/practitioners/new",
        {
            "display_name": "山田 太郎",
            "display_name_kana": "やまだ たろう",
            "staff_id": world.doctor_a.id,
        },
        "/staff/clinic/practitioners/new",
    )
    assert created.status_code == 303, created.text
    doctor = in_db(admin, lambda: Practitioner.get(clinic_id=world.clinic_a))
    assert str(doctor.staff_id) == world.doctor_a.id
    assert doctor.display_name == "山田 太郎"

    # A menu that the practitioner offers.
    menu_response = post(
        admin,
        "/staff/clinic/menus/new",
        {**MENU, "practitioner_ids": [str(doctor.id)]},
        "/staff/clinic/menus/new",
    )
    assert menu_response.status_code == 303, menu_response.text
    menu = in_db(admin, lambda: Menu.get(clinic_id=world.clinic_a, title_ja="オンライン再診"))
    assert (menu.mode, menu.duration_minutes, menu.fee_yen) == (VisitMode.ONLINE, 20, 1500)
    assert menu.online_rules == ["existing_patients_only"]

    # Hours on Monday and Wednesday: morning and afternoon.
    hours_page = f"/staff/clinic/practitioners/{doctor.id}/hours"
    for start, end in (("09:00", "10:00"), ("15:00", "15:40")):
        added = post(
            admin, hours_page, {"weekdays": ["0", "2"], "start": start, "end": end}, hours_page
        )
        assert added.status_code == 303, added.text
    rows = in_db(admin, lambda: WeeklyHours.filter(practitioner_id=doctor.id).count())
    assert rows == 4

    today = clock.now.astimezone(TOKYO).date()
    monday = next_weekday(today, 0)
    tuesday = monday + timedelta(days=1)
    expected = ["09:00", "09:20", "09:40", "15:00", "15:20"]
    assert slot_times(admin, str(menu.id), monday) == expected
    assert slot_times(admin, str(menu.id), tuesday) == []
    # The patient's page shows the same times.
    patient_page = admin.get(f"/clinics/clinic-a/menus/{menu.id}?day={monday.isoformat()}")
    assert "09:20" in patient_page.text
    assert "15:20" in patient_page.text

    # A doctor's leave on Monday afternoon, the clinic closed the Wednesday after.
    wednesday = monday + timedelta(days=2)
    exceptions = "/staff/clinic/exceptions"
    leave = {
        "day": monday.isoformat(),
        "kind": "closed_range",
        "practitioner_id": str(doctor.id),
        "start": "15:00",
        "end": "18:00",
        "note": "学会",
    }
    assert post(admin, exceptions, leave, exceptions).status_code == 303
    closed = {**leave, "day": wednesday.isoformat(), "kind": "closed_day", "practitioner_id": ""}
    assert post(admin, exceptions, closed, exceptions).status_code == 303
    assert slot_times(admin, str(menu.id), monday) == ["09:00", "09:20", "09:40"]
    assert slot_times(admin, str(menu.id), wednesday) == []
    listing = admin.get(exceptions).text
    assert monday.isoformat() in listing
    assert "学会" in listing

    # Deleting the closure opens Wednesday again; a deactivated doctor offers nothing.
    row = in_db(admin, lambda: HoursException.get(day=wednesday))
    assert post(admin, f"{exceptions}/{row.id}/delete", {}, exceptions).status_code == 303
    assert slot_times(admin, str(menu.id), wednesday) == expected
    practitioners = "/staff/clinic/practitioners"
    off = post(admin, f"{practitioners}/{doctor.id}/active", {"active": "0"}, practitioners)
    assert off.status_code == 303
    assert slot_times(admin, str(menu.id), wednesday) == []
    on = post(admin, f"{practitioners}/{doctor.id}/active", {"active": "1"}, practitioners)
    assert on.status_code == 303
    assert slot_times(admin, str(menu.id), wednesday) == expected

    actions = [a for a, outcome, _ in audit_actions(admin, world.clinic_a) if outcome == "success"]
    for action in (
        "practitioner.create",
        "menu.create",
        "hours.create",
        "exception.create",
        "exception.delete",
        "practitioner.deactivate",
        "practitioner.reactivate",
    ):
        assert action in actions, action
    for entry in in_db(admin, lambda: AuditEntry.filter(clinic_id=world.clinic_a)):
        assert "学会" not in str(entry.detail)


def test_a_holiday_is_closed_unless_extra_hours_open_it(
    admin: TestClient, world: World, clock: FakeClock
) -> None:
    async def seed() -> str:
        clinic = await Clinic.get(id=world.clinic_a)
        menu, _ = await make_menu(clinic, minutes=30, every_day=(9 * 60, 10 * 60))
        menu.max_days_ahead = 365
        await menu.save()
        return str(menu.id)

    menu_id = in_db(admin, seed)
    today = clock.now.astimezone(TOKYO).date()
    holiday = today + timedelta(days=2)
    while not japanese_holiday(holiday):
        holiday += timedelta(days=1)
    assert slot_times(admin, menu_id, holiday) == []
    listing = admin.get("/staff/clinic/exceptions").text
    assert f"{holiday.isoformat()} " in listing  # shown as a holiday ahead, closed by default
    extra = {
        "day": holiday.isoformat(),
        "kind": "extra_hours",
        "practitioner_id": "",
        "start": "10:00",
        "end": "11:00",
        "note": "",
    }
    assert post(admin, "/staff/clinic/exceptions", extra, "/staff/clinic").status_code == 303
    assert slot_times(admin, menu_id, holiday) == ["10:00", "10:30"]
    # Ticking "open on public holidays" brings the regular hours back too.
    opened = {**PROFILE, "slug": "clinic-a", "open_on_holidays": "1"}
    assert post(admin, "/staff/clinic", opened, "/staff/clinic").status_code == 303
    assert slot_times(admin, menu_id, holiday) == ["09:00", "09:30", "10:00", "10:30"]
    assert f"{holiday.isoformat()} " in admin.get("/staff/clinic/exceptions").text


def test_bad_hours_and_exceptions_are_422_and_write_nothing(
    admin: TestClient, world: World, clock: FakeClock
) -> None:
    async def seed() -> str:
        return str(
            (
                await Practitioner.create(
                    clinic_id=world.clinic_a, display_name="医師", display_name_kana="いし"
                )
            ).id
        )

    doctor = in_db(admin, seed)
    hours_page = f"/staff/clinic/practitioners/{doctor}/hours"
    for data, field in (
        ({"weekdays": ["0"], "start": "12:00", "end": "09:00"}, "end"),
        ({"weekdays": ["0"], "start": "09:03", "end": "10:00"}, "start"),
        ({"weekdays": ["0"], "start": "9時", "end": "10:00"}, "start"),
        ({"weekdays": [], "start": "09:00", "end": "10:00"}, "weekdays"),
        ({"weekdays": ["9"], "start": "09:00", "end": "10:00"}, "weekdays"),
        ({"weekdays": ["0"], "start": "09:00", "end": "10:00", "menu_id": "nope"}, "menu_id"),
    ):
        response = post(admin, hours_page, data, hours_page)
        assert response.status_code == 422, (data, response.text)
        assert f'id="e-{field}"' in response.text, data
    assert (
        post(
            admin,
            hours_page,
            {"weekdays": ["0", "1"], "start": "09:00", "end": "12:00"},
            hours_page,
        ).status_code
        == 303
    )
    overlap = post(
        admin, hours_page, {"weekdays": ["1", "2"], "start": "11:00", "end": "13:00"}, hours_page
    )
    assert overlap.status_code == 422
    assert "重なって" in overlap.text
    assert in_db(admin, lambda: WeeklyHours.filter(practitioner_id=doctor).count()) == 2

    exceptions = "/staff/clinic/exceptions"
    soon = (clock.now.astimezone(TOKYO).date() + timedelta(days=3)).isoformat()
    bad_exceptions: list[tuple[dict[str, str], str]] = [
        ({"day": "2000-01-01", "kind": "closed_day"}, "day"),
        ({"day": "not a date", "kind": "closed_day"}, "day"),
        ({"day": "2099-01-01", "kind": "closed_day"}, "day"),
        ({"day": soon, "kind": "extra_hours"}, "end"),
        ({"day": soon, "kind": "sometimes"}, "kind"),
        (
            {
                "day": soon,
                "kind": "closed_day",
                "practitioner_id": "00000000-0000-4000-8000-000000000000",
            },
            "practitioner_id",
        ),
    ]
    for bad, field in bad_exceptions:
        response = post(admin, exceptions, bad, exceptions)
        assert response.status_code == 422, (bad, response.text)
        assert f'id="e-{field}"' in response.text, bad
    assert in_db(admin, lambda: HoursException.filter(clinic_id=world.clinic_a).count()) == 0


def test_menu_rules_and_an_edit_that_leaves_appointments_alone(
    admin: TestClient, world: World
) -> None:
    async def seed() -> tuple[str, str, datetime]:
        clinic = await Clinic.get(id=world.clinic_a)
        menu, doctor = await make_menu(clinic, minutes=15)
        start = datetime.now(TOKYO).replace(microsecond=0) + timedelta(days=3)
        booked = await Appointment.create(
            clinic=clinic,
            menu=menu,
            practitioner=doctor,
            account_id="00000000-0000-4000-8000-000000000001",
            starts_at=start,
            ends_at=start + timedelta(minutes=15),
            status=AppointmentStatus.BOOKED,
            created_at=start,
            updated_at=start,
        )
        return str(menu.id), str(booked.id), booked.ends_at

    menu_id, appointment_id, ends_at = in_db(admin, seed)
    page = f"/staff/clinic/menus/{menu_id}"
    form = admin.get(page)
    before = in_db(admin, lambda: Menu.get(id=menu_id))
    assert form.status_code == 200
    assert f'value="{before.title_ja}"' in form.text
    for change, field, ja in (
        ({"duration_minutes": "17"}, "duration_minutes", "5 の倍数"),
        ({"duration_minutes": "600"}, "duration_minutes", "480 以下"),
        ({"capacity": "0"}, "capacity", "1 以上"),
        ({"fee_yen": "2000000"}, "fee_yen", "1000000 以下"),
        ({"fee_yen": "abc"}, "fee_yen", "整数"),
        ({"mode": "in_person"}, "online_rules", "オンラインを含む"),
        ({"mode": "teleport"}, "mode", "選択肢"),
        ({"online_rules": ["made_up"]}, "online_rules", "選択肢"),
        (
            {"practitioner_ids": ["00000000-0000-4000-8000-000000000000"]},
            "practitioner_ids",
            "選択肢",
        ),
    ):
        response = post(admin, page, {**MENU, **change}, page)
        assert response.status_code == 422, change
        assert re.search(rf'id="e-{field}">[^<]*{re.escape(ja)}', response.text), change
    unchanged = in_db(admin, lambda: Menu.get(id=menu_id))
    assert unchanged.duration_minutes == 15
    assert unchanged.title_ja == before.title_ja

    saved = post(admin, page, {**MENU, "duration_minutes": "30", "mode": "both"}, page)
    assert saved.status_code == 303, saved.text
    menu = in_db(admin, lambda: Menu.get(id=menu_id))
    assert (menu.duration_minutes, menu.mode, menu.title_ja) == (
        30,
        VisitMode.BOTH,
        "オンライン再診",
    )
    assert in_db(admin, lambda: menu.practitioners.all().count()) == 0
    appointment = in_db(admin, lambda: Appointment.get(id=appointment_id))
    assert appointment.ends_at == ends_at
    assert appointment.status is AppointmentStatus.BOOKED
    updates = [(a, t) for a, _, t in audit_actions(admin, world.clinic_a) if a == "menu.update"]
    assert updates == [("menu.update", menu_id)]


def test_a_staff_account_is_the_clinics_own_and_links_one_practitioner(
    admin: TestClient, world: World
) -> None:
    page = "/staff/clinic/practitioners/new"
    person = {"display_name": "医師", "display_name_kana": "いし"}
    foreign = post(admin, page, {**person, "staff_id": world.doctor_b.id}, page)
    assert foreign.status_code == 422
    assert 'id="e-staff_id"' in foreign.text
    assert post(admin, page, {**person, "staff_id": world.doctor_a.id}, page).status_code == 303
    twice = post(admin, page, {**person, "staff_id": world.doctor_a.id}, page)
    assert twice.status_code == 422
    assert "ほかの医師に結び付け" in twice.text
    assert in_db(admin, lambda: Practitioner.filter(clinic_id=world.clinic_a).count()) == 1

    doctor = in_db(admin, lambda: Practitioner.get(clinic_id=world.clinic_a))
    edit = f"/staff/clinic/practitioners/{doctor.id}"
    renamed = post(admin, edit, {**person, "display_name": "医師 改", "staff_id": ""}, edit)
    assert renamed.status_code == 303
    doctor = in_db(admin, lambda: Practitioner.get(id=doctor.id))
    assert doctor.display_name == "医師 改"
    assert doctor.staff_id is None
    assert ("practitioner.update", "success", str(doctor.id)) in audit_actions(
        admin, world.clinic_a
    )


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_every_page_shows_in_both_languages(
    admin: TestClient, world: World, locale: str, clock: FakeClock
) -> None:
    async def seed() -> tuple[str, str]:
        clinic = await Clinic.get(id=world.clinic_a)
        menu, doctor = await make_menu(clinic)
        await HoursException.create(
            clinic=clinic,
            practitioner=doctor,
            day=clock.now.astimezone(TOKYO).date() + timedelta(days=1),
            closed=True,
            start_minute=13 * 60,
            end_minute=15 * 60,
        )
        return str(menu.id), str(doctor.id)

    menu_id, doctor_id = in_db(admin, seed)
    admin.cookies.set("tsunagu_lang", locale)
    heading = {"ja": "クリニック設定", "en": "Clinic settings"}[locale]
    for path in (
        "/staff/clinic",
        "/staff/clinic/practitioners",
        "/staff/clinic/practitioners/new",
        f"/staff/clinic/practitioners/{doctor_id}",
        f"/staff/clinic/practitioners/{doctor_id}/hours",
        "/staff/clinic/menus",
        "/staff/clinic/menus/new",
        f"/staff/clinic/menus/{menu_id}",
        "/staff/clinic/exceptions",
    ):
        response = admin.get(path)
        assert response.status_code == 200, path
        assert f'<html lang="{locale}">' in response.text
        assert heading in response.text, path
    assert "13:00–15:00" in admin.get("/staff/clinic/exceptions").text


def bearer(client: TestClient, staff: Any, clock: FakeClock) -> dict[str, str]:
    answer = client.post(
        "/api/v1/auth/staff/signin",
        json={
            "login_id": staff.login_id,
            "password": staff.password,
            "code": pyotp.TOTP(staff.totp_secret).at(clock.now),
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_the_api_shows_the_set_up_to_the_admin_only(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    async def seed() -> tuple[str, str]:
        clinic = await Clinic.get(id=world.clinic_a)
        menu, doctor = await make_menu(clinic, every_day=(9 * 60, 12 * 60 + 30))
        return str(menu.id), str(doctor.id)

    menu_id, doctor_id = in_db(browser, seed)
    answer = browser.get("/api/v1/staff/clinic", headers=bearer(browser, world.admin_a, clock))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["profile"]["slug"] == "clinic-a"
    assert [m["id"] for m in body["menus"]] == [menu_id]
    assert body["menus"][0]["practitioner_ids"] == [doctor_id]
    (doctor,) = body["practitioners"]
    assert doctor["menu_ids"] == [menu_id]
    assert {(h["weekday"], h["start"], h["end"]) for h in doctor["hours"]} == {
        (day, "09:00", "12:30") for day in range(7)
    }
    assert all(h["opened"] is False for h in body["holidays"])
    clock.advance(seconds=30)  # a TOTP code is accepted once
    refused = browser.get("/api/v1/staff/clinic", headers=bearer(browser, world.doctor_a, clock))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert browser.get("/api/v1/staff/clinic").status_code == 401


def test_hours_for_one_menu_replace_the_general_hours_for_it(
    admin: TestClient, world: World, clock: FakeClock
) -> None:
    async def seed() -> tuple[str, str, str]:
        clinic = await Clinic.get(id=world.clinic_a)
        menu, doctor = await make_menu(clinic, minutes=30, every_day=(9 * 60, 10 * 60))
        other, _ = await make_menu(clinic)
        return str(menu.id), str(doctor.id), str(other.id)

    menu_id, doctor_id, other_menu = in_db(admin, seed)
    page = f"/staff/clinic/practitioners/{doctor_id}/hours"
    every_day = [str(d) for d in range(7)]
    form = {"weekdays": every_day, "start": "14:00", "end": "15:00"}
    not_offered = post(admin, page, {**form, "menu_id": other_menu}, page)
    assert not_offered.status_code == 422
    assert "担当していません" in not_offered.text
    assert post(admin, page, {**form, "menu_id": menu_id}, page).status_code == 303
    monday = next_weekday(clock.now.astimezone(TOKYO).date(), 0)
    assert slot_times(admin, menu_id, monday) == ["14:00", "14:30"]
