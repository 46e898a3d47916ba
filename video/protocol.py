"""The consult signaling protocol, version 1: JSON messages over a websocket (sans-I/O).

Every message is one JSON object in one text frame::

    {"v": 1, "type": "offer", "id": "c-17", "sdp": "v=0..."}

``v`` is the protocol version (only ``1`` exists), ``type`` names the message and ``id`` is an
optional client message id (1–64 characters of ``[A-Za-z0-9_.:-]``): the server echoes it on
what it relays and on errors (as ``ref``), so a client can match acknowledgements and drop
duplicates after a reconnect. Field names follow the browser's WebRTC API (``sdpMid``,
``sdpMLineIndex``) so the JavaScript side passes them through unchanged.

:func:`parse_client_message` turns one frame from a browser into a typed message or raises
:class:`ProtocolError`; :func:`serialize` turns a server message into a frame;
:func:`parse_server_message` reads server frames (for test clients and the bridge). Nothing here
does I/O. ``video/PROTOCOL.md`` is the reference for both ends.

Directions: ``join``, ``admit`` and ``leave`` only come from clients; ``joined``, ``admitted``,
``presence`` and ``error`` only from the server; ``recording`` is an ``action`` from a client
and a ``status`` from the server; the others go both ways. The server adds ``from``
(the sender's participant id) to what it relays and ``at`` (an ISO 8601 time) to chat; a client
that sends either gets ``invalid_field``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

__all__ = [
    "MAX_CANDIDATE_CHARS",
    "MAX_CHAT_CHARS",
    "MAX_FRAME_BYTES",
    "MAX_NOTE_CHARS",
    "MAX_SDP_CHARS",
    "RECONNECT_CAP",
    "RECONNECT_FIRST",
    "VERSION",
    "Admit",
    "Admitted",
    "Answer",
    "Budget",
    "Candidate",
    "Chat",
    "ClientMessage",
    "CloseCode",
    "End",
    "Error",
    "ErrorCode",
    "IceCandidate",
    "Join",
    "Joined",
    "Leave",
    "Offer",
    "Peer",
    "Ping",
    "Pong",
    "PresenceUpdate",
    "ProtocolError",
    "RateLimit",
    "Recording",
    "RecordingStatus",
    "Restart",
    "ServerMessage",
    "Waiting",
    "parse_client_message",
    "parse_server_message",
    "reconnect_delay",
    "serialize",
    "spend",
]

VERSION = 1

MAX_FRAME_BYTES = 128 * 1024  # the whole frame, before JSON decoding
MAX_SDP_CHARS = 100_000
MAX_CANDIDATE_CHARS = 1024
MAX_CHAT_CHARS = 1000
MAX_NOTE_CHARS = 200
MAX_WAIT_MINUTES = 240


class CloseCode(IntEnum):
    """Websocket close codes the server uses (4000–4999 is the application range)."""

    NORMAL = 1000  # the participant left, or the server closed a healthy connection
    GOING_AWAY = 1001  # the server is shutting down: reconnect
    HEARTBEAT_TIMEOUT = 4000  # nothing received for the stale timeout: reconnect
    UNAUTHENTICATED = 4001  # no valid session or participant token: sign in again
    NOT_IN_ROOM = 4003  # forbidden or no such room (never says which): do not retry
    OUTSIDE_JOIN_WINDOW = 4004  # too early or too late for this appointment: do not retry now
    PROTOCOL_ERROR = 4008  # repeated malformed messages: a client bug, do not retry
    REPLACED = 4009  # the same participant connected again elsewhere: do not retry here
    CONSULT_ENDED = 4010  # the doctor ended the consult: do not retry
    TOO_MANY_MESSAGES = 4029  # rate limit exceeded: reconnect after a backoff

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect (with backoff) after this close."""
        return self in _RECONNECTABLE


_RECONNECTABLE = frozenset(
    {CloseCode.GOING_AWAY, CloseCode.HEARTBEAT_TIMEOUT, CloseCode.TOO_MANY_MESSAGES}
)


class ErrorCode(StrEnum):
    """Stable codes of ``error`` messages; clients branch on these, people read the messages."""

    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    TOO_LARGE = "too_large"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    # room rules (raised by video.room, sent with the same message shape)
    FORBIDDEN = "forbidden"
    NOT_ADMITTED = "not_admitted"
    NOT_WAITING = "not_waiting"
    PEER_UNAVAILABLE = "peer_unavailable"
    NOT_LIVE = "not_live"
    NOT_REQUESTED = "not_requested"


