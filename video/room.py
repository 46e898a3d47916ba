"""A consult room — the waiting room (待合室) and the call — as a pure state machine.

``step(state, event, now)`` returns the next state and the effects the caller must carry out, in
order: messages to send to one connection, connections to close (with a code), the appointment's
status to set, chat lines to store, audit entries to write. Nothing here does I/O or reads a
clock, so a room's state can live in the database or Redis (:func:`to_json` / :func:`from_json`)
and any worker can take the next step after a restart.

The caller (the websocket endpoint) must:

- authenticate the ``join`` frame's token and the join window (:func:`join_window`) itself, then
  feed :class:`Enter` with the participant id and role it found; any failure there closes with
  4001/4003/4004 before the room is touched;
- feed every later frame, once parsed, as :class:`Received`; a lost transport as
  :class:`Disconnect`; and :class:`Tick` at :func:`next_deadline` (or every few seconds);
- save the new state together with the durable effects (:class:`StoreChat`,
  :class:`SetAppointmentStatus`, :class:`Audit`) — in one transaction when the state lives in the
  database — and only then send and close: a chat line acknowledged by its echo is never lost,
  and a resend after a crash is recognised by its ``id``;
- step one room at a time (a row lock, or a compare-and-set on the stored state), so two workers
  never step the same room at once.

Participants and their status::

    patient:  absent → waiting ─admit→ admitted ─answer→ in_call ─┐
    staff:    absent → present ─admit→ admitted ─answer→ in_call ─┴─ leave / timeout / end → left
    left ──join──→ waiting (patient, must be admitted again) / present (staff)

A lost connection keeps the status: the others see presence ``reconnecting`` until the
participant rejoins (same status, ``resumed``) or ``reconnect_grace`` passes (→ ``left``). A join
while a connection is live replaces it (close 4009): a page reload or a second tab.

The room: ``open`` → ``in_consult`` when a patient is admitted → ``ended`` when a doctor ends the
consult. The appointment follows, never backwards: patient waiting → ``checked_in``, admitted →
``in_consult``, ended → ``done``.

What flows where (the rules the tests check on random event sequences):

- offer / answer / candidate / restart / chat go only between participants who are admitted or
  in the call, while the room is ``in_consult``. A waiting patient can neither send nor receive
  them: staff reach a waiting patient with ``waiting`` (a status and a short note), and a waiting
  patient has no chat — they get the note, and chat opens once admitted.
- only staff (doctor or staff) admit; only a doctor ends the consult.
- a patient sees only participants who are admitted or in the call, and only once admitted;
  staff see everyone, with the pre-call check result and since when a patient waits.
- after ``ended`` nothing is sent: joins and frames are only closed with 4010.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

from pydantic import TypeAdapter

from video.protocol import (
    Admit,
    Admitted,
    Answer,
    Candidate,
    Chat,
    ClientMessage,
    CloseCode,
    End,
    ErrorCode,
    Join,
    Joined,
    Leave,
    Offer,
    Peer,
    Ping,
    Pong,
    PrecallResult,
    PresenceUpdate,
    ProtocolError,
    Recording,
    RecordingMode,
    RecordingStatus,
    Restart,
    Role,
    ServerMessage,
    Waiting,
)
from video.protocol import ParticipantStatus as Status

RoomStatus = Literal["open", "in_consult", "ended"]
AppointmentStatus = Literal["booked", "checked_in", "in_consult", "done"]
AuditAction = Literal[
    "join", "rejoin", "leave", "timeout", "admit", "end", "recording_on", "recording_off"
]
ConsentDecision = Literal["request", "consent", "decline", "withdraw"]

STAFF_ROLES: frozenset[Role] = frozenset({"doctor", "staff"})
IN_CONSULT: frozenset[Status] = frozenset({"admitted", "in_call"})
_APPOINTMENT_ORDER: tuple[AppointmentStatus, ...] = ("booked", "checked_in", "in_consult", "done")


@dataclass(frozen=True)
class RoomConfig:
    """Timings: a connection silent for ``stale_after`` is closed (clients ping every 15 s);
    a participant whose connection was lost is ``left`` after ``reconnect_grace``."""

    stale_after: timedelta = timedelta(seconds=45)
    reconnect_grace: timedelta = timedelta(seconds=120)
    remembered_chat_ids: int = 32


DEFAULT_CONFIG = RoomConfig()


@dataclass(frozen=True)
class Participant:
    """One person in the room; ``connection`` is their one live connection, if any."""

    id: str
    role: Role
    status: Status = "absent"
    connection: str | None = None
    last_seen: datetime | None = None
    waiting_since: datetime | None = None
    disconnected_at: datetime | None = None
    precall: PrecallResult | None = None
    recent_chat_ids: tuple[str, ...] = ()

    @property
    def presence(self) -> Literal["connected", "reconnecting", "left"]:
        if self.connection is not None:
            return "connected"
        return "left" if self.status in ("left", "absent") else "reconnecting"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class RecordingState:
    """Consented recording. ``requested`` until everyone in the call has consented (the one who
    asked included), then ``on``; anyone in the call can stop it, and it stops when someone leaves
    the call or the consult ends. Someone let into the call while it is ``on`` pauses it
    (``requested``) until they consent too. ``segment`` counts the times it went ``on``."""

    mode: RecordingMode = "off"
    consented: tuple[str, ...] = ()
    segment: int = 0


@dataclass(frozen=True)
class RoomState:
    """Everything a worker needs to take the next step; serialisable with :func:`to_json`.

    Create it with the appointment's current status (a patient checked in at reception is
    already ``checked_in``) so that :class:`SetAppointmentStatus` only ever moves it forward.
    """

    room_id: str
    status: RoomStatus = "open"
    appointment_status: AppointmentStatus = "booked"
    participants: tuple[Participant, ...] = ()
    waiting_note: Waiting | None = None  # the latest note, repeated to patients who join later
    recording: RecordingState = RecordingState()
    format_version: Literal[1] = 1

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.id == participant_id), None)

    def by_connection(self, connection: str) -> Participant | None:
        return next((p for p in self.participants if p.connection == connection), None)


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enter:
    """An authenticated ``join`` (or rejoin) of ``participant`` on a new ``connection``.

    Named apart from :class:`video.protocol.Join`, the frame it is made from. ``role`` is
    ``doctor`` for a doctor, ``staff`` for every other clinic role allowed in (nurse, reception),
    ``patient`` for the patient or their guardian's account. ``connection`` must be new (a uuid).
    """

    connection: str
    participant: str
    role: Role
    precall: PrecallResult | None = None


@dataclass(frozen=True)
class Received:
    """A parsed frame (anything but ``join``) on a connection."""

    connection: str
    message: ClientMessage


@dataclass(frozen=True)
class Disconnect:
    """The transport of ``connection`` is gone (closed, reset, or the worker saw it die)."""

    connection: str


@dataclass(frozen=True)
class Tick:
    """Time passed: close stale connections, let reconnect grace periods run out."""


Event: TypeAlias = Enter | Received | Disconnect | Tick


# --- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``message`` on ``connection`` (which belongs to ``participant``)."""

    participant: str
    connection: str
    message: ServerMessage


