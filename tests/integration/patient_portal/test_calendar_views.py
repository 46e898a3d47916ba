"""The staff calendar through the real app: which appointment shows on which day and time,
opening hours and closures, who may read it, bad input, and daylight-saving weeks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    HoursException,
    Menu,
    Practitioner,
    VisitKind,
    VisitMode,
    WeeklyHours,
)
from patient_portal.accounts.models import Patient, StaffRole
from patient_portal.audit.models import AuditEntry
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, SMS_CODE, World
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.web import sign_in_patient, sign_in_staff

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 9 April 2025, 01:00 in Tokyo — still Tuesday the 8th in UTC.
NOW = datetime(2025, 4, 8, 16, 0, tzinfo=UTC)
WEEK = [date(2025, 4, 7) + timedelta(days=n) for n in range(7)]


@dataclass(frozen=True)
class Seeded:
    aoki: str  # clinic A's doctor, linked to world.doctor_a's staff account
    sato: str  # another doctor of clinic A
    other_clinic: str  # clinic B's practitioner
    appointments: dict[str, str]  # label → id
    ny_staff: SeededStaff
    ny_doctor: str
    ny_appointments: dict[str, str]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def at(day: date, hh: int, mm: int = 0, zone: ZoneInfo = TOKYO, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zone).replace(fold=fold).astimezone(UTC)


async def _doctor(
    clinic: Clinic, name: str, kana: str, staff_id: str | None = None
) -> Practitioner:
    return await Practitioner.create(
        clinic=clinic, display_name=name, display_name_kana=kana, staff_id=staff_id
    )


async def _menu(clinic: Clinic, title: str, mode: VisitMode) -> Menu:
    return await Menu.create(
        clinic=clinic,
        title_ja=title,
        title_en=f"{title} (en)",
        mode=mode,
        visit_kind=VisitKind.REVISIT,
        duration_minutes=15,
    )


async def _book(
    menu: Menu,
    doctor: Practitioner,
    patient: Patient,
    start: datetime,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    **extra: object,
) -> str:
    row = await Appointment.create(
        clinic_id=doctor.clinic_id,  # type: ignore[attr-defined]
        menu=menu,
        practitioner=doctor,
        account_id=patient.account_id,  # type: ignore[attr-defined]
        patient_id=None if status is AppointmentStatus.HELD else patient.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=15),
        status=status,
        created_at=NOW,
        updated_at=NOW,
        **extra,
    )
    return str(row.id)


@pytest.fixture
def seeded(settings: Settings, world: World) -> Seeded:
    """Clinic A (Tokyo): Dr Aoki works weekdays 9:00–12:30 and 15:00–18:00 and Saturday
    mornings; Dr Sato every day. Friday the 11th the clinic is closed; Thursday afternoon Dr Aoki
    is away. Clinic C (New York) for daylight saving."""

    async def seed() -> Seeded:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                a = await Clinic.get(id=world.clinic_a)
                patient = await Patient.get(id=world.patient_a)
                aoki = await _doctor(a, "青木 医師", "アオキ イシ", world.doctor_a.id)
                sato = await _doctor(a, "佐藤 医師", "サトウ イシ")
                for weekday in range(5):
                    await WeeklyHours.create(
                        practitioner=aoki, weekday=weekday, start_minute=540, end_minute=750
                    )
                    await WeeklyHours.create(
                        practitioner=aoki, weekday=weekday, start_minute=900, end_minute=1080
                    )
                await WeeklyHours.create(
                    practitioner=aoki, weekday=5, start_minute=540, end_minute=720
                )
                for weekday in range(7):
                    await WeeklyHours.create(
                        practitioner=sato, weekday=weekday, start_minute=540, end_minute=1020
                    )
                await HoursException.create(
                    clinic=a, day=date(2025, 4, 11), closed=True, note="院内研修"
                )
                await HoursException.create(
                    clinic=a,
                    practitioner=aoki,
                    day=date(2025, 4, 10),
                    closed=True,
                    start_minute=900,
                    end_minute=1080,
                )
                visit = await _menu(a, "内科 再診", VisitMode.IN_PERSON)
                video = await _menu(a, "オンライン診療", VisitMode.ONLINE)
                await visit.practitioners.add(aoki, sato)
                booked = {
                    "mon": await _book(visit, aoki, patient, at(WEEK[0], 9, 30)),
                    "wed": await _book(
                        video,
                        aoki,
                        patient,
                        at(WEEK[2], 15, 0),
                        AppointmentStatus.CHECKED_IN,
                        overbooked=True,
                    ),
                    "sun_late": await _book(visit, aoki, patient, at(WEEK[6], 23, 30)),
                    "next_mon": await _book(visit, aoki, patient, at(date(2025, 4, 14), 0, 10)),
                    "cancelled": await _book(
                        visit, aoki, patient, at(WEEK[1], 10, 0), AppointmentStatus.CANCELLED
                    ),
                    "live_hold": await _book(
                        visit,
                        aoki,
                        patient,
                        at(WEEK[3], 11, 0),
                        AppointmentStatus.HELD,
                        hold_expires_at=NOW + timedelta(minutes=5),
                    ),
                    "lapsed_hold": await _book(
                        visit,
                        aoki,
                        patient,
                        at(WEEK[3], 11, 30),
                        AppointmentStatus.HELD,
                        hold_expires_at=NOW - timedelta(minutes=5),
                    ),
                    "sato": await _book(visit, sato, patient, at(WEEK[0], 10, 0)),
                }
                other = await Appointment.get(id=world.appointment_b)

                ny = await make_clinic("new-york")
                ny.time_zone = "America/New_York"
                await ny.save()
                ny_patient = await make_patient("+819011110009", ny, given_name="三子")
                ny_doctor = await _doctor(ny, "Dr Smith", "スミス")
                for weekday in range(7):
                    await WeeklyHours.create(
                        practitioner=ny_doctor, weekday=weekday, start_minute=0, end_minute=1440
                    )
                ny_visit = await _menu(ny, "Checkup", VisitMode.BOTH)
                ny_booked = {
                    # Spring forward: Sunday 9 March 2025, 2:00 EST → 3:00 EDT.
                    "sat_nine": at(date(2025, 3, 8), 9, 0, NEW_YORK),
                    "sun_early": at(date(2025, 3, 9), 0, 30, NEW_YORK),
                    "sun_late": at(date(2025, 3, 9), 23, 30, NEW_YORK),
                    "mon_nine": at(date(2025, 3, 10), 9, 0, NEW_YORK),
                    # Fall back: Sunday 2 November 2025, 1:30 happens twice.
                    "first_130": at(date(2025, 11, 2), 1, 30, NEW_YORK, fold=0),
                    "second_130": at(date(2025, 11, 2), 1, 30, NEW_YORK, fold=1),
                }
                return Seeded(
                    aoki=str(aoki.id),
                    sato=str(sato.id),
                    other_clinic=str(other.practitioner_id),  # type: ignore[attr-defined]
                    appointments=booked,
                    ny_staff=await make_staff(ny, StaffRole.RECEPTIONIST),
                    ny_doctor=str(ny_doctor.id),
                    ny_appointments={
                        label: await _book(ny_visit, ny_doctor, ny_patient, start)
                        for label, start in ny_booked.items()
                    },
                )

    return run_sync(seed())


@pytest.fixture
def client(seeded: Seeded, portal: Starlette) -> Iterator[TestClient]:
    with TestClient(portal, base_url="http://127.0.0.1") as test_client:
        yield test_client


def days_of(html: str) -> list[str]:
    return re.findall(r'<section class="cal-day[^"]*"[^>]*data-day="([\d-]+)"', html)


def sections(html: str) -> dict[str, str]:
    """Each day's section of the page, by ISO date."""
    parts = html.split('<section class="cal-day')[1:]
    return {re.search(r'data-day="([\d-]+)"', part).group(1): part for part in parts}  # type: ignore[union-attr]