ERROR_MESSAGES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.BAD_ENCODING: (
        "メッセージの文字コードが正しくありません",
        "The message is not UTF-8 text.",
    ),
    ErrorCode.BAD_JSON: (
        "メッセージを読み取れません",
        "The message is not valid JSON.",
    ),
    ErrorCode.TOO_LARGE: (
        "メッセージが大きすぎます",
        "The message or one of its fields is too large.",
    ),
    ErrorCode.NOT_AN_OBJECT: (
        "メッセージの形式が正しくありません",
        "The message must be a JSON object.",
    ),
    ErrorCode.UNSUPPORTED_VERSION: (
        "この画面は古いバージョンです。ページを再読み込みしてください",
        "This page uses an unsupported protocol version. Please reload the page.",
    ),
    ErrorCode.UNKNOWN_TYPE: (
        "不明な種類のメッセージです",
        "Unknown message type.",
    ),
    ErrorCode.INVALID_FIELD: (
        "メッセージの内容が正しくありません",
        "A field of the message is invalid.",
    ),
    ErrorCode.FORBIDDEN: (
        "この操作は許可されていません",
        "You are not allowed to do this.",
    ),
    ErrorCode.NOT_ADMITTED: (
        "まだ診察室に入室していません。医師の案内をお待ちください",
        "You have not been admitted yet. Please wait for the doctor.",
    ),
    ErrorCode.NOT_WAITING: (
        "この方は待合室にいません",
        "This participant is not in the waiting room.",
    ),
    ErrorCode.PEER_UNAVAILABLE: (
        "相手の方が接続していません。再接続をお待ちください",
        "The other side is not connected. Please wait for them to reconnect.",
    ),
    ErrorCode.NOT_LIVE: ("診察は行われていません", "The consult is not in progress."),
    ErrorCode.NOT_REQUESTED: (
        "録画は依頼されていません",
        "Nobody has asked to record this consult.",
    ),
}


class ProtocolError(Exception):
    """A frame or request the server refuses; ``code`` is stable, the messages are for people.

    ``ref`` is the offending message's ``id`` when it could be read, ``field`` the path of the bad
    field (``"sdp"``, ``"candidate.sdpMid"``) when one is to blame. :meth:`to_message` gives the
    ``error`` message to send back. The caller decides whether to close (with
    :attr:`CloseCode.PROTOCOL_ERROR`) — a single bad frame need not end a consult.
    """

    def __init__(self, code: ErrorCode, *, field: str | None = None, ref: str | None = None):
        self.code = code
        self.field = field
        self.ref = ref
        self.message_ja, self.message_en = ERROR_MESSAGES[code]
        detail = f" ({field})" if field else ""
        super().__init__(f"{code.value}{detail}: {self.message_en}")

    def to_message(self) -> Error:
        return Error(
            code=self.code,
            field=self.field,
            ref=self.ref,
            message_ja=self.message_ja,
            message_en=self.message_en,
        )


# --- field types ------------------------------------------------------------------------------

_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
MessageId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
ParticipantId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # C0 controls and DEL, except tab and newline


def _printable_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


ChatText = Annotated[
    str, StringConstraints(max_length=MAX_CHAT_CHARS), AfterValidator(_printable_text)
]
NoteText = Annotated[
    str, StringConstraints(max_length=MAX_NOTE_CHARS), AfterValidator(_printable_text)
]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SDP_CHARS)]
CandidateLine = Annotated[str, StringConstraints(max_length=MAX_CANDIDATE_CHARS)]
Role = Literal["patient", "doctor", "staff"]
Presence = Literal["connected", "reconnecting", "left"]
ParticipantStatus = Literal["absent", "waiting", "present", "admitted", "in_call", "left"]
WaitingStatus = Literal["with_another_patient", "running_late", "ready_soon", "message"]
PrecallResult = Literal["good", "fair", "poor", "failed", "skipped"]
RecordingAction = Literal["request", "consent", "decline", "stop"]
RecordingMode = Literal["off", "requested", "on"]


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    v: Literal[1] = 1
    id: MessageId | None = None


class _Relayed(_Message):
    """A message the server passes from one participant to another, stamped with ``from``."""

    sender: ParticipantId | None = Field(
        default=None, validation_alias="from", serialization_alias="from"
    )
    to: ParticipantId | None = None  # the recipient; omitted: every other admitted participant


# --- messages in both directions ---------------------------------------------------------------


class Offer(_Relayed):
    type: Literal["offer"] = "offer"
    sdp: Sdp


class Answer(_Relayed):
    type: Literal["answer"] = "answer"
    sdp: Sdp