@dataclass(frozen=True)
class Close:
    """Close ``connection`` with ``code`` (after sending what precedes this effect)."""

    connection: str
    code: CloseCode


@dataclass(frozen=True)
class SetAppointmentStatus:
    status: Literal["checked_in", "in_consult", "done"]


@dataclass(frozen=True)
class StoreChat:
    """Store a chat line with the visit (encrypted, audited by the caller)."""

    sender: str
    message_id: str | None
    text: str
    at: datetime


@dataclass(frozen=True)
class RecordConsent:
    """Keep a participant's recording decision (the consent record): ``request`` (asking is
    consenting), ``consent``, ``decline``, ``withdraw`` (a stop)."""

    participant: str
    decision: ConsentDecision
    at: datetime
    segment: int  # the recording segment the decision is about


@dataclass(frozen=True)
class RecordingSwitched:
    """Recording went on (browsers now connect their recorders) or off (recorders must stop)."""

    on: bool
    segment: int


@dataclass(frozen=True)
class Audit:
    action: AuditAction
    participant: str
    at: datetime
    subject: str | None = None  # whom an admit was for


Effect: TypeAlias = (
    Send | Close | SetAppointmentStatus | StoreChat | RecordConsent | RecordingSwitched | Audit
)


# --- who may send what -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A message is accepted from ``roles``, from a sender in ``statuses``, in ``rooms``;
    the first check that fails gives the error code (forbidden, not_admitted, not_live)."""

    roles: frozenset[Role]
    statuses: frozenset[Status]
    rooms: frozenset[RoomStatus]


_ANYONE: frozenset[Role] = frozenset({"patient", "doctor", "staff"})
_JOINED: frozenset[Status] = frozenset({"waiting", "present", "admitted", "in_call"})
_LIVE: frozenset[RoomStatus] = frozenset({"in_consult"})
_NOT_ENDED: frozenset[RoomStatus] = frozenset({"open", "in_consult"})
_MEDIA = Rule(_ANYONE, IN_CONSULT, _LIVE)

RULES: dict[str, Rule] = {
    "offer": _MEDIA,
    "answer": _MEDIA,
    "candidate": _MEDIA,
    "restart": _MEDIA,
    "chat": _MEDIA,
    "recording": _MEDIA,
    "admit": Rule(STAFF_ROLES, _JOINED, _NOT_ENDED),
    "waiting": Rule(STAFF_ROLES, _JOINED, _NOT_ENDED),
    "end": Rule(frozenset({"doctor"}), _JOINED, _LIVE),
    "leave": Rule(_ANYONE, _JOINED, _NOT_ENDED),
    "ping": Rule(_ANYONE, _JOINED, _NOT_ENDED),
    "pong": Rule(_ANYONE, _JOINED, _NOT_ENDED),
}

# participant status transitions: (status, trigger) → next status; anything else is a bug
TRANSITIONS: dict[tuple[Status, str], Status] = {
    ("absent", "enter_patient"): "waiting",
    ("left", "enter_patient"): "waiting",
    ("absent", "enter_staff"): "present",
    ("left", "enter_staff"): "present",
    ("waiting", "admit"): "admitted",
    ("present", "admit"): "admitted",
    ("admitted", "answer"): "in_call",
    ("waiting", "leave"): "left",
    ("present", "leave"): "left",
    ("admitted", "leave"): "left",
    ("in_call", "leave"): "left",
}


def _move(participant: Participant, trigger: str) -> Participant:
    return replace(participant, status=TRANSITIONS[(participant.status, trigger)])


# --- the step ------------------------------------------------------------------------------------


class _Step:
    """The mutable scratchpad of one step; :func:`step` freezes it into the result."""

    def __init__(self, state: RoomState, now: datetime, config: RoomConfig) -> None:
        self.state = state
        self.people: dict[str, Participant] = {p.id: p for p in state.participants}
        self.status: RoomStatus = state.status
        self.appointment: AppointmentStatus = state.appointment_status
        self.note = state.waiting_note
        self.recording = state.recording
        self.now = now
        self.config = config
        self.effects: list[Effect] = []

    def result(self) -> tuple[RoomState, tuple[Effect, ...]]:
        new = replace(
            self.state,
            status=self.status,
            appointment_status=self.appointment,
            participants=tuple(self.people.values()),
            waiting_note=self.note,
            recording=self.recording,
        )
        return new, tuple(self.effects)

    # helpers

    def send(self, to: Participant, message: ServerMessage) -> None:
        if to.connection is not None:
            self.effects.append(Send(to.id, to.connection, message))

    def error(self, to: Participant, code: ErrorCode, ref: str | None) -> None:
        self.send(to, ProtocolError(code, ref=ref).to_message())

    def audit(self, action: AuditAction, who: str, subject: str | None = None) -> None:
        self.effects.append(Audit(action, who, self.now, subject))

    def advance_appointment(self, status: Literal["checked_in", "in_consult", "done"]) -> None:
        if _APPOINTMENT_ORDER.index(status) > _APPOINTMENT_ORDER.index(self.appointment):
            self.appointment = status
            self.effects.append(SetAppointmentStatus(status))

    def announce(
        self, before: Participant, after: Participant, skip: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """Tell everyone who may see ``after`` (or could see ``before``) about it."""
        for viewer in self.people.values():
            if viewer.id == after.id or viewer.id in skip:
                continue
            if _sees(viewer, before) or _sees(viewer, after):
                self.send(viewer, PresenceUpdate(peer=_peer(after, viewer)))

    def lose_connection(self, who: Participant) -> None:
        after = replace(who, connection=None, disconnected_at=self.now)
        self.people[who.id] = after
        self.announce(who, after)

    def depart(self, who: Participant, action: AuditAction) -> None:
        after = replace(_move(who, "leave"), connection=None, disconnected_at=None)
        self.people[who.id] = after
        self.audit(action, who.id)
        self.announce(who, after)
        if who.status in IN_CONSULT and self.recording.mode != "off":
            _recording_off(self, who.id)  # consent was given for this call, with this person

    def in_call(self) -> list[Participant]:
        return [p for p in self.people.values() if p.status in IN_CONSULT]

    def tell_recording(self, by: str | None, ack: tuple[str, str | None] | None = None) -> None:
        """Send the recording status to everyone in the call (``ack``: a sender and its id)."""
        r = self.recording
        for who in self.in_call():
            ref = ack[1] if ack is not None and ack[0] == who.id else None
            status = RecordingStatus(
                id=ref, status=r.mode, by=by, consented=r.consented, segment=r.segment
            )
            self.send(who, status)


def _sees(viewer: Participant, subject: Participant) -> bool:
    if viewer.is_staff:
        return subject.status != "absent"
    return viewer.status in IN_CONSULT and subject.status in IN_CONSULT


def _peer(subject: Participant, viewer: Participant) -> Peer:
    staff_view = viewer.is_staff
    return Peer(
        participant=subject.id,
        role=subject.role,
        status=subject.status,
        presence=subject.presence,
        waiting_since=subject.waiting_since if staff_view and subject.status == "waiting" else None,
        precall=subject.precall if staff_view else None,
    )


def _visible_peers(s: _Step, viewer: Participant) -> tuple[Peer, ...]:
    return tuple(
        _peer(p, viewer) for p in s.people.values() if p.id != viewer.id and _sees(viewer, p)
    )


def _on_enter(s: _Step, event: Enter) -> None:
    if s.status == "ended":
        s.effects.append(Close(event.connection, CloseCode.CONSULT_ENDED))
        return
    holder = next((p for p in s.people.values() if p.connection == event.connection), None)
    if holder is not None:  # the caller reused a connection id: refuse rather than merge people
        s.effects.append(Close(event.connection, CloseCode.NOT_IN_ROOM))
        return
    before = s.people.get(event.participant) or Participant(event.participant, event.role)
    if before.connection is not None:
        s.effects.append(Close(before.connection, CloseCode.REPLACED))
    entering = before.status in ("absent", "left")
    joined = before
    if entering:
        joined = _move(before, "enter_staff" if before.is_staff else "enter_patient")
        joined = replace(joined, waiting_since=s.now if joined.status == "waiting" else None)
    joined = replace(
        joined,
        connection=event.connection,
        last_seen=s.now,
        disconnected_at=None,
        precall=event.precall or joined.precall,
    )
    s.people[joined.id] = joined
    s.audit("join" if entering else "rejoin", joined.id)
    s.send(
        joined,
        Joined(
            participant=joined.id,
            role=joined.role,
            status=joined.status,
            polite=joined.role == "patient",
            resumed=not entering,
            peers=_visible_peers(s, joined),
        ),
    )
    if joined.status in IN_CONSULT and s.recording.mode != "off":
        r = s.recording
        s.send(joined, RecordingStatus(status=r.mode, consented=r.consented, segment=r.segment))
    if joined.status == "waiting":
        s.advance_appointment("checked_in")
        if s.note is not None:
            s.send(joined, s.note)
    s.announce(before, joined)


def _on_disconnect(s: _Step, event: Disconnect) -> None:
    who = next((p for p in s.people.values() if p.connection == event.connection), None)
    if who is not None:  # a replaced or already closed connection changes nothing
        s.lose_connection(who)


def _on_tick(s: _Step, tick: Tick) -> None:
    stale = [
        (who, who.connection)
        for who in s.people.values()
        if who.connection is not None
        and who.last_seen is not None
        and s.now - who.last_seen >= s.config.stale_after
    ]
    for who, connection in stale:  # all closed first: nobody is told anything on a dead one
        s.effects.append(Close(connection, CloseCode.HEARTBEAT_TIMEOUT))
        s.people[who.id] = replace(who, connection=None, disconnected_at=s.now)
    for who, _ in stale:
        s.announce(who, s.people[who.id])
    for who in list(s.people.values()):
        if (
            who.connection is None
            and who.disconnected_at is not None
            and s.now - who.disconnected_at >= s.config.reconnect_grace
        ):
            s.depart(who, "timeout")


def _on_received(s: _Step, event: Received) -> None:
    sender = next((p for p in s.people.values() if p.connection == event.connection), None)
    if sender is None or s.status == "ended":
        code = CloseCode.CONSULT_ENDED if s.status == "ended" else CloseCode.NOT_IN_ROOM
        s.effects.append(Close(event.connection, code))
        return
    sender = replace(sender, last_seen=s.now)
    s.people[sender.id] = sender
    message = event.message
    if isinstance(message, Join):  # the endpoint turns only the first join frame into Enter
        s.error(sender, ErrorCode.FORBIDDEN, message.id)
        return
    rule = RULES[message.type]
    refusal = (
        ErrorCode.FORBIDDEN
        if sender.role not in rule.roles
        else ErrorCode.NOT_ADMITTED
        if sender.status not in rule.statuses
        else ErrorCode.NOT_LIVE
        if s.status not in rule.rooms
        else None
    )
    if refusal is not None:
        s.error(sender, refusal, message.id)
        return
    match message:
        case Offer() | Answer() | Candidate() | Restart():
            _relay(s, sender, message)
        case Chat():
            _chat(s, sender, message)
        case Admit():
            _admit(s, sender, message)
        case Waiting():
            _waiting(s, sender, message)
        case End():
            _end(s, sender, message)
        case Leave():
            _leave(s, sender)
        case Recording():
            _recording(s, sender, message)
        case Ping():
            s.send(sender, Pong(id=message.id))
        case Pong():
            pass  # it only proves the connection is alive: last_seen is already updated


def _recipients(s: _Step, sender: Participant, to: str | None) -> list[Participant]:
    return [
        p
        for p in s.people.values()
        if p.id != sender.id
        and p.status in IN_CONSULT
        and p.connection is not None
        and (to is None or p.id == to)
    ]


def _relay(s: _Step, sender: Participant, message: Offer | Answer | Candidate | Restart) -> None:
    recipients = _recipients(s, sender, message.to)
    if not recipients:
        s.error(sender, ErrorCode.PEER_UNAVAILABLE, message.id)
        return
    outgoing = message.model_copy(update={"sender": sender.id})
    for recipient in recipients:
        s.send(recipient, outgoing)
    if isinstance(message, Answer):  # a completed negotiation: both ends are in the call
        for who in (sender, *recipients):
            current = s.people[who.id]
            if current.status == "admitted":
                s.people[who.id] = _move(current, "answer")


def _chat(s: _Step, sender: Participant, message: Chat) -> None:
    recipients = _recipients(s, sender, message.to)
    outgoing = message.model_copy(update={"sender": sender.id, "at": s.now})
    if message.id is not None and message.id in sender.recent_chat_ids:
        s.send(sender, outgoing)  # a resend after a reconnect: acknowledge, store nothing
        return
    if message.id is not None:
        kept = (*sender.recent_chat_ids, message.id)[-s.config.remembered_chat_ids :]
        s.people[sender.id] = replace(sender, recent_chat_ids=kept)
    s.effects.append(StoreChat(sender.id, message.id, message.text, s.now))
    for recipient in recipients:
        s.send(recipient, outgoing)
    s.send(sender, outgoing)


def _admit(s: _Step, sender: Participant, message: Admit) -> None:
    target = s.people.get(message.participant)
    if target is None or target.status not in ("waiting", "present"):
        s.error(sender, ErrorCode.NOT_WAITING, message.id)
        return
    if target.status == "present" and target.id != sender.id:
        s.error(sender, ErrorCode.FORBIDDEN, message.id)  # staff enter the call themselves
        return
    if target.is_staff and s.status != "in_consult":
        s.error(sender, ErrorCode.NOT_LIVE, message.id)  # no call to join before a patient's
        return
    moving = [target]
    if sender.status == "present" and target.id != sender.id:
        moving.append(sender)  # the doctor who admits a patient enters the call with them
    moved: list[tuple[Participant, Participant]] = []
    for before in moving:
        after = _move(before, "admit")
        s.people[after.id] = after
        moved.append((before, after))
        s.audit("admit", sender.id, subject=after.id)
    if target.role == "patient":
        s.status = "in_consult"
        s.advance_appointment("in_consult")
        s.note = None  # the wait is over; a later note is about a later wait
    for _, after in moved:
        ack = message.id if after.id == sender.id == target.id else None
        s.send(after, Admitted(id=ack, participant=after.id, by=sender.id))
    if target.id != sender.id:
        s.send(s.people[sender.id], Admitted(id=message.id, participant=target.id, by=sender.id))
    patients = {after.id for _, after in moved if not after.is_staff}
    for patient_id in patients:  # the patient now sees who is in the call
        patient = s.people[patient_id]
        for peer in _visible_peers(s, patient):
            s.send(patient, PresenceUpdate(peer=peer))
    for before, after in moved:
        s.announce(before, after, skip=patients)
    if s.recording.mode != "off":  # the newcomer is asked; a recording pauses until they agree
        if s.recording.mode == "on" and not _everyone_consented(s):
            s.recording = replace(s.recording, mode="requested")
            s.effects.append(RecordingSwitched(False, s.recording.segment))
            s.audit("recording_off", sender.id)
        s.tell_recording(sender.id)


def _waiting(s: _Step, sender: Participant, message: Waiting) -> None:
    s.note = Waiting(status=message.status, minutes=message.minutes, note=message.note)
    for patient in s.people.values():
        if patient.status == "waiting":
            s.send(patient, s.note)
    s.send(sender, s.note.model_copy(update={"id": message.id}))


def _end(s: _Step, sender: Participant, message: End) -> None:
    s.status = "ended"
    if s.recording.mode == "on":
        s.effects.append(RecordingSwitched(False, s.recording.segment))
        s.audit("recording_off", sender.id)
    s.recording = replace(s.recording, mode="off", consented=())
    s.audit("end", sender.id)
    s.advance_appointment("done")
    for who in list(s.people.values()):
        if who.connection is not None:
            s.send(who, End(id=message.id if who.id == sender.id else None))
            s.effects.append(Close(who.connection, CloseCode.CONSULT_ENDED))
        s.people[who.id] = replace(who, status="left", connection=None, disconnected_at=None)


def _everyone_consented(s: _Step) -> bool:
    """Everyone in the call consented, and the call has a patient and a clinic side."""
    people = s.in_call()
    return (
        all(p.id in s.recording.consented for p in people)
        and any(p.role == "patient" for p in people)
        and any(p.is_staff for p in people)
    )


def _recording(s: _Step, sender: Participant, message: Recording) -> None:
    r = s.recording
    ack = (sender.id, message.id)
    if message.action in ("request", "consent"):
        if r.mode == "off" and message.action == "consent":
            s.error(sender, ErrorCode.NOT_REQUESTED, message.id)
            return
        if sender.id in r.consented:  # already counted (a resend, or asking twice)
            s.send(
                sender,
                RecordingStatus(
                    id=message.id, status=r.mode, consented=r.consented, segment=r.segment
                ),
            )
            return
        asking = r.mode == "off"
        decision: ConsentDecision = "request" if asking else "consent"
        s.recording = replace(
            r, mode="requested" if asking else r.mode, consented=(*r.consented, sender.id)
        )
        s.effects.append(RecordConsent(sender.id, decision, s.now, r.segment + 1))
        if s.recording.mode == "requested" and _everyone_consented(s):
            s.recording = replace(s.recording, mode="on", segment=r.segment + 1)
            s.effects.append(RecordingSwitched(True, s.recording.segment))
            s.audit("recording_on", sender.id)
        s.tell_recording(sender.id, ack)
        return
    if r.mode == "off":
        s.error(sender, ErrorCode.NOT_REQUESTED, message.id)
        return
    refused = message.action == "decline" and sender.id not in r.consented
    decision = "decline" if refused else "withdraw"
    segment = r.segment if r.mode == "on" else r.segment + 1
    s.effects.append(RecordConsent(sender.id, decision, s.now, segment))
    _recording_off(s, sender.id, ack)


def _recording_off(s: _Step, by: str, ack: tuple[str, str | None] | None = None) -> None:
    if s.recording.mode == "on":
        s.effects.append(RecordingSwitched(False, s.recording.segment))
        s.audit("recording_off", by)
    s.recording = replace(s.recording, mode="off", consented=())
    s.tell_recording(by, ack)


def _leave(s: _Step, sender: Participant) -> None:
    if sender.connection is not None:
        s.effects.append(Close(sender.connection, CloseCode.NORMAL))
    s.depart(sender, "leave")


def step(
    state: RoomState, event: Event, now: datetime, config: RoomConfig = DEFAULT_CONFIG
) -> tuple[RoomState, tuple[Effect, ...]]:
    """Apply one event at ``now`` (timezone-aware) → the new state and the effects, in order."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    scratch = _Step(state, now, config)
    match event:
        case Enter():
            _on_enter(scratch, event)
        case Received():
            _on_received(scratch, event)
        case Disconnect():
            _on_disconnect(scratch, event)
        case Tick():
            _on_tick(scratch, event)
    return scratch.result()


