"""The waitlist: first come, first served, one seat never offered to two people at once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from booking.models import Clinic
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.notify import Composite
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import SMS_CODE, World
from tests.integration.patient_portal.test_appointment_messages import Outbox
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync

PEOPLE = ["+819033330001", "+819033330002", "+819033330003", "+819033330004"]


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def menu_id(settings: Settings, world: World) -> str:
    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                menu, _ = await make_menu(await Clinic.get(id=world.clinic_a))
                return str(menu.id)

    return run_sync(seed())


@pytest.fixture
def client(
    settings: Settings, clock: FakeClock, outbox: Outbox, menu_id: str
) -> Iterator[TestClient]:
    app: Starlette = create_app(
        settings,
        verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE),
        notifier=Composite(sms=outbox),
        clock=clock,
    )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def signin(client: TestClient, phone: str) -> dict[str, str]:
    client.post("/api/v1/auth/sms/start", json={"phone": phone})
    tokens = client.post("/api/v1/auth/sms/verify", json={"phone": phone, "code": SMS_CODE})
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def person(client: TestClient, phone: str) -> tuple[dict[str, str], str]:
    """A new account with its own patient record: (bearer header, patient id)."""
    auth = signin(client, phone)
    created = client.post(
        "/api/v1/me/patients",
        json={
            "family_name": "見本",
            "given_name": "待子",
            "family_name_kana": "みほん",
            "given_name_kana": "まちこ",
            "birth_date": "1970-01-01",
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    return auth, created.json()["id"]


def messages_to(outbox: Outbox, phone: str) -> list[str]:
    return [body for to, body in outbox.sent if to == phone]


def wait_until(check: Any, client: TestClient, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        client.get("/healthz")
        time.sleep(0.05)


def test_a_freed_seat_goes_to_the_first_in_line_then_the_next(
    client: TestClient, outbox: Outbox, menu_id: str, clock: FakeClock
) -> None:
    people = [person(client, phone) for phone in PEOPLE]
    day = (clock.now + timedelta(days=3)).date().isoformat()
    slots = client.get(
        f"/api/v1/clinics/clinic-a/menus/{menu_id}/slots", params={"from": day, "days": 1}
    ).json()["slots"]
    slot = slots[0]
    # The first person books the seat; the three others wait for that day, in this order.
    owner_auth, owner_patient = people[0]
    held = client.post(
        "/api/v1/holds",
        json={
            "clinic": "clinic-a",
            "menu_id": menu_id,
            "practitioner_id": slot["practitioner_id"],
            "start": slot["start"],
        },
        headers=owner_auth,
    ).json()
    client.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": owner_patient},
        headers=owner_auth,
    )
    for auth, patient in people[1:]:
        joined = client.post(
            "/api/v1/waitlist",
            json={
                "clinic": "clinic-a",
                "menu_id": menu_id,
                "patient_id": patient,
                "first_day": day,
                "last_day": day,
            },
            headers=auth,
        )
        assert joined.status_code == 201, joined.text
        clock.advance(seconds=1)  # a strict order of joining

    client.post(f"/api/v1/appointments/{held['id']}/cancel", headers=owner_auth)
    wait_until(lambda: messages_to(outbox, PEOPLE[1]), client)
    offer = messages_to(outbox, PEOPLE[1])
    assert len(offer) == 1
    assert "空きが出ました" in offer[0]
    link = re.search(r"http://127\.0\.0\.1:8000(/a/[\w.-]+)$", offer[0])
    assert link, offer[0]
    opened = client.get(link.group(1), headers=people[1][0], follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"].endswith("/confirm")  # straight to the offered time
    assert messages_to(outbox, PEOPLE[2]) == []
    # The seat is taken by the offer: nobody else can book it meanwhile.
    assert slot["start"] not in {
        s["start"]
        for s in client.get(
            f"/api/v1/clinics/clinic-a/menus/{menu_id}/slots", params={"from": day, "days": 1}
        ).json()["slots"]
    }

    # The first in line lets it lapse; it goes to the next. (Access tokens last 15 minutes.)
    clock.advance(minutes=31)
    people = [
        (signin(client, phone), patient) for phone, (_, patient) in zip(PEOPLE, people, strict=True)
    ]
    wait_until(lambda: messages_to(outbox, PEOPLE[2]), client)
    assert len(messages_to(outbox, PEOPLE[2])) == 1
    listed = client.get("/api/v1/waitlist", headers=people[2][0])
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [e["status"] for e in entries] == ["offered"]
    lapsed = client.get("/api/v1/waitlist", headers=people[1][0]).json()["entries"]
    assert lapsed == []  # no longer waiting

    # The second takes it.
    offered_id = entries[0]["offer_appointment_id"]
    booked = client.post(
        f"/api/v1/appointments/{offered_id}/confirm",
        json={"patient_id": people[2][1]},
        headers=people[2][0],
    )
    assert booked.status_code == 200, booked.text
    assert client.get("/api/v1/waitlist", headers=people[2][0]).json()["entries"] == []
    clock.advance(minutes=31)
    time.sleep(1.5)
    client.get("/healthz")
    assert messages_to(outbox, PEOPLE[3]) == []  # the last in line was never offered it
    mine = client.get("/api/v1/appointments", headers=signin(client, PEOPLE[2])).json()[
        "appointments"
    ]
    assert [a["status"] for a in mine] == ["booked"]
    assert datetime.fromisoformat(mine[0]["start"]) == datetime.fromisoformat(slot["start"])


def test_joining_is_for_days_ahead_only(client: TestClient, menu_id: str, clock: FakeClock) -> None:
    auth, patient = person(client, PEOPLE[0])
    yesterday = (clock.now - timedelta(days=1)).date().isoformat()
    refused = client.post(
        "/api/v1/waitlist",
        json={
            "clinic": "clinic-a",
            "menu_id": menu_id,
            "patient_id": patient,
            "first_day": yesterday,
            "last_day": yesterday,
        },
        headers=auth,
    )
    assert refused.status_code == 422
    assert "キャンセル待ち" in refused.json()["detail"]


def test_a_hold_that_lapses_unconfirmed_goes_to_the_first_in_line(
    client: TestClient, outbox: Outbox, menu_id: str, clock: FakeClock
) -> None:
    (holder_auth, _), (waiting_auth, waiting_patient) = (
        person(client, PEOPLE[0]),
        person(client, PEOPLE[1]),
    )
    day = (clock.now + timedelta(days=2)).date().isoformat()
    slot = client.get(
        f"/api/v1/clinics/clinic-a/menus/{menu_id}/slots", params={"from": day, "days": 1}
    ).json()["slots"][0]
    held = client.post(
        "/api/v1/holds",
        json={
            "clinic": "clinic-a",
            "menu_id": menu_id,
            "practitioner_id": slot["practitioner_id"],
            "start": slot["start"],
        },
        headers=holder_auth,
    )
    assert held.status_code == 201, held.text
    joined = client.post(
        "/api/v1/waitlist",
        json={
            "clinic": "clinic-a",
            "menu_id": menu_id,
            "patient_id": waiting_patient,
            "first_day": day,
            "last_day": day,
        },
        headers=waiting_auth,
    )
    assert joined.status_code == 201, joined.text
    time.sleep(1.5)  # a poll of the runner while the hold is live: no offer yet
    client.get("/healthz")
    assert messages_to(outbox, PEOPLE[1]) == []

    clock.advance(minutes=11)  # the ten-minute hold lapses without a confirmation
    wait_until(lambda: messages_to(outbox, PEOPLE[1]), client)
    offer = messages_to(outbox, PEOPLE[1])
    assert len(offer) == 1
    assert "空きが出ました" in offer[0]
    entries = client.get("/api/v1/waitlist", headers=signin(client, PEOPLE[1])).json()["entries"]
    assert [e["status"] for e in entries] == ["offered"]
    # The first patient's hold is gone: confirming it now is refused.
    late = client.post(
        f"/api/v1/appointments/{held.json()['id']}/confirm",
        json={"patient_id": waiting_patient},
        headers=signin(client, PEOPLE[0]),
    )
    assert late.status_code in (409, 422)