def placements(html: str) -> dict[str, tuple[str, str]]:
    """Where each appointment card is: (day, half-hour row)."""
    found = {}
    for day, section in sections(html).items():
        for row in section.split('<div class="cal-row')[1:]:
            row_time = re.search(r'data-time="(\d\d:\d\d)"', row).group(1)  # type: ignore[union-attr]
            for appointment in re.findall(r'data-appointment="([^"]+)"', row):
                found[appointment] = (day, row_time)
    return found


def free_in(html: str, day: str, row_time: str) -> list[str]:
    """The free times offered in one half-hour row of a day."""
    for row in sections(html)[day].split('<div class="cal-row')[1:]:
        if f'data-time="{row_time}"' in row:
            return re.findall(r'data-free="(\d\d:\d\d)"', row)
    raise AssertionError(f"no row {row_time} on {day}")


def card(html: str, appointment_id: str) -> str:
    start = html.index(f'data-appointment="{appointment_id}"')
    return html[start : html.index("</article>", start)]


def test_the_week_runs_monday_to_sunday_with_each_appointment_on_its_day_and_time(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, world.doctor_a, clock)
    response = client.get("/staff/calendar?view=week&day=2025-04-09")
    assert response.status_code == 200
    html = response.text
    assert days_of(html) == [d.isoformat() for d in WEEK]
    booked = seeded.appointments
    where = placements(html)
    assert where == {  # the doctor's own calendar opens: Dr Aoki's, not Dr Sato's
        booked["mon"]: ("2025-04-07", "09:30"),
        booked["wed"]: ("2025-04-09", "15:00"),
        booked["live_hold"]: ("2025-04-10", "11:00"),
        # 23:30 on Sunday in Tokyo is 14:30 UTC: still Sunday; Monday 00:10 is next week's.
        booked["sun_late"]: ("2025-04-13", "23:30"),
    }
    mon = card(html, booked["mon"])
    assert "見本 一子" in mon
    assert f"/staff/patients/{world.patient_a}" in mon
    assert "09:30–09:45" in mon
    assert "内科 再診" in mon
    assert "対面" in mon
    wed = card(html, booked["wed"])
    assert "オンライン診療" in wed
    assert "オンライン" in wed
    assert "予約枠超過" in wed
    assert "受付済" in wed
    assert "予約枠超過" not in mon
    hold = card(html, booked["live_hold"])
    assert "見本 一子" not in hold
    assert "仮押さえ" in hold
    assert "二子" not in html
    week = client.get(f"/staff/calendar?view=week&day=2025-04-13&practitioner={seeded.aoki}")
    assert days_of(week.text) == [d.isoformat() for d in WEEK]  # Sunday's week starts Monday
    following = client.get("/staff/calendar?view=week&day=2025-04-14").text
    assert placements(following)[booked["next_mon"]] == ("2025-04-14", "00:00")