def next_deadline(state: RoomState, config: RoomConfig = DEFAULT_CONFIG) -> datetime | None:
    """When a :class:`Tick` would next change something (a stale connection, a grace run out)."""
    deadlines = [
        p.last_seen + config.stale_after
        for p in state.participants
        if p.connection is not None and p.last_seen is not None
    ] + [
        p.disconnected_at + config.reconnect_grace
        for p in state.participants
        if p.connection is None and p.disconnected_at is not None
    ]
    return min(deadlines, default=None)


def window_applies(state: RoomState, participant_id: str) -> bool:
    """Whether the join window limits this participant's (re)join: not for someone already in
    a consult that runs over its window — a reload or a dropped phone must get back in."""
    who = state.participant(participant_id)
    return not (state.status == "in_consult" and who is not None and who.status in IN_CONSULT)


# --- the join window ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowVerdict:
    """Whether a room may be entered now; ``minutes_until_open`` is rounded up."""

    verdict: Literal["open", "too_early", "too_late"]
    opens_at: datetime
    closes_at: datetime
    minutes_until_open: int | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict == "open"

    @property
    def message_ja(self) -> str:
        if self.verdict == "too_early":
            return (
                f"診察室は{self.minutes_until_open}分後に開きます。"
                "時間になったらもう一度お越しください"
            )
        if self.verdict == "too_late":
            return "この診察の入室時間は終わりました。医療機関にご連絡ください"
        return "入室できます"

    @property
    def message_en(self) -> str:
        if self.verdict == "too_early":
            return (
                f"The consult room opens in {self.minutes_until_open} min. Please come back then."
            )
        if self.verdict == "too_late":
            return "The time to join this consult has passed. Please contact the clinic."
        return "You may join now."


