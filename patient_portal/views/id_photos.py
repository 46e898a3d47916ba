"""The patient's registered photo ID (本人確認書類の写真 — identity photo).

MHLW asks the doctor of an online consult to compare the patient's face with their registered
photo ID. The account that holds a patient's record (their own or a family member's) registers,
looks at, replaces and deletes it here; the consult room's upload replaces it too, and the doctor
seated in the patient's consult room sees it (see consult_pages). One photo per patient, checked
by decoding and sealed at rest; every read and change is audited, with no patient data in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from interview_forms.responses import (
    MAX_ATTACHMENT_BYTES,
    AttachmentRefused,
    CheckedImage,
    check_image,
)
from patient_portal.accounts import service as accounts
from patient_portal.accounts.service import PatientView
from patient_portal.audit.models import Outcome
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.consult_models import (
    IdentityPhoto,
    PhotoIdDocument,
    delete_identity_photo,
    register_identity_photo,
)
from patient_portal.i18n import N_
from patient_portal.templating import request_locale
from patient_portal.views.common import authorize, page, record, redirect, require
from patient_portal.views.form_attachments import PRIVATE

DOCUMENT_NAMES: Final = {
    PhotoIdDocument.MY_NUMBER_CARD: N_("My Number card"),
    PhotoIdDocument.DRIVERS_LICENSE: N_("Driver's licence"),
    PhotoIdDocument.PASSPORT: N_("Passport"),
    PhotoIdDocument.RESIDENCE_CARD: N_("Residence card"),
    PhotoIdDocument.OTHER: N_("Other"),
}
# (value, message id) for the forms' select, in the order above.
DOCUMENT_CHOICES: Final = tuple((kind.value, name) for kind, name in DOCUMENT_NAMES.items())
_DOCUMENT_VALUES: Final = frozenset(kind.value for kind in PhotoIdDocument)
NO_PHOTO: Final = N_("Choose a photo of the document to send.")
UNKNOWN_DOCUMENT: Final = N_("Choose which document the photo shows.")


@dataclass(frozen=True, slots=True)
class PhotoView:
    """What pages show of a registered photo ID (the photo itself is fetched on its own)."""

    document: str  # a PhotoIdDocument value; "" when the patient was never asked
    document_name: str  # its message id, for the template to translate; "" when unknown
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class PhotoUpload:
    document: PhotoIdDocument
    image: CheckedImage


class UploadRefused(ValueError):
    """An ID-photo form that stores nothing; ``message`` is in the request's language."""

    def __init__(self, reason: str, message: str, status: int = 422, *, document: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # a stable code for the audit trail (no patient data)
        self.message = message
        self.status = status
        self.document = document  # the kind chosen, when it was a valid one (to keep it chosen)


def _translate(request: Request, message_id: str) -> str:
    return str(request.app.state.catalogues.gettext(request_locale(request), message_id))


async def read_upload(request: Request) -> PhotoUpload:
    """The document kind and the decoded photo of an ID-photo form (fields ``document`` and
    ``photo``), or :class:`UploadRefused` saying what to do. Reads the form; writes nothing."""
    async with request.form(max_files=1, max_fields=10) as form:
        document = form.get("document")
        upload = form.get("photo")
        photo = upload if isinstance(upload, UploadFile) else None
        data = await photo.read(MAX_ATTACHMENT_BYTES + 1) if photo else b""
    if not isinstance(document, str) or document not in _DOCUMENT_VALUES:
        raise UploadRefused("unknown_document", _translate(request, UNKNOWN_DOCUMENT))
    if photo is None or (not photo.filename and not data):  # the form sent no file at all
        raise UploadRefused("no_photo", _translate(request, NO_PHOTO), document=document)
    try:
        image = check_image(data)
    except AttachmentRefused as refused:
        message = refused.message_ja if request_locale(request) == "ja" else refused.message_en
        raise UploadRefused(refused.reason, message, refused.status, document=document) from None
    return PhotoUpload(PhotoIdDocument(document), image)


async def photo_of(patient_id: str) -> PhotoView | None:
    """The patient's registered photo ID as pages show it, or None."""
    # Not the photo: a page needs only what it is and when it came (no decrypting).
    found = (
        await IdentityPhoto.filter(patient_id=patient_id)
        .only("id", "document", "uploaded_at")
        .first()
    )
    if found is None:
        return None
    document = PhotoIdDocument(found.document) if found.document else None
    return PhotoView(
        document=document.value if document else "",
        document_name=DOCUMENT_NAMES[document] if document else "",
        uploaded_at=found.uploaded_at,
    )


async def photo_response(patient_id: str) -> Response | None:
    """The patient's registered photo ID as an uncacheable image, or None."""
    found = await IdentityPhoto.get_or_none(patient_id=patient_id)
    if found is None:
        return None
    return Response(found.data, media_type=found.content_type, headers=PRIVATE)


async def _patient(request: Request, action: Action) -> tuple[Principal, PatientView, Resource]:
    """The signed-in account's patient of the URL; anyone else's (or nobody's) is 404."""
    principal = require(request, "patient")
    patient_id = str(request.path_params["patient_id"])
    await authorize(request, principal, action, Resource("patient", patient_id=patient_id))
    found = await accounts.find_patient(patient_id)
    if found is None:
        raise HTTPException(404)
    patient = accounts.view_of(found)
    return principal, patient, Resource("patient", patient_id=patient.id)


async def _page(
    request: Request,
    patient: PatientView,
    *,
    error: str = "",
    document: str = "",
    status: int = 200,
) -> Response:
    photo = await photo_of(patient.id)
    response = page(
        request,
        "patient/id_photo.html",
        {
            "patient": patient,
            "photo": photo,
            "zone": ZoneInfo(request.app.state.settings.time_zone),
            "id_documents": DOCUMENT_CHOICES,
            "document": document or (photo.document if photo else ""),
            "error": error,
        },
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def id_photo_page(request: Request) -> Response:
    principal, patient, resource = await _patient(request, Action.PATIENT_READ)
    await record(request, principal, "patient.id_photo.page", resource)
    return await _page(request, patient)


async def id_photo_image(request: Request) -> Response:
    principal, patient, resource = await _patient(request, Action.PATIENT_READ)
    response = await photo_response(patient.id)
    if response is None:
        raise HTTPException(404)
    await record(request, principal, "patient.id_photo.read", resource)
    return response


async def take_upload(
    request: Request, principal: Principal, patient_id: str, resource: Resource, audited_as: str
) -> UploadRefused | None:
    """Read the form and make its photo the patient's registered one (replacing any), audited as
    ``<audited_as>.upload`` or ``.replace``; a refusal is audited too and returned to be shown."""
    try:
        upload = await read_upload(request)
    except UploadRefused as refused:
        detail = {"reason": refused.reason}
        await record(request, principal, f"{audited_as}.upload", resource, Outcome.FAILURE, detail)
        return refused
    replaced = await register_identity_photo(
        patient_id,
        upload.document,
        upload.image.content_type,
        upload.image.data,
        now=request.app.state.clock(),
    )
    await record(
        request, principal, f"{audited_as}.{'replace' if replaced else 'upload'}", resource
    )
    return None


async def id_photo_upload(request: Request) -> Response:
    """Register the photo, or replace the one there is (nothing of it is kept)."""
    principal, patient, resource = await _patient(request, Action.PATIENT_WRITE)
    refused = await take_upload(request, principal, patient.id, resource, "patient.id_photo")
    if refused is not None:
        return await _page(
            request,
            patient,
            error=refused.message,
            document=refused.document,
            status=refused.status,
        )
    return redirect(f"/account/patients/{patient.id}/id-photo")


async def id_photo_delete(request: Request) -> Response:
    principal, patient, resource = await _patient(request, Action.PATIENT_WRITE)
    deleted = await delete_identity_photo(patient.id)
    outcome = Outcome.SUCCESS if deleted else Outcome.FAILURE
    detail = {} if deleted else {"reason": "no_photo"}
    await record(request, principal, "patient.id_photo.delete", resource, outcome, detail)
    return redirect(f"/account/patients/{patient.id}/id-photo")


routes: list[BaseRoute] = [
    Route("/account/patients/{patient_id}/id-photo", id_photo_page, methods=["GET"]),
    Route("/account/patients/{patient_id}/id-photo", id_photo_upload, methods=["POST"]),
    Route("/account/patients/{patient_id}/id-photo/image", id_photo_image, methods=["GET"]),
    Route("/account/patients/{patient_id}/id-photo/delete", id_photo_delete, methods=["POST"]),
]
