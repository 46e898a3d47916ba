"""Online consults: who may enter a room, join tickets, and the signaling websocket.

The pure rules live in :mod:`video` (the protocol, the room's state machine, the join window);
this module carries them out:

- **Tickets.** A signed-in patient (their own appointment, or a family member's) or a staff member
  of the clinic asks for a ticket over HTTP; it is signed with the server's secret key, names the
  appointment, the participant and their role, and lasts five minutes. The websocket's first
  frame (``join``) presents it, so the socket itself needs no cookie and any worker accepts it.
- **Steps.** Every event (a join, a frame, a lost connection, a tick) loads the room's state from
  the database, takes one :func:`video.room.step`, and stores the new state with a
  compare-and-set on its ``version``; a lost race is retried on the fresh state. Then the
  effects are carried out.
- **Delivery.** Messages and closes for a connection are published on the room's pub/sub
  channel (in memory, or Redis between workers); each worker delivers those meant for the
  connections it holds. A patient and a doctor on two workers therefore talk through Redis, and a
  worker restart loses no room (the state is in the database; clients reconnect).
- **Records.** Chat lines are stored with the visit, encrypted at rest (``ConsultChatLine``);
  when the doctor ends the consult a :class:`Visit` is recorded for the karte bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from tortoise.exceptions import IntegrityError

from booking.models import Appointment, AppointmentStatus, Menu, VisitMode
from interview_forms import responses
from interview_forms.models import ResponseStatus
from patient_portal.audit.models import Outcome
from patient_portal.audit.service import AuditEvent, AuditLog
from patient_portal.auth.policy import Principal, Role
from patient_portal.consult_models import ConsultChatLine, IdentityCheck, Visit
from patient_portal.pubsub import PubSub
from video import protocol
from video import room as rooms
from video.models import ConsultRoom, RecordingConsent

logger = logging.getLogger(__name__)

TICKET_SALT: Final = "tsunagu.consult-ticket.v1"
TICKET_MAX_AGE: Final = 300  # seconds
FIRST_FRAME_TIMEOUT: Final = 10.0
TICK_EVERY: Final = 5.0
MAX_BAD_FRAMES: Final = 5
STEP_ATTEMPTS: Final = 20
# Audit actions that change who is in or waiting for a room (the reception list shows them).
_RECEPTION_ACTIONS: Final = frozenset({"join", "rejoin", "leave", "timeout", "admit", "end"})
CLINICIAN_ROLES: Final = frozenset({Role.DOCTOR, Role.NURSE, Role.CLINIC_ADMIN, Role.RECEPTIONIST})


@dataclass(frozen=True, slots=True)
class Seat:
    """A place in one consult room: the participant id the room knows and their role."""

    appointment_id: str
    clinic_id: str
    participant: str
    role: protocol.Role


def seat_for(principal: Principal, appointment: Appointment, menu: Menu) -> Seat | None:
    """The principal's seat in the appointment's room, or None (no hint why)."""
    if menu.mode is VisitMode.IN_PERSON:
        return None
    clinic_id = str(appointment.clinic_id)  # type: ignore[attr-defined]
    appointment_id = str(appointment.id)
    if principal.kind == "patient":
        patient_id = str(appointment.patient_id or "")
        if str(appointment.account_id) != principal.id or patient_id not in principal.patient_ids:
            return None
        return Seat(appointment_id, clinic_id, f"patient:{patient_id}", "patient")
    if principal.kind == "staff" and principal.clinic_id == clinic_id:
        if principal.role not in CLINICIAN_ROLES:
            return None
        role: protocol.Role = "doctor" if principal.role is Role.DOCTOR else "staff"
        return Seat(appointment_id, clinic_id, f"staff:{principal.id}", role)
    return None


LIVE: Final = frozenset(
    {AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULT}
)


def reception_channel(clinic_id: str) -> str:
    """The pub/sub channel that tells a clinic's reception list a consult room changed: a
    patient came, went, was let in, lost their connection, or the consult ended. Its messages
    are ``{"appointment": id}`` and carry nothing about the patient."""
    return f"reception:{clinic_id}"


def recording_channel(appointment_id: str) -> str:
    """The pub/sub channel on which the room tells recorders (on any worker) to stop:
    ``{"off": segment}`` (see patient_portal/recordings.py)."""
    return f"recording:{appointment_id}"


def make_ticket(secret_key: str, seat: Seat) -> str:
    serializer = URLSafeTimedSerializer(secret_key, salt=TICKET_SALT)
    return str(serializer.dumps([seat.appointment_id, seat.clinic_id, seat.participant, seat.role]))


def read_ticket(secret_key: str, token: str) -> Seat | None:
    """The seat a genuine, fresh ticket names; None for anything else."""
    serializer = URLSafeTimedSerializer(secret_key, salt=TICKET_SALT)
    try:
        payload = serializer.loads(token, max_age=TICKET_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    if not (
        isinstance(payload, list) and len(payload) == 4 and all(isinstance(p, str) for p in payload)
    ):
        return None
    appointment_id, clinic_id, participant, role = payload
    if role not in ("patient", "doctor", "staff"):
        return None
    return Seat(appointment_id, clinic_id, participant, role)


# --- the room in the database -------------------------------------------------------------------


async def _room(appointment_id: str, clinic_id: str, now: datetime) -> ConsultRoom:
    room = await ConsultRoom.get_or_none(appointment_id=appointment_id)
    if room is not None:
        return room
    try:
        return await ConsultRoom.create(
            appointment_id=appointment_id,
            clinic_id=clinic_id,
            state={},
            created_at=now,
            updated_at=now,
        )
    except IntegrityError:  # another worker made it first
        return await ConsultRoom.get(appointment_id=appointment_id)


def _state_of(room: ConsultRoom) -> rooms.RoomState:
    if not room.state:
        return rooms.RoomState(room_id=str(room.id))
    return rooms.from_json(json.dumps(room.state))


async def take_step(
    seat_or_room: tuple[str, str],
    event: rooms.Event,
    now: datetime,
    config: rooms.RoomConfig = rooms.DEFAULT_CONFIG,
) -> tuple[ConsultRoom, rooms.RoomState, tuple[rooms.Effect, ...]]:
    """One step of the room of (appointment id, clinic id), stored with a compare-and-set."""
    appointment_id, clinic_id = seat_or_room
    for _ in range(STEP_ATTEMPTS):
        room = await _room(appointment_id, clinic_id, now)
        state, effects = rooms.step(_state_of(room), event, now, config)
        stored = json.loads(rooms.to_json(state))
        changed = await ConsultRoom.filter(id=room.id, version=room.version).update(
            state=stored,
            version=room.version + 1,
            updated_at=now,
            ended_at=now if state.status == "ended" and room.ended_at is None else room.ended_at,
        )
        if changed:
            return room, state, effects
        await asyncio.sleep(0.005)  # another worker stepped this room: try on its state
    raise RuntimeError("the consult room is too busy")


async def room_state(appointment_id: str) -> rooms.RoomState | None:
    room = await ConsultRoom.get_or_none(appointment_id=appointment_id)
    return _state_of(room) if room is not None else None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A patient waiting in a consult room, for the reception list."""

    since: datetime | None
    precall: str | None
    presence: str


