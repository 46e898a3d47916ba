"""Session stores (database and Redis) under the same rules: timeouts, rotation, sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from redis.asyncio import Redis
from starlette.testclient import TestClient

from patient_portal.app import create_app
from patient_portal.auth.models import PrincipalKind, Session
from patient_portal.auth.sessions import (
    DatabaseSessionStore,
    RedisSessionStore,
    Sessions,
    SessionStore,
    session_id,
)
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.settings import Secret, Settings
from tests.integration.patient_portal.conftest import World
from tests.support.clock import FakeClock
from tests.support.web import sign_in_staff

STAFF_ID = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(params=["database", "redis"])
async def store(request: pytest.FixtureRequest, db: Settings) -> AsyncIterator[SessionStore]:
    if request.param == "database":
        yield DatabaseSessionStore()
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisSessionStore(client, prefix="tsunagu-test:session:")
    finally:
        await client.aclose()


async def test_the_store_keeps_only_a_hash_of_the_token(store: SessionStore) -> None:
    clock = FakeClock()
    token, data = await Sessions(store, clock).start(PrincipalKind.STAFF, STAFF_ID)
    assert data.id == session_id(token) != token
    assert await store.get(token) is None
    if isinstance(store, DatabaseSessionStore):
        assert not await Session.filter(id=token).exists()


async def test_idle_and_absolute_timeouts(store: SessionStore) -> None:
    clock = FakeClock()
    sessions = Sessions(store, clock)
    token, _ = await sessions.start(PrincipalKind.STAFF, STAFF_ID)
    clock.advance(minutes=29)
    assert await sessions.load(token) is not None  # use keeps it alive
    clock.advance(minutes=29)
    assert await sessions.load(token) is not None
    clock.advance(minutes=31)
    assert await sessions.load(token) is None  # idle too long
    assert await sessions.load(token) is None  # and gone for good

    patient_token, _ = await sessions.start(PrincipalKind.PATIENT, STAFF_ID)
    for _ in range(4):
        clock.advance(days=6)
        assert await sessions.load(patient_token) is not None
    clock.advance(days=6)  # 30 days: the absolute lifetime ends it, though it was never idle
    assert await sessions.load(patient_token) is None


async def test_mfa_pending_sessions_are_short(store: SessionStore) -> None:
    clock = FakeClock()
    sessions = Sessions(store, clock)
    token, data = await sessions.start(PrincipalKind.STAFF, STAFF_ID, mfa_pending=True)
    assert data.mfa_pending
    clock.advance(minutes=6)
    assert await sessions.load(token) is None


async def test_replacing_rotates_and_sign_out_everywhere(store: SessionStore) -> None:
    clock = FakeClock()
    sessions = Sessions(store, clock)
    pending, _ = await sessions.start(PrincipalKind.STAFF, STAFF_ID, mfa_pending=True)
    full, _ = await sessions.start(PrincipalKind.STAFF, STAFF_ID, replacing=pending)
    assert await sessions.load(pending) is None
    other, _ = await sessions.start(PrincipalKind.STAFF, STAFF_ID)
    assert {s.id for s in await sessions.active(PrincipalKind.STAFF, STAFF_ID)} == {
        session_id(full),
        session_id(other),
    }
    assert await sessions.end_all(PrincipalKind.STAFF, STAFF_ID, keep_token=full) == 1
    assert await sessions.load(other) is None
    assert await sessions.load(full) is not None
    await sessions.end(full)
    assert await sessions.active(PrincipalKind.STAFF, STAFF_ID) == []


def test_the_portal_keeps_sessions_in_redis_when_configured(
    settings: Settings, world: World, redis_url: str
) -> None:
    clock = FakeClock()
    app = create_app(
        replace(settings, redis_url=Secret(redis_url)),
        verifier=ConsoleVerifier(clock),
        clock=clock,
    )
    with TestClient(app, base_url="http://127.0.0.1") as browser:
        assert sign_in_staff(browser, world.doctor_a, clock).headers["location"] == "/staff"
        assert browser.get("/staff").status_code == 200

    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in client.keys("tsunagu:session:*")]
    finally:
        client.close()
    assert any(not k.startswith("tsunagu:session:by:") for k in keys)