def test_the_day_view_opens_on_today_in_the_clinics_zone_with_status_actions(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, world.doctor_a, clock)
    html = client.get("/staff/calendar").text
    assert days_of(html) == ["2025-04-09"]  # Wednesday in Tokyo, though Tuesday in UTC
    wed = card(html, seeded.appointments["wed"])
    actions = re.findall(r'name="status" value="(\w+)"', wed)
    assert sorted(actions) == ["done", "in_consult"]
    assert f'action="/staff/appointments/{seeded.appointments["wed"]}/status"' in wed
    assert f"practitioner={seeded.aoki}&amp;view=day&amp;day=2025-04-08" in html  # previous
    assert f"practitioner={seeded.aoki}&amp;view=day&amp;day=2025-04-10" in html  # next
    assert f"practitioner={seeded.aoki}&amp;view=week&amp;day=2025-04-09" in html
    # A status button brings the doctor back to this calendar, not to the reception list.
    back = re.search(r'name="next" value="([^"]+)"', wed)
    assert back
    moved = client.post(
        f"/staff/appointments/{seeded.appointments['wed']}/status",
        data={
            "status": "in_consult",
            "next": back.group(1).replace("&amp;", "&"),
            "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', html)[-1],
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert moved.headers["location"].startswith("/staff/calendar")
    elsewhere = client.post(
        f"/staff/appointments/{seeded.appointments['wed']}/status",
        data={
            "status": "done",
            "next": "https://evil.example/",
            "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', html)[-1],
        },
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/staff/schedule?day=2025-04-09"


def test_the_day_view_offers_the_times_still_free(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, world.receptionist_a, clock)
    wednesday = client.get("/staff/calendar?day=2025-04-09").text
    assert free_in(wednesday, "2025-04-09", "09:00") == ["09:00", "09:15"]
    assert free_in(wednesday, "2025-04-09", "15:00") == ["15:15"]  # 15:00 is taken
    assert free_in(wednesday, "2025-04-09", "13:00") == []  # lunch
    thursday = client.get("/staff/calendar?day=2025-04-10").text
    # A live hold keeps 11:00; the lapsed one at 11:30 frees its seat; the afternoon is off.
    assert free_in(thursday, "2025-04-10", "11:00") == ["11:15"]
    assert free_in(thursday, "2025-04-10", "11:30") == ["11:30", "11:45"]
    assert 'data-time="15:00"' not in thursday  # the rows end with the morning
    past = client.get("/staff/calendar?day=2025-04-08").text
    assert "data-free=" not in past
    week = sections(client.get("/staff/calendar?view=week&day=2025-04-09").text)
    assert "空き 25 枠" in week["2025-04-09"]  # 14 in the morning, 12 after 15:00 less one
    assert "data-free=" not in week["2025-04-09"]  # the week lists counts, not times


def test_opening_hours_closures_and_holidays_show_as_such(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, world.doctor_a, clock)
    week = sections(client.get("/staff/calendar?view=week&day=2025-04-07").text)
    assert "09:00–12:30, 15:00–18:00" in week["2025-04-07"]
    assert "09:00–12:30" in week["2025-04-10"]  # Thursday afternoon off
    assert "15:00–18:00" not in week["2025-04-10"]
    assert re.search(r'cal-row c4 shut[^"]*" data-time="15:30"', week["2025-04-10"])
    assert re.search(r'cal-row c4 open[^"]*" data-time="10:00"', week["2025-04-10"])
    assert "休診" in week["2025-04-11"]
    assert "院内研修" in week["2025-04-11"]
    assert "cal-day closed" in '<section class="cal-day' + week["2025-04-11"]
    assert "09:00–12:00" in week["2025-04-12"]
    assert "診療時間なし" in week["2025-04-13"]
    golden = sections(client.get("/staff/calendar?view=week&day=2025-04-29").text)
    assert next(iter(golden)) == "2025-04-28"
    assert "祝日のため休診" in golden["2025-04-29"]  # 昭和の日
    assert "09:00–12:30, 15:00–18:00" in golden["2025-04-30"]


def test_cancelled_and_lapsed_holds_show_only_when_asked(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, world.doctor_a, clock)
    booked = seeded.appointments
    hidden = placements(client.get("/staff/calendar?view=week&day=2025-04-07").text)
    assert booked["cancelled"] not in hidden
    assert booked["lapsed_hold"] not in hidden
    shown = client.get("/staff/calendar?view=week&day=2025-04-07&cancelled=1").text
    where = placements(shown)
    assert where[booked["cancelled"]] == ("2025-04-08", "10:00")
    assert where[booked["lapsed_hold"]] == ("2025-04-10", "11:30")
    assert "キャンセル" in card(shown, booked["cancelled"])
    assert "cancelled=1" in shown


def test_a_receptionist_reads_any_practitioner_and_the_read_is_audited(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock, settings: Settings
) -> None:
    sign_in_staff(client, world.receptionist_a, clock)
    first = client.get("/staff/calendar?view=week&day=2025-04-07")
    assert first.status_code == 200
    assert seeded.appointments["mon"] in placements(first.text)  # アオキ comes first
    sato = client.get(f"/staff/calendar?view=week&day=2025-04-07&practitioner={seeded.sato}")
    assert placements(sato.text) == {seeded.appointments["sato"]: ("2025-04-07", "10:00")}
    assert f'<option value="{seeded.sato}" selected>' in sato.text

    async def reads() -> list[dict[str, object]]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                rows = await AuditEntry.filter(
                    action="schedule.read", actor_id=world.receptionist_a.id
                ).order_by("seq")
                return [row.detail for row in rows]

    details = run_sync(reads())
    assert [d["practitioner_id"] for d in details] == [seeded.aoki, seeded.sato]
    assert details[1] == {
        "view": "calendar.week",
        "practitioner_id": seeded.sato,
        "first_day": "2025-04-07",
        "rows": 1,
    }
    assert "一子" not in str(details)  # ids and counts only


@pytest.mark.parametrize("practitioner", ["other_clinic", "unknown", "junk"])
def test_another_clinics_or_an_unknown_practitioner_is_not_found(
    client: TestClient, world: World, seeded: Seeded, clock: FakeClock, practitioner: str
) -> None:
    wanted = {
        "other_clinic": seeded.other_clinic,
        "unknown": "00000000-0000-4000-8000-00000000beef",
        "junk": "../../etc<script>",
    }[practitioner]
    sign_in_staff(client, world.admin_a, clock)
    response = client.get("/staff/calendar", params={"practitioner": wanted, "view": "week"})
    assert response.status_code == 404
    assert "見本 医師" not in response.text
    assert "二子" not in response.text


def test_only_signed_in_staff_may_open_the_calendar(
    client: TestClient, world: World, seeded: Seeded
) -> None:
    anonymous = client.get("/staff/calendar", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/staff/signin"
    sign_in_patient(client, PHONE_A, SMS_CODE)
    patient = client.get("/staff/calendar", follow_redirects=False)
    assert patient.status_code == 303
    assert patient.headers["location"] == "/staff/signin"


@pytest.mark.parametrize(
    ("query", "japanese", "english"),
    [
        ("view=month", "day(日)か week(週)", "The view must be day or week."),
        ("day=2025-13-01", "年-月-日", "Give the day as year-month-day"),
        ("day=tomorrow", "年-月-日", "Give the day as year-month-day"),
        ("day=9999-12-31&view=week", "年-月-日", "Give the day as year-month-day"),
    ],
)
def test_a_bad_view_or_day_is_refused_with_a_clear_message(
    client: TestClient,
    world: World,
    seeded: Seeded,
    clock: FakeClock,
    query: str,
    japanese: str,
    english: str,
) -> None:
    sign_in_staff(client, world.doctor_a, clock)
    response = client.get(f"/staff/calendar?{query}")
    assert response.status_code == 400
    assert japanese in response.text
    client.cookies.set("tsunagu_lang", "en")
    assert english in client.get(f"/staff/calendar?{query}").text


def test_daylight_saving_weeks_in_new_york(
    client: TestClient, seeded: Seeded, clock: FakeClock
) -> None:
    sign_in_staff(client, seeded.ny_staff, clock)
    booked = seeded.ny_appointments
    spring = client.get("/staff/calendar?view=week&day=2025-03-09").text
    assert days_of(spring)[0] == "2025-03-03"
    assert days_of(spring)[-1] == "2025-03-09"
    assert "America/New_York" in spring
    where = placements(spring)
    assert where[booked["sat_nine"]] == ("2025-03-08", "09:00")
    assert where[booked["sun_early"]] == ("2025-03-09", "00:30")
    assert where[booked["sun_late"]] == ("2025-03-09", "23:30")  # 03:30 UTC on Monday
    assert booked["mon_nine"] not in where
    after = placements(client.get("/staff/calendar?view=day&day=2025-03-10").text)
    assert after == {booked["mon_nine"]: ("2025-03-10", "09:00")}  # 13:00 UTC, 9:00 EDT
    autumn = placements(client.get("/staff/calendar?view=day&day=2025-11-02").text)
    assert autumn == {
        booked["first_130"]: ("2025-11-02", "01:30"),
        booked["second_130"]: ("2025-11-02", "01:30"),
    }