async def waiting_patients(appointment_ids: list[str]) -> dict[str, Waiting]:
    """Appointment id → the patient waiting in its room now (rooms nobody waits in are left out)."""
    found: dict[str, Waiting] = {}
    for room in await ConsultRoom.filter(appointment_id__in=appointment_ids, ended_at=None):
        state = _state_of(room)
        for person in state.participants:
            if person.role == "patient" and person.status == "waiting":
                found[str(room.appointment_id)] = Waiting(
                    person.waiting_since, person.precall, person.presence
                )
    return found


# --- delivery between workers -------------------------------------------------------------------


@dataclass
class _Local:
    socket: WebSocket
    channel: str


@dataclass
class Hub:
    """The connections this worker holds, and the room channels it listens to for them."""

    pubsub: PubSub
    audit: AuditLog
    clock: Callable[[], datetime]
    config: rooms.RoomConfig = rooms.DEFAULT_CONFIG
    connections: dict[str, _Local] = field(default_factory=dict)
    listeners: dict[str, tuple[asyncio.Task[None], set[str]]] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    async def attach(self, connection: str, socket: WebSocket, room_id: str) -> None:
        channel = f"consult:{room_id}"
        self.connections[connection] = _Local(socket, channel)
        if channel in self.listeners:
            self.listeners[channel][1].add(connection)
            return
        ready = asyncio.Event()
        task = asyncio.create_task(self._listen(channel, ready), name=f"listen-{channel}")
        self.listeners[channel] = (task, {connection})
        await ready.wait()

    async def detach(self, connection: str) -> None:
        local = self.connections.pop(connection, None)
        if local is None:
            return
        task, members = self.listeners.get(local.channel, (None, set()))
        members.discard(connection)
        if task is not None and not members:
            del self.listeners[local.channel]
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self, channel: str, ready: asyncio.Event) -> None:
        async with self.pubsub.subscribe(channel) as messages:
            ready.set()
            async for message in messages:
                await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        local = self.connections.get(str(message.get("connection", "")))
        if local is None or local.socket.application_state is not WebSocketState.CONNECTED:
            return
        try:
            if "frame" in message:
                await local.socket.send_text(str(message["frame"]))
            elif "close" in message:
                await local.socket.close(code=int(message["close"]))
        except (RuntimeError, WebSocketDisconnect, OSError):
            logger.debug("consult: a connection went away while sending")

    async def carry_out(
        self, room: ConsultRoom, seat: Seat, effects: tuple[rooms.Effect, ...]
    ) -> None:
        channel = f"consult:{room.id}"
        ended_by = next(
            (e.participant for e in effects if isinstance(e, rooms.Audit) and e.action == "end"),
            None,
        )
        for effect in effects:
            match effect:
                case rooms.Send():
                    frame = protocol.serialize(effect.message)
                    await self.pubsub.publish(
                        channel, {"connection": effect.connection, "frame": frame}
                    )
                case rooms.Close():
                    await self.pubsub.publish(
                        channel, {"connection": effect.connection, "close": int(effect.code)}
                    )
                case rooms.SetAppointmentStatus():
                    await _move_appointment(seat.appointment_id, effect.status, self.now())
                    if effect.status == "done" and ended_by is not None:
                        await record_visit(seat, ended_by, self.now())
                case rooms.Audit():
                    await self._audit(seat, effect)
                case rooms.StoreChat():
                    await self._audit_chat(seat, effect)
                case rooms.RecordConsent():
                    await self._keep_consent(seat, effect)
                case rooms.RecordingSwitched(on=False):
                    await self.pubsub.publish(
                        recording_channel(seat.appointment_id), {"off": effect.segment}
                    )
        if _reception_sees(effects):
            await self.tell_reception(seat)

    async def tell_reception(self, seat: Seat) -> None:
        """Let the clinic's reception lists know this room changed (they fetch what they show)."""
        await self.pubsub.publish(
            reception_channel(seat.clinic_id), {"appointment": seat.appointment_id}
        )

    async def _audit(self, seat: Seat, effect: rooms.Audit) -> None:
        detail = {"participant_role": effect.participant.partition(":")[0]}
        detail["subject"] = effect.subject or ""
        await self._record(seat, effect.participant, f"consult.{effect.action}", detail)

    async def _audit_chat(self, seat: Seat, effect: rooms.StoreChat) -> None:
        """Store the line with the visit (encrypted) and audit that it was sent (not its text)."""
        await ConsultChatLine.create(
            appointment_id=seat.appointment_id,
            clinic_id=seat.clinic_id,
            sender=effect.sender,
            message_id=effect.message_id,
            body=effect.text,
            sent_at=effect.at,
        )
        await self._record(seat, effect.sender, "consult.chat", {"length": len(effect.text)})

    async def _keep_consent(self, seat: Seat, effect: rooms.RecordConsent) -> None:
        """Keep a recording decision (the consent record) and audit it."""
        await RecordingConsent.create(
            appointment_id=seat.appointment_id,
            clinic_id=seat.clinic_id,
            participant=effect.participant,
            decision=effect.decision,
            segment=effect.segment,
            decided_at=effect.at,
        )
        detail = {"decision": effect.decision, "segment": effect.segment}
        await self._record(seat, effect.participant, "consult.recording.consent", detail)

    async def _record(
        self, seat: Seat, participant: str, action: str, detail: dict[str, Any]
    ) -> None:
        """An audit entry of the room, by ``participant`` (``patient:<id>`` or ``staff:<id>``)."""
        kind, _, actor = participant.partition(":")
        await self.audit.record(
            AuditEvent(
                action=action,
                outcome=Outcome.SUCCESS,
                actor_kind="patient" if kind == "patient" else "staff",
                actor_id=actor if kind == "staff" else "",
                clinic_id=seat.clinic_id,
                target_kind="appointment",
                target_id=seat.appointment_id,
                detail=detail,
            ),
            now=self.now(),
        )


