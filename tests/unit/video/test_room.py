"""The consult room state machine: a table of (state, event) → state + effects, the join window,
and Hypothesis: random event sequences keep the invariants, and states survive JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from video.protocol import (
    Admit,
    Admitted,
    Answer,
    Candidate,
    Chat,
    ClientMessage,
    End,
    Error,
    IceCandidate,
    Join,
    Joined,
    Leave,
    Offer,
    Ping,
    Pong,
    PrecallResult,
    PresenceUpdate,
    Recording,
    RecordingStatus,
    Restart,
    Role,
    Waiting,
)
from video.room import (
    DEFAULT_CONFIG,
    IN_CONSULT,
    RULES,
    Audit,
    Close,
    Disconnect,
    Effect,
    Enter,
    Event,
    Participant,
    Received,
    RecordConsent,
    RecordingState,
    RecordingSwitched,
    RoomConfig,
    RoomState,
    Send,
    SetAppointmentStatus,
    StoreChat,
    Tick,
    from_json,
    invariant_violations,
    join_window,
    next_deadline,
    step,
    to_json,
    window_applies,
)

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
SDP = "v=0\r\n"
TOKEN = "t" * 32


def describe(effect: Effect) -> str:
    """One effect as a short line, so that the table reads like the protocol."""
    match effect:
        case Send(participant=who, message=message):
            detail = ""
            if isinstance(message, Error):
                detail = f":{message.code.value}"
            elif isinstance(message, PresenceUpdate):
                peer = message.peer
                detail = f":{peer.participant}:{peer.status}:{peer.presence}"
            elif isinstance(message, Admitted):
                detail = f":{message.participant}"
            elif isinstance(message, Joined):
                detail = f":{message.status}{':resumed' if message.resumed else ''}"
            elif isinstance(message, Offer | Answer | Candidate | Restart | Chat):
                detail = f":from {message.sender}"
            elif isinstance(message, RecordingStatus):
                detail = f":{message.status}:{','.join(message.consented)}"
            return f"{who} <- {message.type}{detail}"
        case Close(connection=connection, code=code):
            return f"close {connection} {int(code)}"
        case SetAppointmentStatus(status=status):
            return f"appointment {status}"
        case StoreChat(sender=sender):
            return f"store chat from {sender}"
        case RecordConsent(participant=who, decision=decision, segment=segment):
            return f"consent {decision} {who} #{segment}"
        case RecordingSwitched(on=on, segment=segment):
            return f"recording {'on' if on else 'off'} #{segment}"
        case Audit(action=action, participant=who, subject=subject):
            return f"audit {action} {who}" + (f" {subject}" if subject else "")
    raise AssertionError(effect)


def people(state: RoomState) -> dict[str, str]:
    return {p.id: f"{p.status}/{p.presence}" for p in state.participants}


def run(state: RoomState, *events: Event, at: datetime = T0) -> RoomState:
    for event in events:
        state, _ = step(state, event, at)
    return state


def said(connection: str, message: ClientMessage) -> Received:
    return Received(connection, message)


# --- the states the table starts from --------------------------------------------------------

EMPTY = RoomState("room-1")
WAITING = run(EMPTY, Enter("c-pat", "pat", "patient", precall="good"))
WITH_DOCTOR = run(WAITING, Enter("c-doc", "doc", "doctor"))
WITH_NURSE = run(WITH_DOCTOR, Enter("c-nur", "nurse", "staff"))
ADMITTED = run(WITH_DOCTOR, said("c-doc", Admit(participant="pat")))
IN_CALL = run(ADMITTED, said("c-pat", Offer(sdp=SDP)), said("c-doc", Answer(sdp=SDP)))
PATIENT_LOST = run(IN_CALL, Disconnect("c-pat"))
DOCTOR_STAYS = run(PATIENT_LOST, said("c-doc", Ping()), at=T0 + timedelta(seconds=100))
PATIENT_LEFT = run(IN_CALL, said("c-pat", Leave()))
NURSE_IN_CONSULT = run(WITH_NURSE, said("c-doc", Admit(participant="pat")))
ENDED = run(IN_CALL, said("c-doc", End()))


def test_the_starting_states_are_what_their_names_say() -> None:
    assert people(WAITING) == {"pat": "waiting/connected"}
    assert people(WITH_DOCTOR) == {"pat": "waiting/connected", "doc": "present/connected"}
    assert people(ADMITTED) == {"pat": "admitted/connected", "doc": "admitted/connected"}
    assert people(IN_CALL) == {"pat": "in_call/connected", "doc": "in_call/connected"}
    assert people(PATIENT_LOST) == {"pat": "in_call/reconnecting", "doc": "in_call/connected"}
    assert (ADMITTED.status, ENDED.status) == ("in_consult", "ended")
    for state in (WAITING, WITH_DOCTOR, WITH_NURSE, ADMITTED, IN_CALL, PATIENT_LOST, ENDED):
        assert invariant_violations(state) == []


@dataclass(frozen=True)
class Case:
    name: str
    state: RoomState
    event: Event
    effects: list[str]
    people: dict[str, str] = field(default_factory=dict)  # only the participants to check
    room: str | None = None
    at: datetime = T0


CASES = [
    # joining: the patient waits, staff are present; a waiting patient learns nothing of staff
    Case("patient joins an empty room", EMPTY, Enter("c-pat", "pat", "patient"),
         ["audit join pat", "pat <- joined:waiting", "appointment checked_in"],
         {"pat": "waiting/connected"}, "open"),
    Case("doctor joins: sees the patient, the patient is told nothing", WAITING,
         Enter("c-doc", "doc", "doctor"), ["audit join doc", "doc <- joined:present"],
         {"doc": "present/connected"}),
    Case("patient joins while the doctor is present: only staff hear of it",
         run(EMPTY, Enter("c-doc", "doc", "doctor")), Enter("c-pat", "pat", "patient"),
         ["audit join pat", "pat <- joined:waiting", "appointment checked_in",
          "doc <- presence:pat:waiting:connected"]),
    Case("a patient joining later gets the latest waiting note",
         run(EMPTY, Enter("c-doc", "doc", "doctor"),
             said("c-doc", Waiting(status="running_late", minutes=10))),
         Enter("c-pat", "pat", "patient"),
         ["audit join pat", "pat <- joined:waiting", "appointment checked_in", "pat <- waiting",
          "doc <- presence:pat:waiting:connected"]),
    # admitting
    Case("doctor admits the waiting patient: the consult starts", WITH_DOCTOR,
         said("c-doc", Admit(participant="pat", id="a1")),
         ["audit admit doc pat", "audit admit doc doc", "appointment in_consult",
          "pat <- admitted:pat", "doc <- admitted:doc", "doc <- admitted:pat",
          "pat <- presence:doc:admitted:connected", "doc <- presence:pat:admitted:connected"],
         {"pat": "admitted/connected", "doc": "admitted/connected"}, "in_consult"),
    Case("a nurse admits: the nurse enters the call, the doctor sees both", WITH_NURSE,
         said("c-nur", Admit(participant="pat")),
         ["audit admit nurse pat", "audit admit nurse nurse", "appointment in_consult",
          "pat <- admitted:pat", "nurse <- admitted:nurse", "nurse <- admitted:pat",
          "pat <- presence:nurse:admitted:connected", "doc <- presence:pat:admitted:connected",
          "nurse <- presence:pat:admitted:connected", "doc <- presence:nurse:admitted:connected"],
         {"pat": "admitted/connected", "nurse": "admitted/connected", "doc": "present/connected"}),
    Case("a patient may not admit (themselves)", WITH_DOCTOR,
         said("c-pat", Admit(participant="pat")), ["pat <- error:forbidden"],
         {"pat": "waiting/connected"}, "open"),
    Case("a patient may not admit anyone, and learns nothing of who exists", WITH_DOCTOR,
         said("c-pat", Admit(participant="nobody")), ["pat <- error:forbidden"]),
    Case("admitting someone who is not waiting", WITH_DOCTOR,
         said("c-doc", Admit(participant="nobody")), ["doc <- error:not_waiting"]),
    Case("admitting an admitted patient again", ADMITTED,
         said("c-doc", Admit(participant="pat")), ["doc <- error:not_waiting"]),
    Case("staff cannot pull other staff into the call", WITH_NURSE,
         said("c-doc", Admit(participant="nurse")), ["doc <- error:forbidden"]),
    Case("staff cannot enter a call that has not started", WITH_DOCTOR,
         said("c-doc", Admit(participant="doc")), ["doc <- error:not_live"],
         {"doc": "present/connected"}),
    Case("a nurse joins a running consult by admitting herself", NURSE_IN_CONSULT,
         said("c-nur", Admit(participant="nurse", id="self")),
         ["audit admit nurse nurse", "nurse <- admitted:nurse",
          "pat <- presence:nurse:admitted:connected", "doc <- presence:nurse:admitted:connected"],
         {"nurse": "admitted/connected"}),
    # relay rules
    Case("a waiting patient cannot offer", WITH_DOCTOR, said("c-pat", Offer(sdp=SDP)),
         ["pat <- error:not_admitted"]),
    Case("a waiting patient has no chat", WITH_DOCTOR, said("c-pat", Chat(text="まだですか")),
         ["pat <- error:not_admitted"]),
    Case("a doctor not in the call cannot offer to the waiting patient", WITH_DOCTOR,
         said("c-doc", Offer(sdp=SDP)), ["doc <- error:not_admitted"]),
    Case("a doctor cannot chat to a waiting patient (notes go by 'waiting')", WITH_DOCTOR,
         said("c-doc", Chat(text="少々お待ちください")), ["doc <- error:not_admitted"]),
    Case("the admitted patient offers: the doctor gets it, stamped", ADMITTED,
         said("c-pat", Offer(sdp=SDP)), ["doc <- offer:from pat"], {"pat": "admitted/connected"}),
    Case("an answer puts both ends in the call", ADMITTED, said("c-doc", Answer(sdp=SDP)),
         ["pat <- answer:from doc"], {"pat": "in_call/connected", "doc": "in_call/connected"}),
    Case("candidates trickle", IN_CALL,
         said("c-pat", Candidate(candidate=IceCandidate(candidate="candidate:1 1 udp 1 h 1"))),
         ["doc <- candidate:from pat"]),
    Case("a restart request is relayed", IN_CALL, said("c-doc", Restart(reason="ice_failed")),
         ["pat <- restart:from doc"]),
    Case("nothing to relay to while the peer reconnects", PATIENT_LOST,
         said("c-doc", Offer(sdp=SDP)), ["doc <- error:peer_unavailable"]),
    Case("nothing to relay to a participant not in the call", NURSE_IN_CONSULT,
         said("c-doc", Offer(sdp=SDP, to="nurse")), ["doc <- error:peer_unavailable"]),
    Case("a staff member present but not in the call gets no media", NURSE_IN_CONSULT,
         said("c-pat", Offer(sdp=SDP)), ["doc <- offer:from pat"]),
    Case("chat in the call: stored, relayed, echoed to the sender", IN_CALL,
         said("c-pat", Chat(text="聞こえます", id="m1")),
         ["store chat from pat", "doc <- chat:from pat", "pat <- chat:from pat"]),
    Case("chat resent with a known id: acknowledged, not stored again",
         run(IN_CALL, said("c-pat", Chat(text="聞こえます", id="m1"))),
         said("c-pat", Chat(text="聞こえます", id="m1")), ["pat <- chat:from pat"]),
    Case("chat while the peer reconnects is still stored and acknowledged", PATIENT_LOST,
         said("c-doc", Chat(text="戻られたら教えてください")),
         ["store chat from doc", "doc <- chat:from doc"]),
    # waiting notes
    Case("staff tell the waiting patient why they wait", WITH_DOCTOR,
         said("c-doc", Waiting(status="with_another_patient", minutes=10, id="w")),
         ["pat <- waiting", "doc <- waiting"]),
    Case("a patient cannot send a waiting note", WITH_DOCTOR,
         said("c-pat", Waiting(status="running_late")), ["pat <- error:forbidden"]),
    # reconnection
    Case("transport lost in the call: the doctor sees 'reconnecting'", IN_CALL,
         Disconnect("c-pat"), ["doc <- presence:pat:in_call:reconnecting"],
         {"pat": "in_call/reconnecting"}),
    Case("the patient comes back: resumed in the call, the doctor sees 'connected'", PATIENT_LOST,
         Enter("c-pat2", "pat", "patient"),
         ["audit rejoin pat", "pat <- joined:in_call:resumed",
          "doc <- presence:pat:in_call:connected"], {"pat": "in_call/connected"}),
    Case("a second connection replaces the first (page reload)", IN_CALL,
         Enter("c-doc2", "doc", "doctor"),
         ["close c-doc 4009", "audit rejoin doc", "doc <- joined:in_call:resumed",
          "pat <- presence:doc:in_call:connected"], {"doc": "in_call/connected"}),
    Case("the replaced connection's late disconnect changes nothing",
         run(IN_CALL, Enter("c-doc2", "doc", "doctor")), Disconnect("c-doc"), [],
         {"doc": "in_call/connected"}),
    Case("a frame on the replaced connection is closed as not in the room",
         run(IN_CALL, Enter("c-doc2", "doc", "doctor")), said("c-doc", Offer(sdp=SDP)),
         ["close c-doc 4003"]),
    Case("a connection id cannot belong to two people", WITH_DOCTOR,
         Enter("c-pat", "doc", "doctor"), ["close c-pat 4003"], {"doc": "present/connected"}),
    Case("a waiting patient who drops stays waiting, staff see it", WITH_DOCTOR,
         Disconnect("c-pat"), ["doc <- presence:pat:waiting:reconnecting"],
         {"pat": "waiting/reconnecting"}),
    Case("a patient who left must wait to be admitted again; the appointment stays",
         PATIENT_LEFT, Enter("c-pat2", "pat", "patient"),
         ["audit join pat", "pat <- joined:waiting", "doc <- presence:pat:waiting:connected"],
         {"pat": "waiting/connected"}, "in_consult"),
    # heartbeats and grace
    Case("a connection quiet for less than 45 s is kept", IN_CALL, Tick(), [],
         at=T0 + timedelta(seconds=44)),
    Case("quiet for 45 s: closed as stale, the other side sees 'reconnecting'",
         run(IN_CALL, said("c-doc", Ping()), at=T0 + timedelta(seconds=30)), Tick(),
         ["close c-pat 4000", "doc <- presence:pat:in_call:reconnecting"],
         {"pat": "in_call/reconnecting", "doc": "in_call/connected"},
         at=T0 + timedelta(seconds=45)),
    Case("both quiet: both closed, nobody told anything on a dead connection", IN_CALL, Tick(),
         ["close c-pat 4000", "close c-doc 4000"],
         {"pat": "in_call/reconnecting", "doc": "in_call/reconnecting"},
         at=T0 + timedelta(seconds=45)),
    Case("the grace period not yet over", DOCTOR_STAYS, Tick(), [],
         {"pat": "in_call/reconnecting"}, at=T0 + timedelta(seconds=119)),
    Case("the grace period over: the patient has left", DOCTOR_STAYS, Tick(),
         ["audit timeout pat", "doc <- presence:pat:left:left"], {"pat": "left/left"},
         at=T0 + timedelta(seconds=120)),
    Case("a ping is answered", IN_CALL, said("c-pat", Ping(id="p7")), ["pat <- pong"]),
    Case("a pong is silent", IN_CALL, said("c-pat", Pong()), []),
    # leaving and ending
    Case("the patient leaves: closed normally, the doctor sees 'left'", IN_CALL,
         said("c-pat", Leave()),
         ["close c-pat 1000", "audit leave pat", "doc <- presence:pat:left:left"],
         {"pat": "left/left"}, "in_consult"),
    Case("a patient cannot end the consult", IN_CALL, said("c-pat", End()),
         ["pat <- error:forbidden"], room="in_consult"),
    Case("a nurse cannot end the consult", NURSE_IN_CONSULT, said("c-nur", End()),
         ["nurse <- error:forbidden"], room="in_consult"),
    Case("there is no consult to end before the patient is admitted", WITH_DOCTOR,
         said("c-doc", End()), ["doc <- error:not_live"], room="open"),
    Case("the doctor ends: everyone is told and closed, the appointment is done", IN_CALL,
         said("c-doc", End(id="e")),
         ["audit end doc", "appointment done", "pat <- end", "close c-pat 4010", "doc <- end",
          "close c-doc 4010"], {"pat": "left/left", "doc": "left/left"}, "ended"),
    Case("after the end a join is only closed", ENDED, Enter("c-pat2", "pat", "patient"),
         ["close c-pat2 4010"], {"pat": "left/left"}, "ended"),
    Case("after the end a frame is only closed", ENDED, said("c-pat", Chat(text="あの")),
         ["close c-pat 4010"]),
    Case("after the end time changes nothing", ENDED, Tick(), [],
         at=T0 + timedelta(hours=1)),
    # misuse
    Case("a frame from a connection that never joined", IN_CALL, said("c-x", Ping()),
         ["close c-x 4003"]),
    Case("a join frame on a joined connection", IN_CALL, said("c-pat", Join(token=TOKEN)),
         ["pat <- error:forbidden"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_room_table(case: Case) -> None:
    new, effects = step(case.state, case.event, case.at)
    assert [describe(e) for e in effects] == case.effects
    shown = people(new)
    assert {pid: shown[pid] for pid in case.people} == case.people
    if case.room is not None:
        assert new.status == case.room
    assert invariant_violations(new) == []


def test_every_room_error_code_appears_in_the_table() -> None:
    codes = {line.rsplit(":", 1)[1] for case in CASES for line in case.effects if "error:" in line}
    codes |= {
        line.rsplit(":", 1)[1]
        for case in RECORDING_CASES
        for line in case.effects
        if "error:" in line
    }
    assert codes == {
        "forbidden",
        "not_admitted",
        "not_waiting",
        "peer_unavailable",
        "not_live",
        "not_requested",
    }


def test_staff_see_since_when_a_patient_waits_and_the_precall_result() -> None:
    later = T0 + timedelta(minutes=3)
    _, effects = step(WAITING, Enter("c-doc", "doc", "doctor"), later)
    joined = next(e.message for e in effects if isinstance(e, Send))
    assert isinstance(joined, Joined)
    (peer,) = joined.peers
    assert (peer.participant, peer.waiting_since, peer.precall) == ("pat", T0, "good")
    assert joined.polite is False


def test_the_patient_is_the_polite_peer_and_sees_no_precall_results() -> None:
    _, effects = step(PATIENT_LOST, Enter("c-pat2", "pat", "patient"), T0)
    joined = next(e.message for e in effects if isinstance(e, Send))
    assert isinstance(joined, Joined)
    assert joined.polite is True
    assert [(p.participant, p.precall, p.waiting_since) for p in joined.peers] == [
        ("doc", None, None)
    ]


def test_relayed_chat_is_stamped_with_sender_and_time() -> None:
    at = T0 + timedelta(minutes=5)
    _, effects = step(IN_CALL, said("c-pat", Chat(text="はい", id="m1")), at)
    store = next(e for e in effects if isinstance(e, StoreChat))
    assert (store.sender, store.message_id, store.text, store.at) == ("pat", "m1", "はい", at)
    relayed = [e.message for e in effects if isinstance(e, Send)]
    assert all(isinstance(m, Chat) and (m.sender, m.at, m.id) == ("pat", at, "m1") for m in relayed)


def test_acknowledgements_carry_the_senders_message_id() -> None:
    _, effects = step(WITH_DOCTOR, said("c-doc", Admit(participant="pat", id="a1")), T0)
    ids = {(e.participant, e.message.type, getattr(e.message, "participant", None), e.message.id)
           for e in effects if isinstance(e, Send)}  # fmt: skip
    assert ("doc", "admitted", "pat", "a1") in ids
    assert ("pat", "admitted", "pat", None) in ids  # the doctor's id is not the patient's business
    _, effects = step(IN_CALL, said("c-pat", Ping(id="p7")), T0)
    assert [e.message for e in effects if isinstance(e, Send)] == [Pong(id="p7")]


def test_the_waiting_note_is_cleared_when_the_patient_is_admitted() -> None:
    noted = run(WITH_DOCTOR, said("c-doc", Waiting(status="running_late", minutes=5)))
    assert noted.waiting_note == Waiting(status="running_late", minutes=5)
    assert run(noted, said("c-doc", Admit(participant="pat"))).waiting_note is None


def test_a_frame_counts_as_a_heartbeat() -> None:
    later = T0 + timedelta(seconds=40)
    state = run(IN_CALL, said("c-pat", Ping()), at=later)
    _, effects = step(state, Tick(), T0 + timedelta(seconds=50))
    assert [describe(e) for e in effects] == [
        "close c-doc 4000",
        "pat <- presence:doc:in_call:reconnecting",
    ]


def test_next_deadline_is_when_a_tick_matters() -> None:
    assert next_deadline(EMPTY) is None
    assert next_deadline(IN_CALL) == T0 + DEFAULT_CONFIG.stale_after
    lost = run(IN_CALL, said("c-doc", Ping()), at=T0 + timedelta(seconds=30))
    lost = run(lost, Disconnect("c-pat"), at=T0 + timedelta(seconds=31))
    assert next_deadline(lost) == T0 + timedelta(seconds=75)  # the doctor's heartbeat first
    config = RoomConfig(stale_after=timedelta(minutes=5), reconnect_grace=timedelta(seconds=10))
    assert next_deadline(lost, config) == T0 + timedelta(seconds=41)
    assert next_deadline(ENDED) is None


def test_the_timings_are_configurable() -> None:
    config = RoomConfig(stale_after=timedelta(seconds=10), reconnect_grace=timedelta(seconds=5))
    state, effects = step(IN_CALL, Tick(), T0 + timedelta(seconds=10), config)
    assert len([e for e in effects if isinstance(e, Close)]) == 2
    state, effects = step(state, Tick(), T0 + timedelta(seconds=15), config)
    assert people(state) == {"pat": "left/left", "doc": "left/left"}


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        step(EMPTY, Tick(), datetime(2026, 12, 1))  # noqa: DTZ001 - the point of the test


def test_the_rule_table_names_every_message_a_client_may_send_after_joining() -> None:
    assert set(RULES) == {
        "offer", "answer", "candidate", "restart", "chat", "admit", "waiting", "end", "leave",
        "ping", "pong", "recording",
    }  # fmt: skip
    assert RULES["end"].roles == {"doctor"}
    assert RULES["admit"].roles == {"doctor", "staff"}


def test_the_join_window_does_not_shut_out_a_running_consult() -> None:
    assert window_applies(WAITING, "pat")
    assert not window_applies(IN_CALL, "pat")
    assert not window_applies(PATIENT_LOST, "pat")
    assert window_applies(PATIENT_LEFT, "pat")  # gone for good: the window applies again
    assert window_applies(IN_CALL, "someone-else")
    assert window_applies(ENDED, "doc")


# --- the join window ----------------------------------------------------------------------------

START = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
WINDOW_CASES = [
    (START - timedelta(minutes=15, seconds=1), "too_early", 1),
    (START - timedelta(minutes=16), "too_early", 1),
    (START - timedelta(minutes=16, seconds=1), "too_early", 2),
    (START - timedelta(hours=2), "too_early", 105),
    (START - timedelta(minutes=15), "open", None),
    (START, "open", None),
    (START + timedelta(minutes=59, seconds=59), "open", None),
    (START + timedelta(minutes=60), "too_late", None),
    (START + timedelta(days=1), "too_late", None),
]


@pytest.mark.parametrize(("now", "verdict", "minutes"), WINDOW_CASES)
def test_join_window_edges(now: datetime, verdict: str, minutes: int | None) -> None:
    result = join_window(START, now)
    assert (result.verdict, result.minutes_until_open) == (verdict, minutes)
    assert result.allowed is (verdict == "open")
    assert (result.opens_at, result.closes_at) == (
        START - timedelta(minutes=15),
        START + timedelta(minutes=60),
    )


def test_join_window_compares_instants_across_zones() -> None:
    in_utc = START.astimezone(UTC) - timedelta(minutes=15)
    assert join_window(START, in_utc).allowed


def test_join_window_is_configurable() -> None:
    result = join_window(START, START - timedelta(minutes=20), before=timedelta(minutes=30))
    assert result.allowed
    result = join_window(START, START + timedelta(minutes=20), after=timedelta(minutes=20))
    assert result.verdict == "too_late"


def test_join_window_says_why_in_both_languages() -> None:
    early = join_window(START, START - timedelta(minutes=25))
    assert early.message_ja == "診察室は10分後に開きます。時間になったらもう一度お越しください"
    assert early.message_en == "The consult room opens in 10 min. Please come back then."
    late = join_window(START, START + timedelta(hours=2))
    assert "医療機関" in late.message_ja
    assert "contact the clinic" in late.message_en


def test_join_window_refuses_naive_or_negative_values() -> None:
    naive = datetime(2026, 12, 1, 10)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        join_window(naive, START)
    with pytest.raises(ValueError, match="negative"):
        join_window(START, START, before=timedelta(minutes=-1))


# --- Hypothesis: random event sequences ------------------------------------------------------

ROLES: dict[str, Role] = {"pat": "patient", "doc": "doctor", "nurse": "staff"}
PRECALLS: list[PrecallResult | None] = [None, "good", "poor"]
CONNECTIONS = [f"c{i}" for i in range(6)]
RELAYED = (Offer, Answer, Candidate, Restart, Chat)

pauses = st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5), st.integers(0, 200))
admit_patient = st.just(Admit(participant="pat"))
client_messages = st.one_of(
    admit_patient,
    admit_patient,
    st.just(Answer(sdp=SDP)),
    st.just(Answer(sdp=SDP)),
    st.just(End()),
    st.builds(Offer, sdp=st.just(SDP), to=st.sampled_from([None, *ROLES])),
    st.builds(Answer, sdp=st.just(SDP), to=st.sampled_from([None, *ROLES])),
    st.builds(Candidate, candidate=st.just(IceCandidate(candidate=""))),
    st.builds(Restart),
    st.builds(Chat, text=st.just("はい"), id=st.sampled_from([None, "m1", "m2"])),
    st.builds(Admit, participant=st.sampled_from([*ROLES, "ghost"])),
    st.builds(Waiting, status=st.just("running_late"), minutes=st.sampled_from([None, 5])),
    st.builds(Leave),
    st.builds(End),
    st.builds(Recording, action=st.sampled_from(["request", "consent", "decline", "stop"])),
    st.builds(Recording, action=st.sampled_from(["request", "consent"])),
    st.builds(Ping),
    st.builds(Pong),
    st.just(Join(token=TOKEN)),
)


@st.composite
def events(draw: st.DrawFn, live: Sequence[str]) -> Event:
    """An event on a room: mostly frames on the connections that are live in it right now."""
    kind = draw(st.sampled_from(["frame"] * 8 + ["enter", "enter", "disconnect", "tick", "agree"]))
    connection = draw(st.sampled_from([*live, *live, *live, *CONNECTIONS]))
    match kind:
        case "frame":
            return Received(connection, draw(client_messages))
        case "agree" if live:  # someone in the room says yes to recording (or asks for it)
            action = draw(st.sampled_from(["consent", "request"]))
            return Received(draw(st.sampled_from(list(live))), Recording(action=action))
        case "enter":
            who = draw(st.sampled_from(list(ROLES)))
            precall = draw(st.sampled_from(PRECALLS))
            return Enter(draw(st.sampled_from(CONNECTIONS)), who, ROLES[who], precall)
        case "disconnect":
            return Disconnect(connection)
    return Tick()


APPOINTMENT_ORDER = ["booked", "checked_in", "in_consult", "done"]


def check_step(old: RoomState, new: RoomState, effects: Sequence[Effect]) -> None:
    assert invariant_violations(new) == []
    # at most one live connection per participant, and a connection belongs to one participant
    live = [p.connection for p in new.participants if p.connection is not None]
    assert len(live) == len(set(live))
    # nothing after the end but closing
    if old.status == "ended":
        assert all(isinstance(e, Close) for e in effects)
        assert new == old
    # the appointment never goes backwards
    assert APPOINTMENT_ORDER.index(new.appointment_status) >= APPOINTMENT_ORDER.index(
        old.appointment_status
    )
    closed: set[str] = set()
    for effect in effects:
        if isinstance(effect, Close):
            closed.add(effect.connection)
            continue
        if not isinstance(effect, Send):
            continue
        # nothing is sent on a connection after it was closed in the same step
        assert effect.connection not in closed
        before = old.participant(effect.participant)
        after = new.participant(effect.participant)
        assert after is not None
        # a message goes to the participant's current connection (or to all, just before the end)
        assert effect.connection == after.connection or (
            new.status == "ended" and before is not None and before.connection == effect.connection
        )
        # nothing relayed to anyone outside the call, least of all a waiting patient
        if isinstance(effect.message, RELAYED) and effect.message.sender != effect.participant:
            assert before is not None
            assert before.status in IN_CONSULT
            assert after.status in IN_CONSULT
            assert new.status == "in_consult"
        # the recording status goes only to people in the call
        if isinstance(effect.message, RecordingStatus):
            assert after.status in IN_CONSULT
        # a patient never hears of anyone before being admitted
        if isinstance(effect.message, PresenceUpdate) and after.role == "patient":
            assert after.status in IN_CONSULT or (
                before is not None and before.status in IN_CONSULT
            )


@settings(max_examples=400)
@given(st.data())
def test_random_event_sequences_keep_the_invariants(data: st.DataObject) -> None:
    starts = [
        EMPTY,
        WAITING,
        WITH_DOCTOR,
        WITH_NURSE,
        ADMITTED,
        IN_CALL,
        NURSE_IN_CONSULT,
        ASKED,
        NURSE_CALL,
        RECORDING,
    ]
    state, now = data.draw(st.sampled_from(starts), label="start"), T0
    for _ in range(data.draw(st.integers(0, 30), label="steps")):
        live = [p.connection for p in state.participants if p.connection is not None]
        event = data.draw(events(live), label="event")
        now += timedelta(seconds=data.draw(pauses, label="seconds later"))
        new, effects = step(state, event, now)
        check_step(state, new, effects)
        assert from_json(to_json(new)) == new
        check_recording(state, new, effects)
        state = new
        REACHED.update({new.status, *(f"{p.role}:{p.status}" for p in new.participants)})


REACHED: set[str] = set()


def check_recording(old: RoomState, new: RoomState, effects: Sequence[Effect]) -> None:
    """Recording goes on only with everyone's consent (the invariants), and every switch
    effect is a real change of mode, one per change."""
    REACHED.add(f"recording:{new.recording.mode}")
    switched = [e for e in effects if isinstance(e, RecordingSwitched)]
    if any(e.on for e in switched):
        REACHED.add("recording:switched on")
        assert new.recording.mode == "on"
        assert old.recording.mode != "on"
        assert new.recording.segment == old.recording.segment + 1
    if any(not e.on for e in switched):
        assert old.recording.mode == "on"
        assert new.recording.mode != "on"
    if old.recording.mode != new.recording.mode and "on" in (
        old.recording.mode,
        new.recording.mode,
    ):
        assert len(switched) == 1
    else:
        assert switched == []


def test_the_random_sequences_reach_every_room_and_participant_status() -> None:
    """Guards the property above against a generator that never gets past the waiting room."""
    if not REACHED:  # run alone, not after the property
        test_random_event_sequences_keep_the_invariants()
    assert {
        "open",
        "in_consult",
        "ended",
        "patient:waiting",
        "patient:admitted",
        "patient:in_call",
        "patient:left",
        "doctor:present",
        "doctor:in_call",
        "staff:admitted",
        "recording:requested",
        "recording:on",
        "recording:switched on",  # by consent in the sequence, not only from the start state
    } <= REACHED


# --- Hypothesis: any state round-trips through JSON --------------------------------------------

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; zones below
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, ZoneInfo("Asia/Tokyo")]),
)
participants = st.builds(
    Participant,
    id=st.text(min_size=1, max_size=8),
    role=st.sampled_from(["patient", "doctor", "staff"]),
    status=st.sampled_from(["absent", "waiting", "present", "admitted", "in_call", "left"]),
    connection=st.none() | st.text(max_size=8),
    last_seen=st.none() | moments,
    waiting_since=st.none() | moments,
    disconnected_at=st.none() | moments,
    precall=st.sampled_from([None, "good", "fair", "poor", "failed", "skipped"]),
    recent_chat_ids=st.lists(st.text(max_size=4), max_size=3).map(tuple),
)
recording_states = st.builds(
    RecordingState,
    mode=st.sampled_from(["off", "requested", "on"]),
    consented=st.lists(st.sampled_from(["pat", "doc", "x"]), max_size=3, unique=True).map(tuple),
    segment=st.integers(0, 5),
)
room_states = st.builds(
    RoomState,
    recording=recording_states,
    room_id=st.text(max_size=12),
    status=st.sampled_from(["open", "in_consult", "ended"]),
    appointment_status=st.sampled_from(APPOINTMENT_ORDER),
    participants=st.lists(participants, max_size=4).map(tuple),
    waiting_note=st.none()
    | st.builds(
        Waiting,
        status=st.sampled_from(["with_another_patient", "running_late", "ready_soon", "message"]),
        minutes=st.none() | st.integers(0, 240),
        note=st.sampled_from([None, "10分ほどお待ちください", "about 10 minutes"]),
    ),
)


@given(room_states)
def test_any_state_survives_json_or_is_refused_as_inconsistent(state: RoomState) -> None:
    text = to_json(state)
    if invariant_violations(state):
        with pytest.raises(ValueError, match="inconsistent room state"):
            from_json(text)
    else:
        assert from_json(text) == state
        assert from_json(text.encode()) == state


def test_a_malformed_stored_state_is_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        from_json('{"room_id": "r", "status": "paused"}')
    doubled = replace(IN_CALL, participants=(*IN_CALL.participants, IN_CALL.participants[0]))
    with pytest.raises(ValueError, match="appears twice"):
        from_json(to_json(doubled))


# --- consented recording -----------------------------------------------------------------------

ASKED = run(IN_CALL, said("c-doc", Recording(action="request")))
RECORDING = run(ASKED, said("c-pat", Recording(action="consent")))
NURSE_CALL = run(
    NURSE_IN_CONSULT,
    said("c-pat", Offer(sdp=SDP)),
    said("c-doc", Answer(sdp=SDP)),
    said("c-nur", Admit(participant="nurse")),
)
NURSE_RECORDING = run(
    NURSE_CALL,
    said("c-doc", Recording(action="request")),
    said("c-pat", Recording(action="consent")),
)

RECORDING_CASES = [
    Case("the doctor asks: it is requested, the asking counts as consent", IN_CALL,
         said("c-doc", Recording(id="r1", action="request")),
         ["consent request doc #1", "pat <- recording:requested:doc",
          "doc <- recording:requested:doc"]),
    Case("the patient agrees: recording goes on, everyone in the call is told", ASKED,
         said("c-pat", Recording(action="consent")),
         ["consent consent pat #1", "recording on #1", "audit recording_on pat",
          "pat <- recording:on:doc,pat", "doc <- recording:on:doc,pat"]),
    Case("the patient may ask too; the doctor's yes switches it on", run(
             IN_CALL, said("c-pat", Recording(action="request"))),
         said("c-doc", Recording(action="request")),
         ["consent consent doc #1", "recording on #1", "audit recording_on doc",
          "pat <- recording:on:pat,doc", "doc <- recording:on:pat,doc"]),
    Case("the patient declines: off, nothing recorded, the refusal kept", ASKED,
         said("c-pat", Recording(action="decline")),
         ["consent decline pat #1", "pat <- recording:off:", "doc <- recording:off:"]),
    Case("the doctor withdraws the request", ASKED, said("c-doc", Recording(action="stop")),
         ["consent withdraw doc #1", "pat <- recording:off:", "doc <- recording:off:"]),
    Case("either side stops a recording", RECORDING, said("c-pat", Recording(action="stop")),
         ["consent withdraw pat #1", "recording off #1", "audit recording_off pat",
          "pat <- recording:off:", "doc <- recording:off:"]),
    Case("consenting twice changes nothing", RECORDING,
         said("c-pat", Recording(id="again", action="consent")),
         ["pat <- recording:on:doc,pat"]),
    Case("there is nothing to agree to before someone asks", IN_CALL,
         said("c-pat", Recording(action="consent")), ["pat <- error:not_requested"]),
    Case("there is nothing to stop when nothing was asked", IN_CALL,
         said("c-doc", Recording(action="stop")), ["doc <- error:not_requested"]),
    Case("a waiting patient cannot touch recording", WITH_DOCTOR,
         said("c-pat", Recording(action="request")), ["pat <- error:not_admitted"]),
    Case("staff not in the call cannot either", WITH_NURSE,
         said("c-nur", Recording(action="request")), ["nurse <- error:not_admitted"]),
    Case("a third person in the call must agree too", run(
             NURSE_CALL, said("c-doc", Recording(action="request"))),
         said("c-pat", Recording(action="consent")),
         ["consent consent pat #1", "pat <- recording:requested:doc,pat",
          "doc <- recording:requested:doc,pat", "nurse <- recording:requested:doc,pat"]),
    Case("someone let in while recording pauses it until they agree", run(
             WITH_NURSE, said("c-doc", Admit(participant="pat")), said("c-pat", Offer(sdp=SDP)),
             said("c-doc", Answer(sdp=SDP)), said("c-doc", Recording(action="request")),
             said("c-pat", Recording(action="consent"))),
         said("c-nur", Admit(participant="nurse")),
         ["audit admit nurse nurse", "nurse <- admitted:nurse",
          "pat <- presence:nurse:admitted:connected", "doc <- presence:nurse:admitted:connected",
          "recording off #1", "audit recording_off nurse",
          "pat <- recording:requested:doc,pat", "doc <- recording:requested:doc,pat",
          "nurse <- recording:requested:doc,pat"]),
    Case("leaving the call stops the recording", RECORDING, said("c-pat", Leave()),
         ["close c-pat 1000", "audit leave pat", "doc <- presence:pat:left:left",
          "recording off #1", "audit recording_off pat", "doc <- recording:off:"],
         {"pat": "left/left"}),
    Case("a dropped connection does not stop it (the patient may come back)", RECORDING,
         Disconnect("c-pat"), ["doc <- presence:pat:in_call:reconnecting"]),
    Case("a rejoin in the call is told the recording is on", run(RECORDING, Disconnect("c-pat")),
         Enter("c-pat2", "pat", "patient"),
         ["audit rejoin pat", "pat <- joined:in_call:resumed", "pat <- recording:on:doc,pat",
          "doc <- presence:pat:in_call:connected"]),
    Case("the end stops it", RECORDING, said("c-doc", End()),
         ["recording off #1", "audit recording_off doc", "audit end doc", "appointment done",
          "pat <- end", "close c-pat 4010", "doc <- end", "close c-doc 4010"], room="ended"),
    Case("asking again after a stop starts segment 2", run(
             RECORDING, said("c-pat", Recording(action="stop")),
             said("c-doc", Recording(action="request"))),
         said("c-pat", Recording(action="consent")),
         ["consent consent pat #2", "recording on #2", "audit recording_on pat",
          "pat <- recording:on:doc,pat", "doc <- recording:on:doc,pat"]),
]  # fmt: skip


@pytest.mark.parametrize("case", RECORDING_CASES, ids=lambda c: c.name)
def test_the_recording_table(case: Case) -> None:
    test_the_room_table(case)


def test_recording_acknowledges_with_the_senders_id_only_to_the_sender() -> None:
    _, effects = step(IN_CALL, said("c-doc", Recording(id="r9", action="request")), T0)
    ids = {e.participant: e.message.id for e in effects if isinstance(e, Send)}
    assert ids == {"doc": "r9", "pat": None}


def test_a_recording_survives_the_database_and_old_states_load_without_it() -> None:
    assert from_json(to_json(RECORDING)).recording == RecordingState("on", ("doc", "pat"), 1)
    stored = to_json(IN_CALL).replace(',"recording":{"mode":"off","consented":[],"segment":0}', "")
    assert "recording" not in stored
    assert from_json(stored).recording == RecordingState()


def test_recording_on_without_everyones_consent_is_refused_on_load() -> None:
    forged = replace(NURSE_CALL, recording=RecordingState("on", ("doc", "pat"), 1))
    with pytest.raises(ValueError, match="without everyone"):
        from_json(to_json(forged))
    assert NURSE_RECORDING.recording.mode == "requested"
