"""The staff calendar in a real browser: a timeline on a 375 px phone, seven columns on a desktop,
each appointment in its day's column and its time's row, and nothing wider than the screen."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
import pytest

from booking.models import (
    Appointment,
    AppointmentStatus,
    Menu,
    Practitioner,
    VisitKind,
    VisitMode,
    WeeklyHours,
)
from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.live_server import serve

TOKYO = ZoneInfo("Asia/Tokyo")
WEDNESDAY = date(2025, 4, 9)
FRIDAY = date(2025, 4, 11)


@dataclass(frozen=True)
class Seeded:
    doctor: SeededStaff
    wednesday: str  # 10:30, in person
    friday: str  # 14:00, online


@pytest.fixture
def seeded(settings: Settings) -> Seeded:
    async def seed() -> Seeded:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("calendar-e2e")
                patient = await make_patient("+819055550202", clinic, given_name="暦子")
                doctor = await make_staff(clinic, StaffRole.DOCTOR)
                practitioner = await Practitioner.create(
                    clinic=clinic,
                    staff_id=doctor.id,
                    display_name="青木 医師",
                    display_name_kana="アオキ イシ",
                )
                for weekday in range(7):
                    await WeeklyHours.create(
                        practitioner=practitioner,
                        weekday=weekday,
                        start_minute=540,
                        end_minute=1080,
                    )
                menu = await Menu.create(
                    clinic=clinic,
                    title_ja="内科 再診",
                    title_en="Internal medicine, follow-up",
                    mode=VisitMode.BOTH,
                    visit_kind=VisitKind.REVISIT,
                    duration_minutes=15,
                )
                ids = []
                for day, hour, minute in ((WEDNESDAY, 10, 30), (FRIDAY, 14, 0)):
                    start = datetime.combine(day, time(hour, minute), tzinfo=TOKYO).astimezone(UTC)
                    row = await Appointment.create(
                        clinic=clinic,
                        menu=menu,
                        practitioner=practitioner,
                        account_id=patient.account_id,  # type: ignore[attr-defined]
                        patient_id=patient.id,
                        starts_at=start,
                        ends_at=start + timedelta(minutes=15),
                        status=AppointmentStatus.BOOKED,
                        created_at=start,
                        updated_at=start,
                    )
                    ids.append(str(row.id))
                return Seeded(doctor, ids[0], ids[1])

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, seeded: Seeded) -> Iterator[str]:
    with serve(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
def staff_page(browser: Any, live_url: str, seeded: Seeded) -> Iterator[Any]:
    """One signed-in staff browser (an authenticator code is accepted once), phone-sized."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="ja-JP")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.problems = problems
    page.goto(live_url + "/staff/signin")
    page.fill("#f-login", seeded.doctor.login_id)
    page.fill("#f-password", seeded.doctor.password)
    page.click("button.primary")
    page.wait_for_url(live_url + "/staff/signin/code")
    page.fill("#f-code", pyotp.TOTP(seeded.doctor.totp_secret).now())
    page.click("button.primary")
    page.wait_for_url(live_url + "/staff")
    try:
        yield page
    finally:
        context.close()


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return found  # type: ignore[no-any-return]


def row(day: date, at: str) -> str:
    return f'section[data-day="{day.isoformat()}"] .cal-row[data-time="{at}"]'


def test_the_calendar_reads_on_a_phone_and_spreads_over_a_desktop(
    live_url: str, seeded: Seeded, staff_page: Any
) -> None:
    page = staff_page
    card = f'[data-appointment="{seeded.wednesday}"]'
    friday_card = f'[data-appointment="{seeded.friday}"]'

    # A phone, day view: a timeline, the visit inside its half-hour row, nothing to scroll sideways.
    page.goto(f"{live_url}/staff/calendar?day={WEDNESDAY.isoformat()}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator(f"{row(WEDNESDAY, '10:30')} {card}").is_visible()
    assert "見本 暦子" in page.locator(card).inner_text()
    above, inside, below = (
        box(page, row(WEDNESDAY, "10:00")),
        box(page, card),
        box(page, row(WEDNESDAY, "11:00")),
    )
    assert above["y"] + above["height"] <= inside["y"] < below["y"]
    assert inside["x"] + inside["width"] <= 375

    # A phone, week view: a list of days, one under the other.
    page.goto(f"{live_url}/staff/calendar?view=week&day={WEDNESDAY.isoformat()}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    monday = box(page, 'section[data-day="2025-04-07"] .cal-head')
    wednesday = box(page, 'section[data-day="2025-04-09"] .cal-head')
    assert wednesday["y"] > monday["y"] + monday["height"]
    assert abs(wednesday["x"] - monday["x"]) < 1
    assert page.locator(card).is_visible()
    assert page.locator(friday_card).is_visible()
    assert box(page, friday_card)["y"] > box(page, card)["y"]

    # A desktop, week view: seven columns side by side, rows aligned across them.
    page.set_viewport_size({"width": 1366, "height": 900})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    heads = [
        box(
            page,
            f'section[data-day="{(date(2025, 4, 7) + timedelta(days=n)).isoformat()}"] .cal-head',
        )
        for n in range(7)
    ]
    assert all(abs(h["y"] - heads[0]["y"]) < 1 for h in heads)
    assert all(a["x"] + a["width"] <= b["x"] + 1 for a, b in itertools.pairwise(heads))
    wednesday_head, friday_head = heads[2], heads[4]
    inside = box(page, card)
    assert wednesday_head["x"] <= inside["x"] < wednesday_head["x"] + wednesday_head["width"]
    ten, eleven = box(page, row(WEDNESDAY, "10:00")), box(page, row(WEDNESDAY, "11:00"))
    assert ten["y"] + ten["height"] <= inside["y"] < eleven["y"]
    assert abs(box(page, row(FRIDAY, "10:00"))["y"] - ten["y"]) < 1  # rows line up
    friday = box(page, friday_card)
    assert friday_head["x"] <= friday["x"] < friday_head["x"] + friday_head["width"]
    assert friday["y"] > eleven["y"]  # 14:00 is further down than 11:00
    assert page.problems == []