def _reception_sees(effects: tuple[rooms.Effect, ...]) -> bool:
    """Whether a step changed what the reception list shows (who waits, presence, status)."""
    return any(
        isinstance(e, rooms.SetAppointmentStatus)
        or (isinstance(e, rooms.Audit) and e.action in _RECEPTION_ACTIONS)
        or (isinstance(e, rooms.Send) and isinstance(e.message, protocol.PresenceUpdate))
        for e in effects
    )


_FORWARD: Final = {
    "checked_in": AppointmentStatus.CHECKED_IN,
    "in_consult": AppointmentStatus.IN_CONSULT,
    "done": AppointmentStatus.DONE,
}
_ORDER: Final = [
    AppointmentStatus.BOOKED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.IN_CONSULT,
    AppointmentStatus.DONE,
]


async def _move_appointment(appointment_id: str, status: str, now: datetime) -> None:
    """Move the appointment forward to ``status`` (never backwards, never from cancelled)."""
    target = _FORWARD[status]
    earlier = _ORDER[: _ORDER.index(target)]
    await Appointment.filter(id=appointment_id, status__in=earlier).update(
        status=target, updated_at=now
    )


async def record_visit(seat: Seat, ended_by: str, now: datetime) -> Visit:
    """The visit an ended consult leaves for the karte: who ended it and when, the identity
    check, the questionnaire answered and how much was chatted (the texts stay where they are)."""
    existing = await Visit.get_or_none(appointment_id=seat.appointment_id)
    if existing is not None:
        return existing
    appointment = await Appointment.get(id=seat.appointment_id)
    identity = (
        await IdentityCheck.filter(appointment_id=seat.appointment_id)
        .order_by("-checked_at")
        .first()
    )
    answers = await responses.for_appointment(seat.appointment_id)
    try:
        return await Visit.create(
            appointment_id=seat.appointment_id,
            clinic_id=seat.clinic_id,
            patient_id=appointment.patient_id,
            practitioner_id=appointment.practitioner_id,  # type: ignore[attr-defined]
            ended_by=ended_by,
            ended_at=now,
            identity_check=identity,
            questionnaire_response_id=(
                answers.id if answers and answers.status is ResponseStatus.COMPLETED else None
            ),
            chat_lines=await ConsultChatLine.filter(appointment_id=seat.appointment_id).count(),
        )
    except IntegrityError:  # another worker recorded it a moment ago
        return await Visit.get(appointment_id=seat.appointment_id)


