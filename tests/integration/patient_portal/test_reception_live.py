"""The reception list updates live: its event stream over real HTTP (uvicorn on loopback), fed by
real pub/sub (in memory and through Redis) from a patient on the real consult websocket, staff
changing a status and a patient cancelling — and nobody else's clinic, no patient, no leftover
subscription or task when the browser goes away."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send
from websockets.sync.client import connect

from booking.models import Clinic, VisitMode
from patient_portal import reception as sse
from patient_portal.accounts import service as accounts
from patient_portal.accounts.models import Patient
from patient_portal.app import create_app
from patient_portal.audit.models import AuditEntry
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.consults import reception_channel
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.pubsub import InMemoryPubSub, Message
from patient_portal.settings import Secret, Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, SMS_CODE, World
from tests.support.booking import book, make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.live_server import serve
from tests.support.web import post_form, sign_in_patient, sign_in_staff

TOKYO = ZoneInfo("Asia/Tokyo")
HEARTBEAT = 0.3  # seconds, instead of 15: the reader below notices a closed stream this fast
QUIET = 1.0  # how long "no event" is watched for


@pytest.fixture(autouse=True)
def short_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", HEARTBEAT)


@pytest.fixture
def online(settings: Settings, world: World, clock: FakeClock) -> str:
    """Patient A's online consult at clinic A, five minutes from now (its room is open)."""

    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await Clinic.get(id=world.clinic_a)
                menu, doctor = await make_menu(clinic, mode=VisitMode.ONLINE)
                patient = await Patient.get(id=world.patient_a)
                start = clock.now + timedelta(minutes=5)
                return str((await book(clinic, menu, doctor, patient, start, now=clock.now)).id)

    return run_sync(seed())


