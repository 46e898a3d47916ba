"""Booking and the questionnaire meet here: a menu's questionnaire must be answered before the
booking is confirmed, and answers that rule out an online visit stop an online booking.

(The booking package knows nothing of questionnaires; the portal, which wires both, decides.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from booking import service as booking
from booking.models import Appointment, AppointmentStatus, Menu, VisitMode
from interview_forms import responses
from interview_forms.models import FormResponse, QuestionnaireVersion, ResponseStatus
from patient_portal.auth.policy import Resource


async def questionnaire_needed(appointment: Appointment) -> QuestionnaireVersion | None:
    """The questionnaire the appointment's menu asks for (its published version), if any."""
    menu: Menu = await appointment.menu
    if not menu.questionnaire_id:
        return None
    clinic_id = str(appointment.clinic_id)  # type: ignore[attr-defined]
    existing = await responses.for_appointment(str(appointment.id))
    if existing is not None:
        return existing.questionnaire
    return await responses.published_version(clinic_id, menu.questionnaire_id)


def online_blocked(menu: Menu, response: FormResponse | None) -> list[dict[str, Any]]:
    """Outcomes that rule this appointment out: only for a menu that is online only."""
    if response is None or menu.mode is not VisitMode.ONLINE:
        return []
    return responses.blocking_outcomes(response)


async def begin(appointment: Appointment, patient_id: str, now: datetime) -> FormResponse | None:
    """Start (or resume) the appointment's questionnaire for ``patient_id``; None if it has none.

    While the answers are still a draft, choosing another family member moves the draft to them.
    """
    version = await questionnaire_needed(appointment)
    if version is None:
        return None
    response = await responses.start_or_resume(
        version,
        clinic_id=str(appointment.clinic_id),  # type: ignore[attr-defined]
        account_id=str(appointment.account_id),
        patient_id=patient_id,
        appointment_id=str(appointment.id),
        now=now,
    )
    if response.status is ResponseStatus.IN_PROGRESS and str(response.patient_id) != patient_id:
        response.patient_id = patient_id  # type: ignore[assignment]
        await response.save(update_fields=["patient_id"])
    return response


async def answered(appointment: Appointment, patient_id: str) -> FormResponse | bool | None:
    """True when no questionnaire is asked for; the completed response when it was answered for
    ``patient_id``; None when it still has to be answered."""
    response = await responses.for_appointment(str(appointment.id))
    if response is None:
        return True if await questionnaire_needed(appointment) is None else None
    if response.status is not ResponseStatus.COMPLETED or str(response.patient_id) != patient_id:
        return None
    return response


def response_resource(appointment: Appointment, response: FormResponse) -> Resource:
    """The answers as the policy and the audit log see them."""
    return Resource(
        "form_response",
        str(response.id),
        clinic_ids=frozenset({str(appointment.clinic_id)}),  # type: ignore[attr-defined]
        patient_id=str(response.patient_id),
        account_id=str(appointment.account_id),
    )


async def release_if_ruled_out(
    appointment: Appointment, response: FormResponse, now: datetime
) -> tuple[bool, bool]:
    """After the answers are sent: (they rule out this online visit, its hold was let go)."""
    blocked = bool(online_blocked(await appointment.menu, response))
    if not blocked or appointment.status is not AppointmentStatus.HELD:
        return blocked, False
    await booking.cancel(appointment, now=now)
    return True, True


async def answered_by(appointment: Appointment) -> str | None:
    """The patient whose completed answers the appointment has, if any."""
    response = await responses.for_appointment(str(appointment.id))
    if response is None or response.status is not ResponseStatus.COMPLETED:
        return None
    return str(response.patient_id)
