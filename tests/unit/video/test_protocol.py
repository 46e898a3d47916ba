"""The signaling protocol: every message type, every error code, the limits, and fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from hypothesis import given
from hypothesis import strategies as st

from video.protocol import (
    ERROR_MESSAGES,
    MAX_CANDIDATE_CHARS,
    MAX_CHAT_CHARS,
    MAX_FRAME_BYTES,
    MAX_SDP_CHARS,
    RECONNECT_CAP,
    Admit,
    Admitted,
    Answer,
    Budget,
    Candidate,
    Chat,
    ClientMessage,
    CloseCode,
    End,
    ErrorCode,
    IceCandidate,
    Join,
    Joined,
    Leave,
    Offer,
    Peer,
    Ping,
    Pong,
    PresenceUpdate,
    ProtocolError,
    RateLimit,
    Restart,
    ServerMessage,
    Waiting,
    parse_client_message,
    parse_server_message,
    reconnect_delay,
    serialize,
    spend,
)

TOKEN = "tok_" + "a" * 28
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE_LINE = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"


def frame(**fields: Any) -> str:
    return json.dumps({"v": 1, **fields})


def candidate_frame(**fields: Any) -> str:
    return frame(type="candidate", candidate={"candidate": "", **fields})


def refused(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(data)
    return caught.value


# --- every client message type -------------------------------------------------------------------

VALID_CLIENT_FRAMES: list[tuple[dict[str, Any], object]] = [
    ({"type": "join", "token": TOKEN}, Join(token=TOKEN)),
    ({"type": "join", "token": TOKEN, "precall": "good"}, Join(token=TOKEN, precall="good")),
    ({"type": "offer", "id": "c-1", "sdp": SDP}, Offer(id="c-1", sdp=SDP)),
    ({"type": "answer", "sdp": SDP, "to": "patient-1"}, Answer(sdp=SDP, to="patient-1")),
    (
        {
            "type": "candidate",
            "candidate": {"candidate": CANDIDATE_LINE, "sdpMid": "0", "sdpMLineIndex": 0},
        },
        Candidate(candidate=IceCandidate(candidate=CANDIDATE_LINE, sdpMid="0", sdpMLineIndex=0)),
    ),
    (
        {"type": "candidate", "candidate": {"candidate": ""}},  # end of candidates
        Candidate(candidate=IceCandidate(candidate="")),
    ),
    ({"type": "restart"}, Restart()),
    ({"type": "restart", "reason": "network_changed"}, Restart(reason="network_changed")),
    ({"type": "chat", "id": "m.7", "text": "こんにちは\n聞こえますか"}, None),
    ({"type": "admit", "participant": "patient-1"}, Admit(participant="patient-1")),
    (
        {"type": "waiting", "status": "running_late", "minutes": 10, "note": "10分ほどです"},
        Waiting(status="running_late", minutes=10, note="10分ほどです"),
    ),
    ({"type": "waiting", "status": "with_another_patient"}, Waiting(status="with_another_patient")),
    ({"type": "leave"}, Leave()),
    ({"type": "end", "id": "x"}, End(id="x")),
    ({"type": "ping", "id": "p1"}, Ping(id="p1")),
    ({"type": "pong"}, Pong()),
]


@pytest.mark.parametrize(("fields", "expected"), VALID_CLIENT_FRAMES)
def test_every_client_message_type_parses_to_its_typed_message(
    fields: dict[str, Any], expected: object
) -> None:
    message = parse_client_message(frame(**fields))
    assert message.type == fields["type"]
    if expected is not None:
        assert message == expected
    assert parse_client_message(frame(**fields).encode()) == message  # binary frames too


def test_chat_keeps_its_text_and_id() -> None:
    message = parse_client_message(frame(type="chat", id="m.7", text="こんにちは\n聞こえますか"))
    assert isinstance(message, Chat)
    assert (message.id, message.text, message.sender, message.at) == (
        "m.7",
        "こんにちは\n聞こえますか",
        None,
        None,
    )


def test_the_client_types_cover_the_documented_list() -> None:
    client = {fields["type"] for fields, _ in VALID_CLIENT_FRAMES}
    assert client == {
        "join",
        "offer",
        "answer",
        "candidate",
        "restart",
        "chat",
        "admit",
        "waiting",
        "leave",
        "end",
        "ping",
        "pong",
    }


# --- errors: one case per code, plus the field it blames -----------------------------------------

ERROR_CASES: list[tuple[str | bytes, ErrorCode, str | None]] = [
    (b"\xff\xfe{}", ErrorCode.BAD_ENCODING, None),
    ("\ud800", ErrorCode.BAD_ENCODING, None),
    ("{", ErrorCode.BAD_JSON, None),
    ('{"v": NaN, "type": "ping"}', ErrorCode.BAD_JSON, None),
    ("[" * 5000 + "]" * 5000, ErrorCode.BAD_JSON, None),
    ('{"v": 1, "type": "chat", "text": "a\\ud800b"}', ErrorCode.BAD_JSON, None),
    ("[1, 2]", ErrorCode.NOT_AN_OBJECT, None),
    ('"ping"', ErrorCode.NOT_AN_OBJECT, None),
    ('{"type": "ping"}', ErrorCode.UNSUPPORTED_VERSION, "v"),
    ('{"v": 2, "type": "ping"}', ErrorCode.UNSUPPORTED_VERSION, "v"),
    ('{"v": "1", "type": "ping"}', ErrorCode.UNSUPPORTED_VERSION, "v"),
    ('{"v": true, "type": "ping"}', ErrorCode.UNSUPPORTED_VERSION, "v"),
    ('{"v": 1.0, "type": "ping"}', ErrorCode.UNSUPPORTED_VERSION, "v"),
    (frame(type="dance"), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(type=["ping"]), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(type="joined", participant="p", role="patient"), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(type="presence"), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(type="error"), ErrorCode.UNKNOWN_TYPE, "type"),
    (frame(type="ping", extra=1), ErrorCode.INVALID_FIELD, "extra"),
    (frame(type="ping", id=""), ErrorCode.INVALID_FIELD, "id"),
    (frame(type="ping", id="a b"), ErrorCode.INVALID_FIELD, "id"),
    (frame(type="ping", id=7), ErrorCode.INVALID_FIELD, "id"),
    (frame(type="join"), ErrorCode.INVALID_FIELD, "token"),
    (frame(type="join", token="short"), ErrorCode.INVALID_FIELD, "token"),
    (frame(type="join", token=TOKEN, precall="great"), ErrorCode.INVALID_FIELD, "precall"),
    (frame(type="offer"), ErrorCode.INVALID_FIELD, "sdp"),
    (frame(type="offer", sdp=""), ErrorCode.INVALID_FIELD, "sdp"),
    (frame(type="offer", sdp=SDP, **{"from": "x"}), ErrorCode.INVALID_FIELD, "from"),
    (frame(type="offer", sdp=SDP, sender="x"), ErrorCode.INVALID_FIELD, "sender"),
    (frame(type="answer", sdp=SDP, to="../x"), ErrorCode.INVALID_FIELD, "to"),
    (frame(type="candidate", candidate=CANDIDATE_LINE), ErrorCode.INVALID_FIELD, "candidate"),
    (candidate_frame(sdpMLineIndex=True), ErrorCode.INVALID_FIELD, "candidate.sdpMLineIndex"),
    (candidate_frame(sdpMLineIndex=-1), ErrorCode.INVALID_FIELD, "candidate.sdpMLineIndex"),
    (candidate_frame(sdpMLineIndex=1024), ErrorCode.INVALID_FIELD, "candidate.sdpMLineIndex"),
    (candidate_frame(foo=1), ErrorCode.INVALID_FIELD, "candidate.foo"),
    (candidate_frame(candidate=None), ErrorCode.INVALID_FIELD, "candidate.candidate"),
    (frame(type="restart", reason="because"), ErrorCode.INVALID_FIELD, "reason"),
    (frame(type="chat", text="   "), ErrorCode.INVALID_FIELD, "text"),
    (frame(type="chat", text="bell\x07"), ErrorCode.INVALID_FIELD, "text"),
    (frame(type="chat", text="hi", at="2026-01-01T00:00:00Z"), ErrorCode.INVALID_FIELD, "at"),
    (frame(type="chat", text=1), ErrorCode.INVALID_FIELD, "text"),
    (frame(type="admit"), ErrorCode.INVALID_FIELD, "participant"),
    (frame(type="waiting", status="asleep"), ErrorCode.INVALID_FIELD, "status"),
    (frame(type="waiting", status="running_late", minutes=241), ErrorCode.INVALID_FIELD, "minutes"),
    (frame(type="waiting", status="running_late", minutes="5"), ErrorCode.INVALID_FIELD, "minutes"),
    (frame(type="offer", sdp="x" * (MAX_SDP_CHARS + 1)), ErrorCode.TOO_LARGE, "sdp"),
    (frame(type="chat", text="あ" * (MAX_CHAT_CHARS + 1)), ErrorCode.TOO_LARGE, "text"),
    (
        candidate_frame(candidate="c" * (MAX_CANDIDATE_CHARS + 1)),
        ErrorCode.TOO_LARGE,
        "candidate.candidate",
    ),
    (frame(type="waiting", status="message", note="n" * 201), ErrorCode.TOO_LARGE, "note"),
    (frame(type="ping", pad="x" * MAX_FRAME_BYTES), ErrorCode.TOO_LARGE, None),
    (b"{" + b" " * MAX_FRAME_BYTES + b"}", ErrorCode.TOO_LARGE, None),
    # 50,000 three-byte characters: under the limit in characters, over it in UTF-8 bytes
    (frame(type="ping", pad="あ" * 50_000), ErrorCode.TOO_LARGE, None),
]


@pytest.mark.parametrize(("data", "code", "field"), ERROR_CASES)
def test_each_bad_frame_gets_its_stable_code_and_field(
    data: str | bytes, code: ErrorCode, field: str | None
) -> None:
    error = refused(data)
    assert (error.code, error.field) == (code, field)


def test_every_error_code_is_exercised_and_has_both_languages() -> None:
    room_codes = {
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_ADMITTED,
        ErrorCode.NOT_WAITING,
        ErrorCode.PEER_UNAVAILABLE,
        ErrorCode.NOT_LIVE,
        ErrorCode.NOT_REQUESTED,
    }  # raised by the room; tests/unit/video/test_room.py covers each
    assert {code for _, code, _ in ERROR_CASES} | room_codes == set(ErrorCode)
    for code in ErrorCode:
        ja, en = ERROR_MESSAGES[code]
        assert ja
        assert en
        assert ja != en


def test_the_limits_themselves_are_accepted() -> None:
    assert parse_client_message(frame(type="offer", sdp="x" * MAX_SDP_CHARS))
    assert parse_client_message(frame(type="chat", text="あ" * MAX_CHAT_CHARS))
    candidate = {"candidate": "c" * MAX_CANDIDATE_CHARS}
    assert parse_client_message(frame(type="candidate", candidate=candidate))


def test_an_error_refers_to_the_message_id_when_it_could_be_read() -> None:
    error = refused(frame(type="chat", id="m-9", text=""))
    message = error.to_message()
    assert (message.code, message.ref, message.field) == (ErrorCode.INVALID_FIELD, "m-9", "text")
    assert message.message_ja == "メッセージの内容が正しくありません"
    assert message.message_en == "A field of the message is invalid."
    assert refused(frame(type="chat", id="bad id", text="")).ref is None


def test_a_blamed_field_name_is_cut_short() -> None:
    error = refused(frame(type="ping", **{"k" * 5000: 1}))
    assert error.field == "k" * 80


# --- server messages ---------------------------------------------------------------------------

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PEER = Peer(participant="doc-1", role="doctor", status="admitted", presence="connected")

SERVER_MESSAGES: list[ServerMessage] = [
    Joined(participant="pat-1", role="patient", status="waiting", polite=True, peers=(PEER,)),
    Offer(sdp=SDP, sender="doc-1"),
    Answer(sdp=SDP, sender="pat-1", id="c-3"),
    Candidate(candidate=IceCandidate(candidate=CANDIDATE_LINE, sdpMid="0"), sender="pat-1"),
    Restart(reason="reconnected", sender="pat-1"),
    Chat(text="はい、聞こえます", sender="doc-1", at=AT, id="m-1"),
    Admitted(participant="pat-1", by="doc-1"),
    Waiting(status="running_late", minutes=10, note="あと10分ほどです"),
    PresenceUpdate(
        peer=Peer(
            participant="pat-1",
            role="patient",
            status="waiting",
            presence="reconnecting",
            waiting_since=AT,
            precall="poor",
        )
    ),
    End(),
    ProtocolError(ErrorCode.NOT_ADMITTED, ref="m-2").to_message(),
    Ping(),
    Pong(id="p-1"),
]


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: m.type)
def test_server_messages_serialise_and_read_back(message: ServerMessage) -> None:
    text = serialize(message)
    data = json.loads(text)
    assert data["v"] == 1
    assert data["type"] == message.type
    assert None not in data.values()  # absent fields are left out, not null
    assert parse_server_message(text) == message


def test_relayed_messages_name_their_sender_as_from() -> None:
    data = json.loads(serialize(Offer(sdp=SDP, sender="doc-1")))
    assert data["from"] == "doc-1"
    assert "sender" not in data


def test_chat_time_is_iso_8601_with_zone() -> None:
    data = json.loads(serialize(Chat(text="hi", sender="doc-1", at=AT)))
    assert data["at"] == "2026-12-01T09:30:00Z"


def test_the_server_types_cover_the_documented_list() -> None:
    assert {m.type for m in SERVER_MESSAGES} == {
        "joined",
        "offer",
        "answer",
        "candidate",
        "restart",
        "chat",
        "admitted",
        "waiting",
        "presence",
        "end",
        "error",
        "ping",
        "pong",
    }


def test_a_client_cannot_send_server_only_messages() -> None:
    for message in SERVER_MESSAGES:
        if message.type in {"joined", "admitted", "presence", "error"}:
            assert refused(serialize(message)).code is ErrorCode.UNKNOWN_TYPE


# --- close codes ---------------------------------------------------------------------------------


def test_close_codes_are_the_documented_numbers() -> None:
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "HEARTBEAT_TIMEOUT": 4000,
        "UNAUTHENTICATED": 4001,
        "NOT_IN_ROOM": 4003,
        "OUTSIDE_JOIN_WINDOW": 4004,
        "PROTOCOL_ERROR": 4008,
        "REPLACED": 4009,
        "CONSULT_ENDED": 4010,
        "TOO_MANY_MESSAGES": 4029,
    }


def test_only_transient_closes_invite_a_reconnect() -> None:
    assert {code for code in CloseCode if code.reconnect} == {
        CloseCode.GOING_AWAY,
        CloseCode.HEARTBEAT_TIMEOUT,
        CloseCode.TOO_MANY_MESSAGES,
    }


# --- fuzzing: nothing but a typed message or a ProtocolError -------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
message_types = st.sampled_from(
    [
        "join",
        "offer",
        "answer",
        "candidate",
        "restart",
        "chat",
        "admit",
        "waiting",
        "leave",
        "end",
        "ping",
        "pong",
        "joined",
        "presence",
        "error",
        "nope",
    ]
)
field_names = st.sampled_from(
    [
        "id",
        "sdp",
        "candidate",
        "text",
        "participant",
        "status",
        "minutes",
        "note",
        "token",
        "to",
        "from",
        "at",
        "reason",
        "precall",
        "sdpMid",
        "sdpMLineIndex",
    ]
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, object]:
    """A version and a known type with a few plausible fields of random values."""
    version = draw(st.sampled_from([1, 1, 1, 2, 0, True, "1"]))
    message: dict[str, object] = {"v": version, "type": draw(message_types)}
    message.update(draw(st.dictionaries(field_names, json_values, max_size=4)))
    return message


def outcome(data: str | bytes) -> ClientMessage | ProtocolError:
    try:
        return parse_client_message(data)
    except ProtocolError as error:
        return error


def parses_or_refuses(data: str | bytes) -> None:
    result = outcome(data)
    if isinstance(result, ProtocolError):
        assert isinstance(result.code, ErrorCode)
        assert result.message_ja
        assert result.message_en
        serialize(result.to_message())  # an error can always be sent back
    else:
        assert result.v == 1
        serialize(result)  # what was accepted can always be relayed


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    parses_or_refuses(data)


@given(st.text(max_size=300))
def test_random_text_never_crashes_the_parser(data: str) -> None:
    parses_or_refuses(data)


@given(json_values)
def test_random_json_never_crashes_the_parser(value: object) -> None:
    parses_or_refuses(json.dumps(value))


@given(near_valid())
def test_near_valid_messages_parse_or_are_refused_with_a_code(value: dict[str, Any]) -> None:
    parses_or_refuses(json.dumps(value))


@given(st.text(min_size=1, max_size=MAX_CHAT_CHARS))
def test_any_chat_text_is_accepted_or_refused_and_round_trips(text: str) -> None:
    message = outcome(frame(type="chat", text=text))
    if isinstance(message, ProtocolError):
        assert message.code is ErrorCode.INVALID_FIELD
        assert message.field == "text"
        assert not text.strip() or any(
            (ord(c) < 32 and c not in "\t\n") or c == "\x7f" for c in text
        )
    else:
        assert isinstance(message, Chat)
        assert message.text == text
        relayed = message.model_copy(update={"sender": "p-1", "at": AT})
        assert parse_server_message(serialize(relayed)) == relayed


# --- pacing ------------------------------------------------------------------------------------


def test_a_new_connection_may_send_a_burst_then_is_held_to_the_rate() -> None:
    limit = RateLimit(burst=3, per_second=2.0)
    budget: Budget | None = None
    verdicts = []
    for _ in range(4):
        budget, allowed = spend(budget, 100.0, limit)
        verdicts.append(allowed)
    assert verdicts == [True, True, True, False]
    assert budget is not None
    budget, allowed = spend(budget, 100.4, limit)
    assert not allowed  # 0.8 of a frame earned
    budget, allowed = spend(budget, 100.5, limit)
    assert allowed  # a whole frame after half a second at 2/s
    budget, _ = spend(budget, 1000.0, limit)
    assert budget.tokens == 2.0  # refilled to the burst, minus this frame


def test_a_clock_going_backwards_earns_nothing() -> None:
    budget, _ = spend(Budget(tokens=0.0, updated=50.0), 10.0)
    assert budget.tokens == 0.0


@given(st.lists(st.floats(0, 5, allow_nan=False), max_size=200))
def test_no_connection_gets_more_than_burst_plus_rate(gaps: list[float]) -> None:
    limit = RateLimit(burst=10, per_second=5.0)
    budget, now, allowed = None, 0.0, 0
    for gap in gaps:
        now += gap
        budget, ok = spend(budget, now, limit)
        allowed += ok
    assert allowed <= limit.burst + now * limit.per_second + 1e-9


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (4, 8.0), (5, 10.0), (100, 10.0)]
)
def test_reconnect_backoff_doubles_from_half_a_second_to_ten(attempt: int, ceiling: float) -> None:
    assert reconnect_delay(attempt, 0.0) == 0.0
    assert reconnect_delay(attempt, 0.5) == ceiling / 2
    assert reconnect_delay(attempt, 0.999) < ceiling <= RECONNECT_CAP


def test_reconnect_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="attempt"):
        reconnect_delay(-1, 0.5)
    with pytest.raises(ValueError, match="random"):
        reconnect_delay(0, 1.0)


async def test_a_real_offer_from_aiortc_fits_and_passes_through_unchanged() -> None:
    peer = RTCPeerConnection()
    try:
        peer.addTransceiver("audio")
        peer.addTransceiver("video")
        offer = await peer.createOffer()
    finally:
        await peer.close()
    assert 0 < len(offer.sdp) < MAX_SDP_CHARS
    message = parse_client_message(serialize(Offer(sdp=offer.sdp, id="o-1")))
    assert isinstance(message, Offer)
    assert message.sdp == offer.sdp
