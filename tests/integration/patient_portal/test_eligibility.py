"""Revisit menus and online first-visit rules are enforced when a patient confirms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    SeatClaim,
    VisitKind,
    VisitMode,
)
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, World
from tests.integration.patient_portal.test_booking import free, hold, token
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync


@pytest.fixture
def menus(settings: Settings, world: World) -> dict[str, str]:
    async def seed() -> dict[str, str]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                a = await Clinic.get(id=world.clinic_a)
                revisit, _ = await make_menu(a, visit_kind=VisitKind.REVISIT)
                online_first, _ = await make_menu(
                    a,
                    visit_kind=VisitKind.FIRST,
                    mode=VisitMode.ONLINE,
                    online_rules=["pre_consultation_required"],
                )
                pre, _ = await make_menu(
                    a, visit_kind=VisitKind.FIRST, mode=VisitMode.ONLINE, pre_consultation=True
                )
                return {
                    "revisit": str(revisit.id),
                    "online": str(online_first.id),
                    "pre": str(pre.id),
                }

    return run_sync(seed())


def _finish(settings: Settings, appointment_id: str, days_ago: int) -> None:
    """The clinic's record of a visit that happened: the appointment is done, moved into the
    past (its seat claims go with it, as they would have lapsed)."""

    async def done() -> None:
        async with database(settings, global_fallback=False):
            appointment = await Appointment.get(id=appointment_id)
            past = appointment.starts_at - timedelta(days=days_ago)
            await SeatClaim.filter(appointment_id=appointment_id).delete()
            await Appointment.filter(id=appointment_id).update(
                status=AppointmentStatus.DONE, starts_at=past, ends_at=past + timedelta(minutes=15)
            )

    run_sync(done())


def _book(browser: TestClient, auth: dict[str, str], menu_id: str, patient_id: str) -> object:
    slot = free(browser, menu_id)[0]
    held = hold(browser, auth, menu_id, slot).json()
    return browser.post(
        f"/api/v1/appointments/{held['id']}/confirm", json={"patient_id": patient_id}, headers=auth
    )


def test_a_new_patient_cannot_book_a_revisit_until_they_have_visited(
    browser: TestClient, world: World, menus: dict[str, str], settings: Settings, clock: FakeClock
) -> None:
    auth = token(browser, PHONE_A)
    refused = _book(browser, auth, menus["revisit"], world.patient_a)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "再診" in refused.json()["detail"]  # type: ignore[attr-defined]
    english = dict(auth, **{"Accept-Language": "en"})
    refused_en = _book(browser, english, menus["revisit"], world.patient_a)
    assert "returning patients" in refused_en.json()["detail"]  # type: ignore[attr-defined]
    # Nothing was booked (the holds stay holds until they lapse).
    assert browser.get("/api/v1/appointments", headers=auth).json()["appointments"] == []

    # After a completed visit (any menu) the patient is a returning patient.
    first = _book(browser, auth, menus["pre"], world.patient_a)
    assert first.status_code == 200  # type: ignore[attr-defined]
    _finish(settings, first.json()["id"], days_ago=0)  # type: ignore[attr-defined]
    still = _book(browser, auth, menus["revisit"], world.patient_a)
    assert still.status_code == 422  # type: ignore[attr-defined]  (a pre-consultation is no visit)


def test_online_first_visit_needs_a_recent_pre_consultation(
    browser: TestClient, world: World, menus: dict[str, str], settings: Settings
) -> None:
    auth = token(browser, PHONE_A)
    refused = _book(browser, auth, menus["online"], world.patient_a)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "診療前相談" in refused.json()["detail"]  # type: ignore[attr-defined]

    old = _book(browser, auth, menus["pre"], world.patient_a)
    _finish(settings, old.json()["id"], days_ago=45)  # type: ignore[attr-defined]
    assert _book(browser, auth, menus["online"], world.patient_a).status_code == 422  # type: ignore[attr-defined]

    recent = _book(browser, auth, menus["pre"], world.patient_a)
    _finish(settings, recent.json()["id"], days_ago=2)  # type: ignore[attr-defined]
    booked = _book(browser, auth, menus["online"], world.patient_a)
    assert booked.status_code == 200, booked.text  # type: ignore[attr-defined]
    assert booked.json()["status"] == "booked"  # type: ignore[attr-defined]


def test_the_clinic_page_shows_each_rule(browser: TestClient, menus: dict[str, str]) -> None:
    page = browser.get("/clinics/clinic-a").text
    assert "診療前相談" in page
    english = browser.get("/clinics/clinic-a", headers={"Accept-Language": "en"}).text
    assert "pre-consultation" in english
