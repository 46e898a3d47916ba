"""The consult room's pages: the patient's (from "my appointments") and the clinic's.

The pages only draw the room; consult.js asks for a ticket, opens the signaling websocket and
runs the call (see patient_portal/consults.py and video/PROTOCOL.md).
"""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from booking import service as booking
from booking.models import Appointment
from patient_portal import consults
from patient_portal.accounts import service as accounts
from patient_portal.auth.policy import Principal, Resource
from patient_portal.consult_models import IdentityCheck
from patient_portal.problems import Text
from patient_portal.templating import request_locale
from patient_portal.views import id_photos
from patient_portal.views.common import page, record, redirect, require

_IDENTITY_LABELS: Final = {
    "confirmed": Text("本人確認済み", "identity confirmed"),
    "not_confirmed": Text("本人確認できず", "identity not confirmed"),
}
ROOM_PERMISSIONS: Final = (
    "camera=(self), microphone=(self), display-capture=(self), bluetooth=(), geolocation=(), "
    "payment=(), usb=(), serial=(), hid=()"
)


async def _appointment(request: Request, principal: Principal) -> tuple[Appointment, consults.Seat]:
    appointment_id = str(request.path_params["appointment_id"])
    key = booking.parse_id(appointment_id)
    appointment = (
        await Appointment.get_or_none(id=key).prefetch_related("menu", "clinic") if key else None
    )
    seat = consults.seat_for(principal, appointment, appointment.menu) if appointment else None
    if appointment is None or seat is None or appointment.status not in consults.LIVE:
        await record(request, principal, "consult.page", Resource("appointment", appointment_id))
        raise HTTPException(404)
    await record(
        request,
        principal,
        "consult.page",
        Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id})),
    )
    return appointment, seat


async def patient_room(request: Request) -> Response:
    principal = require(request, "patient")
    appointment, seat = await _appointment(request, principal)
    return await _room(request, appointment, seat)


async def staff_room(request: Request) -> Response:
    principal = require(request, "staff")
    appointment, seat = await _appointment(request, principal)
    return await _room(request, appointment, seat)


async def _room(
    request: Request,
    appointment: Appointment,
    seat: consults.Seat,
    *,
    photo_error: str = "",
    id_document: str = "",
    status: int = 200,
) -> Response:
    patient = None
    if seat.role != "patient" and appointment.patient_id:
        found = await accounts.find_patient(str(appointment.patient_id))
        patient = accounts.view_of(found) if found else None
    menu = appointment.menu
    identity = (
        await IdentityCheck.filter(appointment_id=appointment.id).order_by("-checked_at").first()
        if seat.role == "doctor"
        else None
    )
    response = page(
        request,
        "consults/room.html",
        {
            "appointment": appointment,
            "clinic": appointment.clinic,
            "zone": ZoneInfo(appointment.clinic.time_zone),
            "role": seat.role,
            "patient": patient,
            "identity": identity,
            # The patient's registered photo ID (for every consult, not only this one).
            "id_photo": (
                await id_photos.photo_of(str(appointment.patient_id))
                if appointment.patient_id
                else None
            ),
            "id_documents": id_photos.DOCUMENT_CHOICES,
            "id_document": id_document,
            "photo_error": photo_error,
            "identity_label": (
                _IDENTITY_LABELS[identity.result.value].in_locale(request_locale(request))
                if identity
                else ""
            ),
            "answers_url": (
                f"/staff/appointments/{appointment.id}/questionnaire"
                if seat.role != "patient" and menu.questionnaire_id
                else None
            ),
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    # The one kind of page that may open the camera and microphone (and share the screen).
    response.headers["Permissions-Policy"] = ROOM_PERMISSIONS
    return response


def _photo_resource(seat: consults.Seat) -> Resource:
    return Resource("appointment", seat.appointment_id, clinic_ids=frozenset({seat.clinic_id}))


async def upload_id_photo(request: Request) -> Response:
    """The patient sends a photo of their ID from the room: it becomes (or replaces) the photo ID
    registered with their record, which the doctor sees in this consult and in later ones."""
    principal = require(request, "patient")
    appointment, seat = await _appointment(request, principal)
    refused = await id_photos.take_upload(
        request,
        principal,
        str(appointment.patient_id),  # seat_for() seated only the appointment's own patient
        _photo_resource(seat),
        "consult.id_photo",
    )
    if refused is not None:
        return await _room(
            request,
            appointment,
            seat,
            photo_error=refused.message,
            id_document=refused.document,
            status=refused.status,
        )
    return redirect(f"/consults/{appointment.id}")


async def id_photo(request: Request) -> Response:
    """The registered photo ID of the appointment's patient: to that patient's account and to the
    clinic's staff seated in this consult room; anyone else gets 404."""
    kind = "staff" if request.url.path.startswith("/staff/") else "patient"
    principal = require(request, kind)
    appointment, seat = await _appointment(request, principal)
    response = (
        await id_photos.photo_response(str(appointment.patient_id))
        if appointment.patient_id
        else None
    )
    if response is None:
        raise HTTPException(404)
    await record(request, principal, "consult.id_photo.read", _photo_resource(seat))
    return response


routes: list[BaseRoute] = [
    Route("/consults/{appointment_id}/id-photo", upload_id_photo, methods=["POST"]),
    Route("/consults/{appointment_id}/id-photo", id_photo, methods=["GET"]),
    Route("/staff/consults/{appointment_id}/id-photo", id_photo, methods=["GET"]),
    Route("/consults/{appointment_id}", patient_room, methods=["GET"]),
    Route("/staff/consults/{appointment_id}", staff_room, methods=["GET"]),
]