@dataclass
class Live:
    url: str
    app: Starlette
    loop: asyncio.AbstractEventLoop  # the server's
    redis_url: str | None

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the server's event loop (to look at its tasks)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def subscribers(self, clinic_id: str) -> int:
        channel = reception_channel(clinic_id)
        if self.redis_url is None:
            pubsub = self.app.state.pubsub
            assert isinstance(pubsub, InMemoryPubSub)
            return len(pubsub._channels.get(channel, ()))
        client = redis.Redis.from_url(self.redis_url)
        try:
            return int(
                dict(client.pubsub_numsub("tsunagu:" + channel))[b"tsunagu:" + channel.encode()]
            )
        finally:
            client.close()

    def reception_tasks(self) -> list[str]:
        async def names() -> list[str]:
            return [
                t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("reception")
            ]

        return self.run(names())  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def live(
    request: pytest.FixtureRequest, settings: Settings, clock: FakeClock, world: World, online: str
) -> Iterator[Live]:
    """The portal on a real uvicorn server, its pub/sub in memory or through Redis."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    if redis_url is not None:
        settings = replace(settings, redis_url=Secret(redis_url))
    app = create_app(settings, verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE), clock=clock)
    loops: list[asyncio.AbstractEventLoop] = []

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        if not loops:
            loops.append(asyncio.get_running_loop())
        await app(scope, receive, send)

    with serve(watched) as url:
        yield Live(url, app, loops[0], redis_url)


class Events:
    """An event stream read in a thread: ``(event, data)`` pairs, ``("comment", text)`` for
    heartbeats, ``None`` once the server ended it. ``close()`` goes away like a browser tab."""

    def __init__(self, client: httpx.Client, path: str = "/staff/schedule/events") -> None:
        self.received: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.headers: httpx.Headers | None = None
        self._leave = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(client, path), daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the stream did not open"

    def _read(self, client: httpx.Client, path: str) -> None:
        try:
            with client.stream("GET", path, timeout=httpx.Timeout(10.0)) as response:
                self.headers = response.headers
                self._opened.set()
                event, data = "message", ""
                for line in response.iter_lines():
                    if self._leave.is_set():
                        return  # leaving the block closes the connection
                    if line.startswith(":"):
                        self.received.put(("comment", line[1:].strip()))
                    elif line.startswith("event:"):
                        event = line.partition(":")[2].strip()
                    elif line.startswith("data:"):
                        data = line.partition(":")[2].strip()
                    elif not line and data:  # an event without data is not dispatched
                        self.received.put((event, data))
                        event, data = "message", ""
        finally:
            self._opened.set()
            self.received.put(None)

    def next_event(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]] | None:
        """The next event that is not a comment (None: the stream ended)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.received.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                return None
            if item[0] != "comment":
                return item[0], json.loads(item[1])
        raise AssertionError(f"no event within {timeout} s")

    def events_for(self, seconds: float) -> list[tuple[str, str]]:
        """Everything that arrives within ``seconds`` (comments included)."""
        seen: list[tuple[str, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.received.get(timeout=left)
            except queue.Empty:
                break
            assert item is not None, "the stream ended"
            seen.append(item)
        return seen

    def ended(self, timeout: float = 10.0) -> bool:
        """Whether the server ends the stream within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.received.get(timeout=left) is None:
                    return True
            except queue.Empty:
                return False
        return False

    def close(self) -> None:
        """Leave (at once, or at the next heartbeat when the stream is quiet)."""
        self._leave.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


@pytest.fixture
def clients(live: Live) -> Iterator[Any]:
    """New browsers (cookie jars) on the live server, all closed at the end."""
    made: list[httpx.Client] = []

    def new() -> httpx.Client:
        made.append(httpx.Client(base_url=live.url, timeout=10))
        return made[-1]

    yield new
    for client in made:
        client.close()


@pytest.fixture
def streams(live: Live) -> Iterator[Any]:
    """Opens event streams (``streams(client)``); any still open are closed at the end, so that
    a failing test does not leave the server waiting for them."""
    opened: list[Events] = []

    def open_stream(client: httpx.Client) -> Events:
        opened.append(Events(client))
        return opened[-1]

    yield open_stream
    for stream in opened:
        stream.close()


def staff_client(clients: Any, staff: Any, clock: FakeClock) -> httpx.Client:
    client: httpx.Client = clients()
    sign_in_staff(client, staff, clock)
    return client


def patient_bearer(client: httpx.Client) -> dict[str, str]:
    client.post("/api/v1/auth/sms/start", json={"phone": PHONE_A})
    verified = client.post("/api/v1/auth/sms/verify", json={"phone": PHONE_A, "code": SMS_CODE})
    return {"Authorization": f"Bearer {verified.json()['access_token']}"}


def wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def changes(items: list[tuple[str, str]]) -> list[str]:
    return [json.loads(data).get("appointment", "") for event, data in items if event == "change"]


def test_a_patient_entering_a_consult_room_updates_the_list_of_their_clinic_only(
    live: Live, clients: Any, streams: Any, world: World, clock: FakeClock, online: str
) -> None:
    reception = staff_client(clients, world.receptionist_a, clock)
    elsewhere = staff_client(clients, world.doctor_b, clock)
    patient = clients()
    day = (clock.now + timedelta(minutes=5)).astimezone(TOKYO).date().isoformat()
    rows = f"/staff/schedule/rows?day={day}"
    assert "待合室で待機中" not in reception.get(rows).text

    ours, theirs = streams(reception), streams(elsewhere)
    assert ours.headers is not None
    assert ours.headers["content-type"].startswith("text/event-stream")
    assert ours.headers["cache-control"] == "no-store"
    assert ours.next_event() == ("ready", {})
    assert theirs.next_event() == ("ready", {})
    assert live.subscribers(world.clinic_a) == 1

    bearer = patient_bearer(patient)
    seat = patient.post(f"/api/v1/consults/{online}/ticket", headers=bearer).json()
    with connect(live.url.replace("http://", "ws://") + seat["websocket"]) as socket:
        socket.send(json.dumps({"v": 1, "type": "join", "token": seat["token"]}))
        assert json.loads(socket.recv(timeout=10))["type"] in ("joined", "presence")
        # The patient waits in the room: the list of clinic A hears of it, and its rows show it.
        assert ours.next_event() == ("change", {"appointment": online})
        fetched = reception.get(rows)
        assert fetched.status_code == 200
        assert fetched.text.lstrip().startswith('<tbody id="reception-rows">')
        assert "<html" not in fetched.text
        assert "待合室で待機中" in fetched.text
        assert f'data-appointment="{online}"' in fetched.text
        # Clinic B's list heard nothing but its heartbeat.
        heard = theirs.events_for(QUIET)
        assert changes(heard) == []
        assert ("comment", "still here") in heard

        # Staff of clinic B change their own appointment: their list hears it, A's does not.
        post_form(
            elsewhere,
            f"/staff/appointments/{world.appointment_b}/status",
            {"status": "checked_in"},
            page="/staff/schedule",
        )
        assert theirs.next_event() == ("change", {"appointment": world.appointment_b})
        assert world.appointment_b not in changes(ours.events_for(QUIET))
    # The patient's connection went away: the list hears that too.
    assert ours.next_event() == ("change", {"appointment": online})

    # The tabs close: the server lets go of both subscriptions, and no task stays behind.
    ours.close()
    theirs.close()
    assert wait_for(lambda: live.subscribers(world.clinic_a) == 0)
    assert wait_for(lambda: live.subscribers(world.clinic_b) == 0)
    assert wait_for(lambda: live.reception_tasks() == [])


def test_staff_changes_and_a_cancellation_reach_the_list(
    live: Live, clients: Any, streams: Any, world: World, clock: FakeClock, online: str
) -> None:
    reception = staff_client(clients, world.receptionist_a, clock)
    ours = streams(reception)
    assert ours.next_event() == ("ready", {})
    day = (clock.now + timedelta(minutes=5)).astimezone(TOKYO).date().isoformat()
    moved = post_form(
        reception,
        f"/staff/appointments/{online}/status",
        {"status": "checked_in"},
        page=f"/staff/schedule?day={day}",
    )
    assert moved.status_code == 303
    assert ours.next_event() == ("change", {"appointment": online})

    # Patient B cancels at clinic B: clinic B's list hears of it.
    elsewhere = staff_client(clients, world.admin_b, clock)
    theirs = streams(elsewhere)
    assert theirs.next_event() == ("ready", {})
    patient = clients()
    sign_in_patient(patient, PHONE_B, SMS_CODE)
    cancelled = post_form(
        patient,
        f"/appointments/{world.appointment_b}/cancel",
        {},
        page="/appointments",
        follow_redirects=False,
    )
    assert cancelled.status_code == 303
    assert theirs.next_event() == ("change", {"appointment": world.appointment_b})
    assert changes(ours.events_for(QUIET)) == []
    ours.close()
    theirs.close()


def test_a_cancellation_through_the_api_reaches_the_list(
    live: Live, clients: Any, streams: Any, world: World, clock: FakeClock
) -> None:
    theirs = streams(staff_client(clients, world.admin_b, clock))
    assert theirs.next_event() == ("ready", {})
    app_client = clients()
    app_client.post("/api/v1/auth/sms/start", json={"phone": PHONE_B})
    signed = app_client.post("/api/v1/auth/sms/verify", json={"phone": PHONE_B, "code": SMS_CODE})
    bearer = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    cancelled = app_client.post(
        f"/api/v1/appointments/{world.appointment_b}/cancel", headers=bearer
    )
    assert cancelled.status_code == 200, cancelled.text
    assert theirs.next_event() == ("change", {"appointment": world.appointment_b})
    theirs.close()


def test_the_stream_ends_with_the_session_and_after_its_lifetime(
    live: Live,
    clients: Any,
    streams: Any,
    world: World,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reception = staff_client(clients, world.receptionist_a, clock)
    ours = streams(reception)
    assert ours.next_event() == ("ready", {})
    signed_out = post_form(reception, "/staff/signout", {}, page="/staff", follow_redirects=False)
    assert signed_out.status_code == 303
    assert ours.ended(timeout=5)  # at the next heartbeat's check
    assert wait_for(lambda: live.subscribers(world.clinic_a) == 0)
    ours.close()
    again = reception.get("/staff/schedule/events", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/staff/signin"

    monkeypatch.setattr(sse, "STREAM_SECONDS", 1.0)
    doctor = staff_client(clients, world.doctor_a, clock)
    short = streams(doctor)
    assert short.next_event() == ("ready", {})
    assert short.next_event(timeout=5) == ("bye", {})
    assert short.ended(timeout=5)
    short.close()
    assert wait_for(lambda: live.subscribers(world.clinic_a) == 0)
    assert wait_for(lambda: live.reception_tasks() == [])


def test_only_staff_of_a_clinic_open_the_stream_or_its_rows(
    live: Live, clients: Any, streams: Any, world: World, clock: FakeClock
) -> None:
    nobody = clients()
    patient = clients()
    sign_in_patient(patient, PHONE_A, SMS_CODE)
    operator = staff_client(clients, world.operator, clock)
    for path in ("/staff/schedule/events", "/staff/schedule/rows"):
        for client in (nobody, patient):
            refused = client.get(path, follow_redirects=False)
            assert refused.status_code == 303, path
            assert refused.headers["location"] == "/staff/signin"
        # A platform operator belongs to no clinic: no list, no stream.
        assert operator.get(path, follow_redirects=False).status_code == 403
    # Nor does a patient's bearer token.
    with_token = nobody.get(
        "/staff/schedule/events", headers=patient_bearer(nobody), follow_redirects=False
    )
    assert with_token.status_code == 303
    assert "text/event-stream" not in with_token.headers.get("content-type", "")
    assert live.subscribers(world.clinic_a) == 0


def test_the_rows_are_a_read_of_the_schedule_like_the_page(
    online: str, browser: TestClient, world: World, clock: FakeClock, settings: Settings
) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    day = (clock.now + timedelta(minutes=5)).astimezone(TOKYO).date().isoformat()
    page = browser.get(f"/staff/schedule?day={day}")
    assert 'id="reception-live"' in page.text
    assert f'data-rows="/staff/schedule/rows?day={day}"' in page.text
    assert "/static/js/reception.js" in page.text
    rows = browser.get(f"/staff/schedule/rows?day={day}")
    assert rows.headers["cache-control"] == "no-store"
    assert "見本 一子" in rows.text  # the patient's name, looked up with the others at once
    assert rows.text.count("<tr data-appointment=") == 1

    async def reads() -> list[dict[str, object]]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                found = await AuditEntry.filter(
                    action="schedule.read", actor_id=world.doctor_a.id
                ).order_by("seq")
                return [row.detail for row in found]

    assert run_sync(reads()) == [
        {"view": "reception", "day": day, "rows": 1},
        {"view": "reception.rows", "day": day, "rows": 1},
    ]


async def test_patients_are_found_in_one_lookup(db: Settings) -> None:
    from tests.support.identity import make_clinic, make_patient

    clinic = await make_clinic("batch")
    first = await make_patient("+819012340001", clinic, given_name="一")
    second = await make_patient("+819012340002", clinic, given_name="二")
    found = await accounts.find_patients(
        [
            str(first.id),
            str(second.id),
            str(first.id),
            "not-an-id",
            "00000000-0000-4000-8000-0000000000ff",
        ]
    )
    assert {k: v.given_name for k, v in found.items()} == {
        str(first.id): "一",
        str(second.id): "二",
    }
    assert await accounts.find_patients([]) == {}


# --- the stream on its own, on a pub/sub without a server ----------------------------------------


async def allowed() -> bool:
    return True


@pytest.fixture
async def broker() -> AsyncIterator[InMemoryPubSub]:
    pubsub = InMemoryPubSub()
    yield pubsub
    await pubsub.close()


async def test_closing_the_stream_mid_wait_unsubscribes_and_cancels_its_task(
    broker: InMemoryPubSub,
) -> None:
    stream = sse.reception_stream(broker, "reception:x", allowed, heartbeat=60, lifetime=600)
    assert (await anext(stream)).endswith("event: ready\ndata: {}\n\n")
    await broker.publish("reception:x", {"appointment": "a1", "name": "never sent"})
    assert await anext(stream) == 'event: change\ndata: {"appointment":"a1"}\n\n'
    pending = asyncio.ensure_future(anext(stream))  # waits for the next message
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t.get_name() == "reception-next"]
    pending.cancel()  # what the server does when the client goes away
    with pytest.raises(asyncio.CancelledError):
        await pending
    await stream.aclose()
    assert broker._channels == {}
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "reception-next"]


async def test_a_refused_caller_gets_no_more_and_a_quiet_stream_heartbeats(
    broker: InMemoryPubSub,
) -> None:
    answers = iter([True, False])

    async def until_refused() -> bool:
        return next(answers)

    stream = sse.reception_stream(
        broker, "reception:y", until_refused, heartbeat=0.05, lifetime=600
    )
    frames = [frame async for frame in stream]
    assert len(frames) == 2
    assert frames[1] == ": still here\n\n"
    assert broker._channels == {}


class SlowToLeave(InMemoryPubSub):
    """A pub/sub whose unsubscribing takes a moment, as Redis's does (a round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[str] = []

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        async with super().subscribe(channel) as messages:
            try:
                yield messages
            finally:
                await asyncio.sleep(0.01)
                self.left.append(channel)


async def test_the_server_cancelling_a_stream_still_lets_it_unsubscribe() -> None:
    """Starlette cancels a streaming response when the client goes away; the unsubscribing that
    follows must not be cut short by that cancellation."""
    pubsub = SlowToLeave()
    sent: list[bytes] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message.get("body", b""))
        if b"event: ready" in message.get("body", b""):
            gone.set()  # the tab closes as soon as the stream is open

    stream = sse.reception_stream(pubsub, "reception:z", allowed, heartbeat=60, lifetime=600)
    scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
    async with asyncio.timeout(5):
        await sse.EventStream(stream)(scope, receive, send)
    assert any(b"event: ready" in body for body in sent)
    assert pubsub.left == ["reception:z"]
    assert pubsub._channels == {}
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "reception-next"]


class BreaksDown(InMemoryPubSub):
    """A pub/sub whose connection drops after subscribing (Redis restarting)."""

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        async def dropped() -> AsyncIterator[Message]:
            await asyncio.sleep(0)
            raise ConnectionError("connection reset")
            yield {}  # an async generator, like the real one

        async with super().subscribe(channel):
            yield dropped()


async def test_a_broken_subscription_ends_the_stream_quietly() -> None:
    pubsub = BreaksDown()
    stream = sse.reception_stream(pubsub, "reception:w", allowed, heartbeat=60, lifetime=600)
    frames = [frame async for frame in stream]  # no exception: the browser reconnects
    assert len(frames) == 1
    assert "event: ready" in frames[0]
    assert pubsub._channels == {}
