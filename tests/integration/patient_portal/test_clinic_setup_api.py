"""The clinic set-up through the API: the same rules, messages and audit as the pages."""

from __future__ import annotations

from starlette.testclient import TestClient

from booking.models import Menu
from tests.integration.patient_portal.conftest import World
from tests.integration.patient_portal.test_clinic_setup import (
    TOKYO,
    audit_actions,
    bearer,
    in_db,
    next_weekday,
    slot_times,
)
from tests.support.clock import FakeClock

MENU = {
    "title_ja": "内科 再診",
    "title_en": "Internal medicine, follow-up",
    "mode": "in_person",
    "visit_kind": "either",
    "duration_minutes": 30,
    "min_notice_minutes": 0,
}


def test_an_integration_sets_up_a_bookable_menu(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    auth = bearer(browser, world.admin_a, clock)
    doctor = browser.post(
        "/api/v1/staff/practitioners",
        json={"display_name": "見本 一郎", "display_name_kana": "ミホン イチロウ"},
        headers=auth,
    )
    assert doctor.status_code == 201, doctor.text
    doctor_id = doctor.json()["id"]
    menu = browser.post(
        "/api/v1/staff/menus", json={**MENU, "practitioner_ids": [doctor_id]}, headers=auth
    )
    assert menu.status_code == 201, menu.text
    menu_id = menu.json()["id"]
    assert menu.json()["practitioner_ids"] == [doctor_id]
    hours = browser.post(
        f"/api/v1/staff/practitioners/{doctor_id}/hours",
        json={"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "10:00"},
        headers=auth,
    )
    assert hours.status_code == 201, hours.text
    assert len(hours.json()["hours"]) == 5
    monday = next_weekday(clock.now.astimezone(TOKYO).date(), 0)
    assert slot_times(browser, menu_id, monday) == ["09:00", "09:30"]

    closed = browser.post(
        "/api/v1/staff/exceptions",
        json={"day": monday.isoformat(), "kind": "closed_day", "note": "研修"},
        headers=auth,
    )
    assert closed.status_code == 201, closed.text
    assert slot_times(browser, menu_id, monday) == []
    removed = browser.delete(f"/api/v1/staff/exceptions/{closed.json()['id']}", headers=auth)
    assert removed.status_code == 204
    assert slot_times(browser, menu_id, monday) == ["09:00", "09:30"]

    longer = browser.put(
        f"/api/v1/staff/menus/{menu_id}",
        json={**MENU, "duration_minutes": 60, "practitioner_ids": [doctor_id]},
        headers=auth,
    )
    assert longer.status_code == 200, longer.text
    assert slot_times(browser, menu_id, monday) == ["09:00"]

    async def stored() -> int:
        return (await Menu.get(id=menu_id)).duration_minutes

    assert in_db(browser, stored) == 60
    actions = [action for action, _, _ in audit_actions(browser, world.clinic_a)]
    for done in ("practitioner.create", "menu.create", "hours.create", "exception.create"):
        assert done in actions
    assert "exception.delete" in actions
    assert "menu.update" in actions


def test_bad_changes_are_refused_field_by_field_and_write_nothing(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    auth = bearer(browser, world.admin_a, clock)
    bad = browser.post(
        "/api/v1/staff/menus",
        json={**MENU, "duration_minutes": 7, "mode": "in_person", "online_rules": ["bogus"]},
        headers={**auth, "Accept-Language": "en"},
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"body.duration_minutes", "body.online_rules"} <= fields

    async def count() -> int:
        return await Menu.filter(clinic_id=world.clinic_a).count()

    assert in_db(browser, count) == 0
    taken = browser.put(
        "/api/v1/staff/clinic/profile",
        json={
            "name": "見本クリニック",
            "name_kana": "ミホンクリニック",
            "postal_code": "100-0001",
            "address": "東京都千代田区",
            "phone": "03-1000-0000",
            "slug": "clinic-b",  # the other clinic's address
        },
        headers=auth,
    )
    assert taken.status_code == 422
    assert [e["field"] for e in taken.json()["errors"]] == ["body.slug"]
    clock.advance(seconds=30)
    doctor = bearer(browser, world.doctor_a, clock)
    assert browser.post("/api/v1/staff/menus", json=MENU, headers=doctor).status_code == 403
    missing = browser.put(
        "/api/v1/staff/menus/00000000-0000-4000-8000-0000000000ff", json=MENU, headers=auth
    )
    assert missing.status_code == 404
