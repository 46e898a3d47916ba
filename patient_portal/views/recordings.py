"""The clinic's view of a consult's consented recordings: the list, the consent record, playback.

Only the clinic's clinical staff (doctor, nurse, clinic administrator) may see them; a patient,
a receptionist or another clinic's staff get 404 (403 for a role that may never) with nothing
revealed. Every look is audited: the list, and each recording played.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from booking import service as booking
from patient_portal import recordings
from patient_portal.accounts import service as accounts
from patient_portal.auth.policy import Action
from patient_portal.crypto.sealed_files import SealedFileError
from patient_portal.problems import Text
from patient_portal.templating import request_locale
from patient_portal.views.booking import clinician_appointment
from patient_portal.views.common import page, record
from video.models import ConsultRecording, RecordingConsent

NO_APPOINTMENT: Final = "00000000-0000-0000-0000-000000000000"  # nobody's, for a missing recording
PRIVATE: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
UNREADABLE: Final = (
    Text("録画を再生できません", "The recording cannot be played"),
    Text(
        "録画ファイルが見つからないか、壊れています。医療機関の管理者に連絡してください。",
        "The recording's file is missing or damaged. Please tell the clinic's administrator.",
    ),
)


async def recording_list(request: Request) -> Response:
    """``/staff/appointments/{id}/recordings``: each side of each segment, and who agreed when."""
    principal, appointment, resource = await clinician_appointment(request, Action.RECORDING_READ)
    rows = await ConsultRecording.filter(appointment_id=appointment.id).order_by(
        "segment", "started_at"
    )
    consents = await RecordingConsent.filter(appointment_id=appointment.id).order_by("decided_at")
    patient = (
        await accounts.find_patient(str(appointment.patient_id)) if appointment.patient_id else None
    )
    await record(request, principal, "recording.list", resource, detail={"recordings": len(rows)})
    return page(
        request,
        "recordings/list.html",
        {
            "appointment": appointment,
            "patient": accounts.view_of(patient) if patient else None,
            "recordings": rows,
            "consents": consents,
            "zone": ZoneInfo((await appointment.clinic).time_zone),
        },
    )


async def recording_file(request: Request) -> Response:
    """``/staff/recordings/{id}.webm``: the recording, decrypted as it is sent (never cached)."""
    key = booking.parse_id(str(request.path_params["recording_id"]))
    row = await ConsultRecording.get_or_none(id=key) if key else None
    appointment_id = str(row.appointment_id) if row else NO_APPOINTMENT  # refused with 404
    principal, _, resource = await clinician_appointment(
        request, Action.RECORDING_READ, appointment_id
    )
    assert row is not None  # noqa: S101 - no row, no appointment: refused above
    root = request.app.state.settings.recordings_path
    try:
        chunks = recordings.plaintext(root, row)
        first = next(chunks, b"")  # the header and first chunk are checked before answering
    except (SealedFileError, OSError):
        await record(request, principal, "recording.read", resource, detail={"unreadable": True})
        locale = request_locale(request)
        heading, message = (text.in_locale(locale) for text in UNREADABLE)
        context = {"status": 410, "heading": heading, "message": message}
        return page(request, "error.html", context, status=410)
    await record(request, principal, "recording.read", resource, detail={"recording": str(row.id)})

    def body() -> Iterator[bytes]:
        yield first
        try:
            yield from chunks
        except SealedFileError:
            return  # damage found midway: the player gets what was sound up to there

    return StreamingResponse(body(), media_type="video/webm", headers=PRIVATE)


routes: list[BaseRoute] = [
    Route("/staff/appointments/{appointment_id}/recordings", recording_list, methods=["GET"]),
    Route("/staff/recordings/{recording_id}.webm", recording_file, methods=["GET"]),
]