class IceCandidate(BaseModel):
    """``RTCIceCandidateInit``; an empty ``candidate`` is the end-of-candidates marker."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    candidate: CandidateLine
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1023)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class Candidate(_Relayed):
    type: Literal["candidate"] = "candidate"
    candidate: IceCandidate


class Restart(_Relayed):
    """Ask the peer to ICE-restart: the browser calls ``restartIce()`` and so re-offers."""

    type: Literal["restart"] = "restart"
    reason: Literal["ice_failed", "reconnected", "network_changed", "renegotiate"] | None = None


class Chat(_Relayed):
    """A chat line; the server echoes it to the sender (same ``id``) once stored, with ``at``."""

    type: Literal["chat"] = "chat"
    text: ChatText
    at: datetime | None = None


class Waiting(_Message):
    """Staff → waiting patients: why they wait; the server forwards it (and repeats it on join)."""

    type: Literal["waiting"] = "waiting"
    status: WaitingStatus
    minutes: Annotated[int, Field(ge=0, le=MAX_WAIT_MINUTES)] | None = None
    note: NoteText | None = None


class End(_Message):
    """Client: the doctor ends the consult. Server: the consult is over (then close 4010)."""

    type: Literal["end"] = "end"


class Ping(_Message):
    type: Literal["ping"] = "ping"


class Pong(_Message):
    type: Literal["pong"] = "pong"


# --- client → server only ------------------------------------------------------------------------


class Join(_Message):
    """The first message on a connection; ``token`` is the participant token (also on rejoin)."""

    type: Literal["join"] = "join"
    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-~+/=]{16,512}$")]
    precall: PrecallResult | None = None


class Admit(_Message):
    """Staff admits a waiting patient (or themselves) into the consult."""

    type: Literal["admit"] = "admit"
    participant: ParticipantId


class Leave(_Message):
    type: Literal["leave"] = "leave"


class Recording(_Message):
    """Someone in the call asks to record (``request``, which is also their consent), agrees
    (``consent``), refuses (``decline``) or stops a recording or a request (``stop``)."""

    type: Literal["recording"] = "recording"
    action: RecordingAction


# --- server → client only ------------------------------------------------------------------------


class Peer(BaseModel):
    """Another participant as one participant may see them."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    participant: ParticipantId
    role: Role
    status: ParticipantStatus
    presence: Presence
    waiting_since: datetime | None = None  # shown to staff for waiting patients
    precall: PrecallResult | None = None  # shown to staff


class Joined(_Message):
    """The join (or rejoin) succeeded; ``polite`` is this browser's perfect-negotiation role."""

    type: Literal["joined"] = "joined"
    participant: ParticipantId
    role: Role
    status: ParticipantStatus
    polite: bool
    resumed: bool = False
    peers: tuple[Peer, ...] = ()


class Admitted(_Message):
    """``participant`` was admitted into the consult: the browser may now negotiate media."""

    type: Literal["admitted"] = "admitted"
    participant: ParticipantId
    by: ParticipantId | None = None


class PresenceUpdate(_Message):
    """What changed about another participant (connected / reconnecting / left)."""

    type: Literal["presence"] = "presence"
    peer: Peer


class RecordingStatus(_Message):
    """Whether the consult is being recorded: sent to everyone in the call on every change and to
    a participant who joins the call. ``on`` only once everyone in the call consented;
    ``consented`` lists who has; ``by`` is who caused this change; ``segment`` counts the times
    recording was switched on in this consult (a recorder names its file by it)."""

    type: Literal["recording"] = "recording"
    status: RecordingMode
    by: ParticipantId | None = None
    consented: tuple[ParticipantId, ...] = ()
    segment: Annotated[int, Field(ge=0)] = 0


class Error(_Message):
    type: Literal["error"] = "error"
    code: ErrorCode
    message_ja: str
    message_en: str
    field: str | None = None
    ref: MessageId | None = None


ClientMessage: TypeAlias = (
    Join
    | Offer
    | Answer
    | Candidate
    | Restart
    | Chat
    | Admit
    | Waiting
    | Leave
    | Recording
    | End
    | Ping
    | Pong
)
ServerMessage: TypeAlias = (
    Joined
    | Offer
    | Answer
    | Candidate
    | Restart
    | Chat
    | Admitted
    | Waiting
    | PresenceUpdate
    | RecordingStatus
    | End
    | Error
    | Ping
    | Pong
)

_CLIENT_TYPES: dict[str, type[BaseModel]] = {
    m.model_fields["type"].default: m
    for m in (
        Join,
        Offer,
        Answer,
        Candidate,
        Restart,
        Chat,
        Admit,
        Waiting,
        Leave,
        Recording,
        End,
        Ping,
        Pong,
    )
}
_SERVER_TYPES: dict[str, type[BaseModel]] = {
    m.model_fields["type"].default: m
    for m in (
        Joined,
        Offer,
        Answer,
        Candidate,
        Restart,
        Chat,
        Admitted,
        Waiting,
        PresenceUpdate,
        RecordingStatus,
        End,
        Error,
        Ping,
        Pong,
    )
}
_SERVER_ONLY_FIELDS = (("from", "sender"), ("at", "at"))