# --- the websocket ------------------------------------------------------------------------------


def hub_of(socket: WebSocket) -> Hub:
    hub: Hub = socket.app.state.consults
    return hub


async def _close(socket: WebSocket, code: protocol.CloseCode) -> None:
    if socket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, OSError):
            await socket.close(code=int(code))


async def _first_frame(socket: WebSocket) -> protocol.Join | protocol.CloseCode:
    try:
        frame = await asyncio.wait_for(socket.receive_text(), FIRST_FRAME_TIMEOUT)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, KeyError):
        return protocol.CloseCode.UNAUTHENTICATED
    try:
        message = protocol.parse_client_message(frame)
    except protocol.ProtocolError:
        return protocol.CloseCode.PROTOCOL_ERROR
    if not isinstance(message, protocol.Join):
        return protocol.CloseCode.UNAUTHENTICATED
    return message


async def consult_socket(socket: WebSocket) -> None:
    """``/consults/{appointment_id}/ws``: see the module docstring and video/PROTOCOL.md."""
    await socket.accept()
    hub = hub_of(socket)
    settings = socket.app.state.settings
    join = await _first_frame(socket)
    if isinstance(join, protocol.CloseCode):
        await _close(socket, join)
        return
    seat = read_ticket(settings.secret_key.reveal(), join.token)
    appointment_id = str(socket.path_params.get("appointment_id", ""))
    if seat is None or seat.appointment_id != appointment_id:
        await _close(socket, protocol.CloseCode.UNAUTHENTICATED)
        return
    appointment = await Appointment.get_or_none(id=seat.appointment_id)
    if appointment is None or appointment.status not in LIVE | {AppointmentStatus.DONE}:
        await _close(socket, protocol.CloseCode.NOT_IN_ROOM)
        return
    state = await room_state(seat.appointment_id)
    now = hub.now()
    if state is None or rooms.window_applies(state, seat.participant):
        window = rooms.join_window(
            appointment.starts_at,
            now,
            before=timedelta(minutes=settings.consult_join_before_minutes),
            after=timedelta(minutes=settings.consult_join_after_minutes),
        )
        if not window.allowed:
            await _close(socket, protocol.CloseCode.OUTSIDE_JOIN_WINDOW)
            return
    connection = uuid.uuid4().hex
    key = (seat.appointment_id, seat.clinic_id)
    room, _, effects = await take_step(
        key, rooms.Enter(connection, seat.participant, seat.role, join.precall), now, hub.config
    )
    await hub.attach(connection, socket, str(room.id))
    ticker = asyncio.create_task(_tick(hub, seat, key))
    try:
        await hub.carry_out(room, seat, effects)
        await _serve(socket, hub, seat, key, connection)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        with contextlib.suppress(Exception):
            room, _, effects = await take_step(
                key, rooms.Disconnect(connection), hub.now(), hub.config
            )
            await hub.carry_out(room, seat, effects)
            await hub.tell_reception(seat)  # a lost connection may have had nobody to tell
        await hub.detach(connection)


async def _serve(
    socket: WebSocket, hub: Hub, seat: Seat, key: tuple[str, str], connection: str
) -> None:
    bad = 0
    while True:
        try:
            frame = await socket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        try:
            message = protocol.parse_client_message(frame)
        except protocol.ProtocolError as error:
            bad += 1
            await socket.send_text(protocol.serialize(error.to_message()))
            if bad >= MAX_BAD_FRAMES:
                await _close(socket, protocol.CloseCode.PROTOCOL_ERROR)
                return
            continue
        room, _, effects = await take_step(
            key, rooms.Received(connection, message), hub.now(), hub.config
        )
        await hub.carry_out(room, seat, effects)


async def _tick(hub: Hub, seat: Seat, key: tuple[str, str]) -> None:
    """Let time pass in the room while this connection is here (stale peers, grace periods)."""
    while True:
        await asyncio.sleep(TICK_EVERY)
        try:
            room, _, effects = await take_step(key, rooms.Tick(), hub.now(), hub.config)
            await hub.carry_out(room, seat, effects)
        except Exception:  # a tick must never take the connection down
            logger.exception("consult: a tick failed")