def join_window(
    starts_at: datetime,
    now: datetime,
    *,
    before: timedelta = timedelta(minutes=15),
    after: timedelta = timedelta(minutes=60),
) -> WindowVerdict:
    """The room is open from ``starts_at - before`` (included) to ``starts_at + after`` (excluded).

    Both datetimes must be timezone-aware; ``before`` and ``after`` must not be negative.
    """
    if starts_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("starts_at and now must be timezone-aware")
    if before < timedelta(0) or after < timedelta(0):
        raise ValueError("before and after must not be negative")
    opens_at, closes_at = starts_at - before, starts_at + after
    if now < opens_at:
        minutes = math.ceil((opens_at - now) / timedelta(minutes=1))
        return WindowVerdict("too_early", opens_at, closes_at, minutes)
    if now >= closes_at:
        return WindowVerdict("too_late", opens_at, closes_at)
    return WindowVerdict("open", opens_at, closes_at)


# --- persistence -------------------------------------------------------------------------------

_STATE_ADAPTER: TypeAdapter[RoomState] = TypeAdapter(RoomState)


def to_json(state: RoomState) -> str:
    return _STATE_ADAPTER.dump_json(state, by_alias=True, exclude_none=True).decode()


def from_json(text: str | bytes) -> RoomState:
    """A stored state → :class:`RoomState`; ``ValueError`` if it is malformed or inconsistent."""
    state = _STATE_ADAPTER.validate_json(text, by_alias=True)
    problems = invariant_violations(state)
    if problems:
        raise ValueError("inconsistent room state: " + "; ".join(problems))
    return state


