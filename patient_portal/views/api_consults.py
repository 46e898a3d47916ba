"""``/api/v1/consults``: a ticket into an online appointment's consult room.

The ticket is what the signaling websocket's ``join`` frame presents (see patient_portal/consults.py
and video/PROTOCOL.md), with the participant's own short-lived TURN credentials.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from starlette.requests import Request

from booking import service as booking
from booking.models import Appointment
from patient_portal import consults
from patient_portal.api.v1 import api
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.policy import Resource
from patient_portal.problems import FORBIDDEN, NOT_FOUND, UNAUTHORIZED, Problem, Text
from patient_portal.views.booking import clock
from patient_portal.views.common import record
from video import room as rooms
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


@api.endpoint(
    "POST",
    "/consults/{appointment_id}/ticket",
    summary="A ticket into the consult room of an online appointment (patient or clinic staff)",
    response=TicketOut,
    tags=("consults",),
    problems=(401, 403, 404),
)
async def post_ticket(request: Request) -> TicketOut:
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
        await record(request, principal, "consult.ticket", Resource("appointment", appointment_id))
        raise Problem(NOT_FOUND)  # no hint that the room exists
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
