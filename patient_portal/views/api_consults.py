"""``/api/v1/consults``: a ticket into an online appointment's consult room.

The ticket is what the signaling websocket's ``join`` frame presents (see patient_portal/consults.py
and video/PROTOCOL.md), with the participant's own short-lived TURN credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, Field
from starlette.requests import Request

from booking import service as booking
from booking.models import Appointment
from patient_portal import consults
from patient_portal.api.v1 import api
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.policy import Principal, Resource
from patient_portal.consult_models import (
    ConsultChatLine,
    IdentityCheck,
    IdentityDocument,
    IdentityResult,
)
from patient_portal.problems import (
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    UNAUTHORIZED,
    UNAVAILABLE,
    VALIDATION,
    Problem,
    Text,
)
from patient_portal.recordings import NotRecording, Recordings
from patient_portal.views.booking import clock
from patient_portal.views.common import record
from video import room as rooms
from video.models import PrecallCheck
from video.precall import InvalidOffer, PrecallBusy, PrecallService, PrecallSession, verdict
from video.recording import InvalidOffer as RecordingOfferInvalid
from video.recording import RecorderBusy
from video.turn import TurnUnavailable


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class TicketOut(BaseModel):
    token: str = Field(description="Present it in the websocket's join frame within 5 minutes")
    participant: str
    role: str
    websocket: str = Field(description="The signaling websocket's path")
    ice_servers: list[IceServerOut]
    starts_at: datetime
    opens_at: datetime
    closes_at: datetime


async def _seat(
    request: Request, action: str = "consult.precall"
) -> tuple[Principal, consults.Seat, Appointment]:
    """The caller's seat in the path's appointment room; 404 (audited) for anyone else."""
    principal = auth_of(request).principal
    if principal is None:
        raise Problem(UNAUTHORIZED)
    appointment_id = str(request.path_params["appointment_id"])
    key = booking.parse_id(appointment_id)
    appointment = await Appointment.get_or_none(id=key).prefetch_related("menu") if key else None
    seat = (
        consults.seat_for(principal, appointment, appointment.menu)
        if appointment is not None and appointment.status in consults.LIVE
        else None
    )
    if appointment is None or seat is None:
        await record(request, principal, action, Resource("appointment", appointment_id))
        raise Problem(NOT_FOUND)  # no hint that the room exists
    return principal, seat, appointment


@api.endpoint(
    "POST",
    "/consults/{appointment_id}/ticket",
    summary="A ticket into the consult room of an online appointment (patient or clinic staff)",
    response=TicketOut,
    tags=("consults",),
    problems=(401, 403, 404),
)
async def post_ticket(request: Request) -> TicketOut:
    principal, seat, appointment = await _seat(request, "consult.ticket")
    settings = request.app.state.settings
    now = clock(request)
    window = rooms.join_window(
        appointment.starts_at,
        now,
        before=timedelta(minutes=settings.consult_join_before_minutes),
        after=timedelta(minutes=settings.consult_join_after_minutes),
    )
    state = await consults.room_state(seat.appointment_id)
    if not window.allowed and (state is None or rooms.window_applies(state, seat.participant)):
        raise Problem(
            FORBIDDEN,
            Text(window.message_ja, window.message_en),
            extensions={"opens_at": window.opens_at.isoformat()},
        )
    try:
        servers = await request.app.state.turn.credentials(seat.participant.replace(":", "-"), now)
    except TurnUnavailable:
        servers = []  # a direct connection may still work; the page says so if it does not
    await record(
        request,
        principal,
        "consult.ticket",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
    )
    return TicketOut(
        token=consults.make_ticket(settings.secret_key.reveal(), seat),
        participant=seat.participant,
        role=seat.role,
        websocket=f"/consults/{seat.appointment_id}/ws",
        ice_servers=[IceServerOut(**server.as_rtc_ice_server()) for server in servers],
        starts_at=appointment.starts_at,
        opens_at=window.opens_at,
        closes_at=window.closes_at,
    )


# --- the pre-call check ---------------------------------------------------------------------------


class PrecallIn(BaseModel):
    sdp: str = Field(min_length=10, max_length=100_000, description="The browser's SDP offer")


class PrecallStarted(BaseModel):
    check: str = Field(description="Ask GET …/precall/{check} for the outcome (about 10 s)")
    sdp: str = Field(description="The server peer's SDP answer (every candidate included)")


class AdviceOut(BaseModel):
    code: str
    ja: str
    en: str


class PrecallOut(BaseModel):
    status: str = Field(description="running or done")
    level: str | None = Field(None, description="good, fair, too_weak_for_video, no_connection")
    advice: list[AdviceOut] = []
    figures: dict[str, Any] = {}


async def _finish(session: PrecallSession, check_id: str) -> None:
    """Wait for the figures, grade them, store the outcome; the session always closes."""
    try:
        result = await session.result(timeout=30)
        graded = verdict(result)
        await PrecallCheck.filter(id=check_id).update(
            status="done",
            level=graded.level.value,
            figures=dataclasses.asdict(result),
            advice=[{"code": a.code, "ja": a.ja, "en": a.en} for a in graded.advice],
            finished_at=datetime.now(UTC),
        )
    finally:
        await session.close()


@api.endpoint(
    "POST",
    "/consults/{appointment_id}/precall",
    summary="Start a pre-call check: the server's peer answers and echoes camera and microphone",
    body=PrecallIn,
    response=PrecallStarted,
    status_code=201,
    tags=("consults",),
    problems=(401, 404, 422, 503),
)
async def post_precall(request: Request, body: PrecallIn) -> PrecallStarted:
    principal, seat, _ = await _seat(request)
    service: PrecallService = request.app.state.precall
    try:
        session = service.open()
    except PrecallBusy:
        raise Problem(
            UNAVAILABLE,
            Text(
                "接続テストが混み合っています。少し待ってからもう一度お試しください",
                "The connection test is busy. Please try again in a moment.",
            ),
        ) from None
    try:
        answer = await session.answer(body.sdp)
    except InvalidOffer:
        await session.close()
        raise Problem(
            VALIDATION,
            Text("カメラやマイクの情報を読み取れませんでした", "The offer could not be read"),
        ) from None
    check = await PrecallCheck.create(
        appointment_id=seat.appointment_id,
        participant=seat.participant,
        created_at=datetime.now(UTC),
    )
    tasks: set[asyncio.Task[None]] = request.app.state.precall_tasks
    task = asyncio.create_task(_finish(session, str(check.id)))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    await record(
        request,
        principal,
        "consult.precall",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
    )
    return PrecallStarted(check=str(check.id), sdp=answer)


@api.endpoint(
    "GET",
    "/consults/{appointment_id}/precall/{check_id}",
    summary="The outcome of a pre-call check, in plain words (Japanese and English)",
    response=PrecallOut,
    tags=("consults",),
    problems=(401, 404),
)
async def get_precall(request: Request) -> PrecallOut:
    _, seat, _ = await _seat(request)
    key = booking.parse_id(str(request.path_params["check_id"]))
    check = (
        await PrecallCheck.get_or_none(
            id=key, appointment_id=seat.appointment_id, participant=seat.participant
        )
        if key
        else None
    )
    if check is None:
        raise Problem(NOT_FOUND)
    return PrecallOut(
        status=check.status,
        level=check.level,
        advice=[AdviceOut(**a) for a in check.advice],
        figures=check.figures,
    )


# --- the identity check ---------------------------------------------------------------------------


class IdentityIn(BaseModel):
    document: IdentityDocument
    result: IdentityResult
    note: str = Field("", max_length=200)


class IdentityOut(BaseModel):
    document: IdentityDocument
    result: IdentityResult
    checked_at: datetime


@api.endpoint(
    "POST",
    "/consults/{appointment_id}/identity",
    summary="The doctor records the patient's identity check (photo ID against the face)",
    body=IdentityIn,
    response=IdentityOut,
    status_code=201,
    tags=("consults",),
    problems=(401, 403, 404, 422),
)
async def post_identity(request: Request, body: IdentityIn) -> IdentityOut:
    principal, seat, _ = await _seat(request)
    if seat.role != "doctor":
        raise Problem(
            FORBIDDEN,
            Text("本人確認は医師が記録します", "The doctor records the identity check"),
        )
    check = await IdentityCheck.create(
        appointment_id=seat.appointment_id,
        clinic_id=seat.clinic_id,
        staff_id=principal.id,
        document=body.document,
        result=body.result,
        note=body.note,
        checked_at=clock(request),
    )
    await record(
        request,
        principal,
        "consult.identity_check",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
        detail={"document": body.document.value, "result": body.result.value},
    )
    return IdentityOut(document=check.document, result=check.result, checked_at=check.checked_at)


# --- chat history ---------------------------------------------------------------------------------


class ChatLineOut(BaseModel):
    sender: str
    mine: bool
    text: str
    at: datetime


class ChatHistory(BaseModel):
    lines: list[ChatLineOut]


@api.endpoint(
    "GET",
    "/consults/{appointment_id}/chat",
    summary="The consult's chat so far (for a page that rejoined); a waiting patient gets none",
    response=ChatHistory,
    tags=("consults",),
    problems=(401, 404),
)
async def get_chat(request: Request) -> ChatHistory:
    principal, seat, _ = await _seat(request, "consult.chat.read")
    state = await consults.room_state(seat.appointment_id)
    me = state.participant(seat.participant) if state else None
    if seat.role == "patient" and (me is None or me.status not in rooms.IN_CONSULT):
        return ChatHistory(lines=[])  # chat opens once the doctor lets the patient in
    lines = await ConsultChatLine.filter(appointment_id=seat.appointment_id).order_by("sent_at")
    await record(
        request,
        principal,
        "consult.chat.read",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
        detail={"lines": len(lines)},
    )
    return ChatHistory(
        lines=[
            ChatLineOut(
                sender=line.sender,
                mine=line.sender == seat.participant,
                text=line.body,
                at=line.sent_at,
            )
            for line in lines
        ]
    )


# --- consented recording --------------------------------------------------------------------------


class RecordingIn(BaseModel):
    sdp: str = Field(
        min_length=10, max_length=100_000, description="The browser's send-only SDP offer"
    )
    segment: int = Field(ge=1, le=100_000, description="The segment the room announced as on")


class RecordingStarted(BaseModel):
    recording: str = Field(description="The recording's id (the clinic sees it afterwards)")
    sdp: str = Field(description="The recorder's SDP answer (every candidate included)")


NOT_RECORDING: Final = Text(
    "録画は行われていません。通話中の全員が同意すると録画が始まります",
    "The consult is not being recorded: recording starts once everyone in the call agrees.",
)


@api.endpoint(
    "POST",
    "/consults/{appointment_id}/recording",
    summary="Send one's camera and microphone to the recorder, once everyone has consented",
    body=RecordingIn,
    response=RecordingStarted,
    status_code=201,
    tags=("consults",),
    problems=(401, 404, 409, 422, 503),
)
async def post_recording(request: Request, body: RecordingIn) -> RecordingStarted:
    principal, seat, _ = await _seat(request, "consult.recording.start")
    recordings: Recordings = request.app.state.recordings
    try:
        row, answer = await recordings.start(seat, body.segment, body.sdp)
    except NotRecording:
        raise Problem(CONFLICT, NOT_RECORDING) from None
    except RecorderBusy:
        raise Problem(
            UNAVAILABLE,
            Text(
                "録画の受付が混み合っています。少し待ってからもう一度お試しください",
                "The recorder is busy. Please try again in a moment.",
            ),
        ) from None
    except RecordingOfferInvalid:
        raise Problem(
            VALIDATION,
            Text("カメラやマイクの情報を読み取れませんでした", "The offer could not be read"),
        ) from None
    await record(
        request,
        principal,
        "consult.recording.start",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
        detail={"segment": body.segment, "recording": str(row.id)},
    )
    return RecordingStarted(recording=str(row.id), sdp=answer)
