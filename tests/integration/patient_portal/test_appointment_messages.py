"""Booking messages are jobs: sent once, reminders on time, and never after a cancellation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from booking.models import Clinic
from patient_portal.app import create_app
from patient_portal.appointment_messages import compose
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.notify import Composite
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, SMS_CODE, World
from tests.support.booking import make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import post_form


class Outbox:
    """An SMS channel that keeps what it was given (the port's own contract, no provider)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_sms(self, to: str, body: str, *, key: str) -> str:
        self.sent.append((to, body))
        return f"test-{len(self.sent)}"

    async def aclose(self) -> None:
        return None


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
def app(settings: Settings, clock: FakeClock, outbox: Outbox, menu_id: str) -> Starlette:
    return create_app(
        settings,
        verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE),
        notifier=Composite(sms=outbox),
        clock=clock,
    )


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def wait_for(outbox: Outbox, count: int, client: TestClient, seconds: float = 10) -> None:
    """The in-process runner works in the background (polling every second); give it a bounded
    moment. Checks that nothing more arrives wait a little over one poll."""
    deadline = time.monotonic() + seconds
    while len(outbox.sent) < count and time.monotonic() < deadline:
        client.get("/healthz")
        time.sleep(0.05)


def book(client: TestClient, menu_id: str, world: World, days_ahead: int) -> dict[str, Any]:
    client.post("/api/v1/auth/sms/start", json={"phone": PHONE_A})
    tokens = client.post("/api/v1/auth/sms/verify", json={"phone": PHONE_A, "code": SMS_CODE})
    auth = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    day = (datetime.now(UTC).date() + timedelta(days=days_ahead)).isoformat()
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
        headers=auth,
    ).json()
    booked = client.post(
        f"/api/v1/appointments/{held['id']}/confirm",
        json={"patient_id": world.patient_a},
        headers=auth,
    )
    assert booked.status_code == 200, booked.text
    return {**booked.json(), "auth": auth}


def test_confirmation_then_reminders_the_day_before_and_the_hour_before(
    client: TestClient, outbox: Outbox, menu_id: str, world: World, clock: FakeClock
) -> None:
    appointment = book(client, menu_id, world, days_ahead=3)
    wait_for(outbox, 1, client)
    assert len(outbox.sent) == 1
    to, body = outbox.sent[0]
    assert to == PHONE_A
    assert "ご予約を承りました" in body
    assert "見本クリニック" in body
    assert re.search(r"http://127\.0\.0\.1:8000/a/[\w.-]+$", body)  # a signed link
    assert "一子" not in body  # no patient name in an SMS
    start = datetime.fromisoformat(appointment["start"])
    clock.now = start - timedelta(days=1) + timedelta(seconds=1)
    wait_for(outbox, 2, client)
    assert "にご予約があります" in outbox.sent[1][1]
    clock.now = start - timedelta(hours=1) + timedelta(seconds=1)
    wait_for(outbox, 3, client)
    assert len(outbox.sent) == 3
    clock.now = start + timedelta(hours=1)
    wait_for(outbox, 4, client, seconds=2.5)
    assert len(outbox.sent) == 3  # nothing more, and nothing twice


def test_a_cancelled_appointment_gets_a_cancellation_and_no_reminder(
    client: TestClient, outbox: Outbox, menu_id: str, world: World, clock: FakeClock
) -> None:
    appointment = book(client, menu_id, world, days_ahead=3)
    wait_for(outbox, 1, client)
    cancelled = client.post(
        f"/api/v1/appointments/{appointment['id']}/cancel", headers=appointment["auth"]
    )
    assert cancelled.status_code == 200
    wait_for(outbox, 2, client)
    assert "キャンセルしました" in outbox.sent[1][1]
    clock.now = datetime.fromisoformat(appointment["start"]) - timedelta(minutes=30)
    wait_for(outbox, 3, client, seconds=2.5)
    assert len(outbox.sent) == 2


def _set_offsets(settings: Settings, world: World, offsets: object) -> None:
    async def change() -> None:
        async with database(settings, global_fallback=False):
            await Clinic.filter(id=world.clinic_a).update(reminder_offsets_minutes=offsets)

    run_sync(change())


def test_reminders_follow_the_clinic_offsets(
    client: TestClient,
    outbox: Outbox,
    menu_id: str,
    world: World,
    clock: FakeClock,
    settings: Settings,
) -> None:
    _set_offsets(settings, world, [180, 180, -5])  # three hours before (once); nonsense ignored
    appointment = book(client, menu_id, world, days_ahead=3)
    wait_for(outbox, 1, client)
    start = datetime.fromisoformat(appointment["start"])
    clock.now = start - timedelta(days=1) + timedelta(seconds=1)  # the default offset: nothing
    wait_for(outbox, 2, client, seconds=2.5)
    assert len(outbox.sent) == 1
    clock.now = start - timedelta(hours=3) + timedelta(seconds=1)
    wait_for(outbox, 2, client)
    assert len(outbox.sent) == 2
    assert "にご予約があります" in outbox.sent[1][1]
    clock.now = start - timedelta(minutes=30)
    wait_for(outbox, 3, client, seconds=2.5)
    assert len(outbox.sent) == 2


def _link_path(body: str) -> str:
    match = re.search(r"http://127\.0\.0\.1:8000(/a/[\w.-]+)$", body)
    assert match, body
    return match.group(1)


def test_the_link_in_a_message_shows_clinic_and_time_until_the_patient_signs_in(
    client: TestClient, outbox: Outbox, menu_id: str, world: World, clock: FakeClock
) -> None:
    appointment = book(client, menu_id, world, days_ahead=3)
    wait_for(outbox, 1, client)
    link = _link_path(outbox.sent[0][1])
    client.cookies.clear()
    shown = client.get(link)
    assert shown.status_code == 200
    assert "見本クリニック" in shown.text
    assert "一子" not in shown.text  # nothing about the patient for whoever holds the link
    assert appointment["id"] not in shown.text
    # A forged or altered link is nothing at all.
    assert client.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB")).status_code == 404
    assert client.get("/a/not-a-link").status_code == 404
    # Signing in from the link's page comes back to it, then on to the appointment.
    signin_page = client.get(f"/signin?next={link}")
    assert f'name="next" value="{link}"' in signin_page.text
    post_form(client, "/signin", {"phone": PHONE_A, "next": link}, page="/signin")
    signed_in = post_form(
        client,
        "/signin/code",
        {"phone": PHONE_A, "code": SMS_CODE, "next": link},
        page="/signin",
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == link
    opened = client.get(link, follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/appointments#appointment-{appointment['id']}"
    # Another site as "next" is refused: a signed-in patient goes to the account page instead.
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        bounced = client.get("/signin", params={"next": elsewhere}, follow_redirects=False)
        assert bounced.headers["location"] == "/account"
    # A week after the visit the link has expired.
    clock.now = datetime.fromisoformat(appointment["end"]) + timedelta(days=8)
    client.cookies.clear()
    expired = client.get(link)
    assert expired.status_code == 410
    assert "有効期限" in expired.text


def test_message_text_has_the_clinic_time_and_link_only() -> None:
    subject, body = compose(
        "reminder",
        "見本クリニック",
        datetime(2030, 5, 1, 9, 30, tzinfo=UTC),
        "https://clinic.example/a",
    )
    assert subject == "【見本クリニック】ご予約のお知らせ"
    assert body.splitlines() == [
        "見本クリニック: 05/01 09:30 にご予約があります。",
        "Reminder: 見本クリニック, 05/01 09:30.",
        "https://clinic.example/a",
    ]