# --- parsing and serialising -------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(frame: str | bytes) -> tuple[str, dict[str, Any]]:
    if isinstance(frame, bytes):
        if len(frame) > MAX_FRAME_BYTES:
            raise ProtocolError(ErrorCode.TOO_LARGE)
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.BAD_ENCODING) from None
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE)
    try:
        size = len(frame.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: not text any browser sends
        raise ProtocolError(ErrorCode.BAD_ENCODING) from None
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE)
    try:
        data = json.loads(frame, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON) from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.NOT_AN_OBJECT)
    return frame, data


def _readable_id(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if isinstance(value, str) and re.fullmatch(_ID_PATTERN, value):
        return value
    return None


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location)[:80]  # a key name is the client's text


def _parse(frame: str | bytes, types: dict[str, type[BaseModel]]) -> BaseModel:
    text, data = _decode(frame)
    ref = _readable_id(data)
    version = data.get("v")
    if type(version) is not int or version != VERSION:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION, field="v", ref=ref)
    kind = data.get("type")
    model = types.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, field="type", ref=ref)
    try:
        # Validated from the text so that strict JSON-mode rules apply (ISO times, enum values);
        # pydantic's parser also refuses escaped lone surrogates, which json.loads lets through.
        return model.model_validate_json(text, by_alias=True, by_name=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        code = _ERROR_FOR_PYDANTIC.get(first["type"], ErrorCode.INVALID_FIELD)
        raise ProtocolError(code, field=_field_path(first["loc"]) or None, ref=ref) from None


_ERROR_FOR_PYDANTIC = {
    "string_too_long": ErrorCode.TOO_LARGE,
    "too_long": ErrorCode.TOO_LARGE,
    "json_invalid": ErrorCode.BAD_JSON,
}


def parse_client_message(frame: str | bytes) -> ClientMessage:
    """One websocket frame from a browser → a typed message, or :class:`ProtocolError`.

    Never raises anything else, whatever the input (the property tests feed it random bytes).
    """
    message = cast(ClientMessage, _parse(frame, _CLIENT_TYPES))
    for wire_name, attribute in _SERVER_ONLY_FIELDS:
        if getattr(message, attribute, None) is not None:
            raise ProtocolError(ErrorCode.INVALID_FIELD, field=wire_name, ref=message.id)
    return message


def parse_server_message(frame: str | bytes) -> ServerMessage:
    """One frame from the server → a typed message (for test clients); :class:`ProtocolError`."""
    return cast(ServerMessage, _parse(frame, _SERVER_TYPES))


# --- pacing: the rate limit and the reconnect backoff ---------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """Per connection: a ``burst`` of frames at once (an offer's trickled candidates), then
    ``per_second`` on average. Going over closes with :attr:`CloseCode.TOO_MANY_MESSAGES`."""

    burst: int = 60
    per_second: float = 20.0


@dataclass(frozen=True)
class Budget:
    """What is left of a connection's allowance at ``updated`` (monotonic seconds)."""

    tokens: float
    updated: float


def spend(budget: Budget | None, now: float, limit: RateLimit = RateLimit()) -> tuple[Budget, bool]:
    """One frame arrives at ``now`` (monotonic seconds) → the new budget, and whether it is allowed.

    ``budget`` is ``None`` for a new connection (a full burst).
    """
    if budget is None:
        budget = Budget(float(limit.burst), now)
    elapsed = max(0.0, now - budget.updated)
    tokens = min(float(limit.burst), budget.tokens + elapsed * limit.per_second)
    if tokens >= 1.0:
        return Budget(tokens - 1.0, now), True
    return Budget(tokens, now), False


RECONNECT_FIRST = 0.5  # seconds: the first backoff's ceiling
RECONNECT_CAP = 10.0  # seconds: no wait is longer


def reconnect_delay(attempt: int, random: float) -> float:
    """Seconds to wait before reconnect ``attempt`` (0, 1, 2…): exponential backoff with full
    jitter, ``random`` in [0, 1) supplied by the caller (so tests need no random source)."""
    if attempt < 0 or not 0.0 <= random < 1.0:
        raise ValueError("attempt must be >= 0 and random in [0, 1)")
    ceiling = min(RECONNECT_CAP, RECONNECT_FIRST * 2.0 ** min(attempt, 32))
    return ceiling * random


def serialize(message: ServerMessage | ClientMessage) -> str:
    """A message → one compact JSON text frame (``from`` spelled as on the wire, no nulls)."""
    return message.model_dump_json(by_alias=True, exclude_none=True)