def invariant_violations(state: RoomState) -> list[str]:
    """What is wrong with ``state`` (empty when it is consistent); checked on load and in tests."""
    problems: list[str] = []
    ids = [p.id for p in state.participants]
    if len(set(ids)) != len(ids):
        problems.append("a participant appears twice")
    connections = [p.connection for p in state.participants if p.connection is not None]
    if len(set(connections)) != len(connections):
        problems.append("two participants share a connection")
    allowed: dict[bool, frozenset[Status]] = {
        True: frozenset({"absent", "present", "admitted", "in_call", "left"}),
        False: frozenset({"absent", "waiting", "admitted", "in_call", "left"}),
    }
    for p in state.participants:
        if p.status not in allowed[p.is_staff]:
            problems.append(f"{p.id}: a {p.role} cannot be {p.status}")
        if p.status in ("absent", "left") and p.connection is not None:
            problems.append(f"{p.id}: {p.status} but connected")
        if state.status == "ended" and p.status not in ("absent", "left"):
            problems.append(f"{p.id}: still {p.status} after the end")
        if p.status in IN_CONSULT and state.status != "in_consult":
            problems.append(f"{p.id}: {p.status} in a room that is {state.status}")
    recording = state.recording
    if recording.mode != "off" and state.status != "in_consult":
        problems.append(f"recording {recording.mode} in a room that is {state.status}")
    if recording.mode == "off" and recording.consented:
        problems.append("consents kept while recording is off")
    if not set(recording.consented) <= set(ids):
        problems.append("a consent from someone who is not in the room")
    if recording.mode == "on" and not all(
        p.id in recording.consented for p in state.participants if p.status in IN_CONSULT
    ):
        problems.append("recording on without everyone's consent")
    expected = {"open": None, "in_consult": "in_consult", "ended": "done"}[state.status]
    if expected is not None and state.appointment_status != expected:
        problems.append(f"room {state.status} but appointment {state.appointment_status}")
    return problems


__all__ = [
    "DEFAULT_CONFIG",
    "RULES",
    "TRANSITIONS",
    "Audit",
    "Close",
    "Disconnect",
    "Effect",
    "Enter",
    "Event",
    "Participant",
    "Received",
    "RecordConsent",
    "RecordingState",
    "RecordingSwitched",
    "RoomConfig",
    "RoomState",
    "Rule",
    "Send",
    "SetAppointmentStatus",
    "StoreChat",
    "Tick",
    "WindowVerdict",
    "from_json",
    "invariant_violations",
    "join_window",
    "next_deadline",
    "step",
    "to_json",
    "window_applies",
]
