"""Photos attached to questionnaire answers: served only to the patient's own account and to the
clinical staff of the clinic the answers were given to, never cached, every read audited."""

from __future__ import annotations

from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from interview_forms import responses
from interview_forms.models import FormAttachment, FormResponse
from patient_portal.auth.policy import Action, Resource
from patient_portal.views.common import authorize, record, require

PRIVATE: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _resource(found: FormAttachment | None, attachment_id: str) -> Resource:
    if found is None:
        return Resource("form_attachment", attachment_id)
    owner: FormResponse = found.form_response
    return Resource(
        "form_attachment",
        str(found.id),
        clinic_ids=frozenset({str(owner.clinic_id)}),
        patient_id=str(owner.patient_id),
        account_id=str(owner.account_id),
    )


def _photo(found: FormAttachment) -> Response:
    return Response(found.data, media_type=found.content_type, headers=PRIVATE)


def referenced(structured: Any) -> list[str]:
    """Ids of the photos a response's answers point to (``attachment:<id>``), in order."""
    found: list[str] = []
    for values in structured.values() if isinstance(structured, dict) else []:
        for value in values if isinstance(values, list) else []:
            url = value.get("url") if isinstance(value, dict) else None
            if isinstance(url, str) and url.startswith(responses.ATTACHMENT_URL):
                found.append(url.removeprefix(responses.ATTACHMENT_URL))
    return found


async def staff_photo(request: Request) -> Response:
    principal = require(request, "staff")
    clinic = frozenset({principal.clinic_id}) if principal.clinic_id else frozenset()
    # Roles first (a receptionist is told 403), then whose photo it is (anything else is 404).
    await authorize(
        request,
        principal,
        Action.FORM_RESPONSE_READ,
        Resource("form_attachment", clinic_ids=clinic),
    )
    attachment_id = str(request.path_params["attachment_id"])
    found = await responses.attachment(attachment_id)
    resource = _resource(found, attachment_id)
    await authorize(request, principal, Action.FORM_RESPONSE_READ, resource)
    if found is None:
        raise HTTPException(404)
    await record(request, principal, "form.attachment.read", resource)
    return _photo(found)


async def patient_photo(request: Request) -> Response:
    principal = require(request, "patient")
    attachment_id = str(request.path_params["attachment_id"])
    found = await responses.attachment(attachment_id)
    appointment_id = str(request.path_params["appointment_id"])
    if found is not None and str(found.form_response.appointment_id) != appointment_id:
        found = None  # not this appointment's: as if it did not exist
    resource = _resource(found, attachment_id)
    if found is not None and str(found.form_response.account_id) != principal.id:
        resource = Resource("form_attachment", attachment_id)  # another account's: 404 below
    await authorize(request, principal, Action.FORM_RESPONSE_READ, resource)
    if found is None:
        raise HTTPException(404)
    await record(request, principal, "form.attachment.read", resource)
    return _photo(found)


routes: list[BaseRoute] = [
    Route("/staff/attachments/{attachment_id}", staff_photo, methods=["GET"]),
    Route(
        "/appointments/{appointment_id}/questionnaire/attachments/{attachment_id}",
        patient_photo,
        methods=["GET"],
    ),
]
