"""Patients' answers: drafts saved as they go, the server's check on sending, photos.

The service layer of the patient's questionnaire. A response belongs to one questionnaire
*version* (the exact one answered) and usually to one appointment; answers are saved as the patient
moves from section to section, so they can stop and resume on another device. Sending runs the
engine (:func:`interview_forms.engine.submit`) — the server is the authority — and stores the FHIR
QuestionnaireResponse, a structured copy and the outcomes that fired, all encrypted at rest.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from PIL import Image, UnidentifiedImageError
from tortoise.transactions import in_transaction

from .definition import Questionnaire, from_fhir
from .engine import SubmitResult, submit
from .models import (
    FormAttachment,
    FormResponse,
    QuestionnaireVersion,
    ResponseStatus,
    VersionStatus,
)

MAX_ATTACHMENT_BYTES: Final = 8 * 1024 * 1024
MAX_ATTACHMENT_PIXELS: Final = 40_000_000
IMAGE_TYPES: Final = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ATTACHMENT_URL: Final = "attachment:"  # answers refer to stored photos as attachment:<id>


class AttachmentRefused(ValueError):
    """An upload that is not a photo we keep; the messages say what to do."""

    status = 422

    def __init__(self, reason: str, message_ja: str, message_en: str) -> None:
        super().__init__(message_en)
        self.reason = reason
        self.message_ja = message_ja
        self.message_en = message_en


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def published_version(clinic_id: str, key: str) -> QuestionnaireVersion | None:
    """The clinic's published version of the questionnaire ``key`` (what new answers use)."""
    return (
        await QuestionnaireVersion.filter(
            clinic_id=clinic_id, key=key, status=VersionStatus.PUBLISHED
        )
        .order_by("-version")
        .first()
    )


def definition_of(version: QuestionnaireVersion) -> Questionnaire:
    return from_fhir(version.body)


async def for_appointment(appointment_id: str) -> FormResponse | None:
    """The newest response given for an appointment."""
    key = parse_id(appointment_id)
    if key is None:
        return None
    return (
        await FormResponse.filter(appointment_id=key)
        .order_by("-created_at")
        .prefetch_related("questionnaire")
        .first()
    )


async def start_or_resume(
    version: QuestionnaireVersion,
    *,
    clinic_id: str,
    account_id: str,
    patient_id: str,
    appointment_id: str,
    now: datetime,
) -> FormResponse:
    """The appointment's response for this patient: the one begun before, or a new draft."""
    existing = await FormResponse.filter(
        appointment_id=appointment_id, patient_id=patient_id
    ).first()
    if existing is not None:
        await existing.fetch_related("questionnaire")
        return existing
    return await FormResponse.create(
        clinic_id=clinic_id,
        questionnaire=version,
        account_id=account_id,
        patient_id=patient_id,
        appointment_id=appointment_id,
        answers={},
        created_at=now,
        updated_at=now,
    )


async def save_draft(
    response: FormResponse, answers: dict[str, Any], section: int, *, now: datetime
) -> None:
    """Keep the answers as they are (valid or not) and where the patient is."""
    response.answers = answers
    response.section = section
    response.updated_at = now
    await response.save(update_fields=["answers", "section", "updated_at"])


async def send(
    response: FormResponse, questionnaire: Questionnaire, answers: dict[str, Any], *, now: datetime
) -> SubmitResult:
    """The patient pressed "send": check everything; on success store the completed response.

    Errors leave the draft as it was (with these answers saved) and the status in progress.
    """
    result = submit(questionnaire, answers, complete=True, authored=now)
    async with in_transaction():
        response.answers = answers
        response.updated_at = now
        if result.ok:
            response.status = ResponseStatus.COMPLETED
            response.response = result.response
            response.structured = result.structured
            response.outcomes = [
                {
                    "id": o.id,
                    "action": o.action,
                    "message_ja": o.message_ja,
                    "message_en": o.message_en,
                    "menu": o.menu,
                }
                for o in result.outcomes
            ]
            response.completed_at = now
        await response.save()
    return result


def blocking_outcomes(response: FormResponse) -> list[dict[str, Any]]:
    """The outcomes of a completed response that forbid an online visit."""
    from .definition import OutcomeAction

    outcomes = response.outcomes if isinstance(response.outcomes, list) else []
    return [o for o in outcomes if o.get("action") in OutcomeAction.BLOCKING_ONLINE]


@dataclass(frozen=True, slots=True)
class CheckedImage:
    content_type: str
    data: bytes
    sha256: str


def check_image(data: bytes) -> CheckedImage:
    """A JPEG, PNG or WebP photo, recognised by decoding its content (never by its name)."""
    if not data:
        raise AttachmentRefused(
            "empty", "ファイルが空です。写真を選び直してください", "The file is empty."
        )
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRefused(
            "too_large",
            "写真が大きすぎます(8MBまで)。小さくして送ってください",
            "The photo is too large (8 MB at most). Please send a smaller one.",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            width, height = image.size
            if width * height > MAX_ATTACHMENT_PIXELS:
                raise AttachmentRefused(
                    "too_many_pixels",
                    "写真の画素数が多すぎます。小さくして送ってください",
                    "The photo has too many pixels. Please send a smaller one.",
                )
            image.verify()
    except AttachmentRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        kind = ""
    if kind not in IMAGE_TYPES:
        raise AttachmentRefused(
            "not_an_image",
            "写真(JPEG・PNG・WebP)だけを送れます",
            "Only photos (JPEG, PNG or WebP) can be sent.",
        )
    return CheckedImage(IMAGE_TYPES[kind], data, hashlib.sha256(data).hexdigest())


async def add_attachment(
    response: FormResponse, link_id: str, data: bytes, *, title: str, now: datetime
) -> dict[str, Any]:
    """Store a checked photo for ``link_id``; returns the FHIR Attachment value to answer with."""
    image = check_image(data)
    stored = await FormAttachment.create(
        form_response=response,
        link_id=link_id[:255],
        content_type=image.content_type,
        size=len(image.data),
        sha256=image.sha256,
        data=image.data,
        created_at=now,
    )
    return {
        "contentType": image.content_type,
        "url": f"{ATTACHMENT_URL}{stored.id}",
        "size": len(image.data),
        "title": title[:100] or "photo",
    }


async def attachment(attachment_id: str) -> FormAttachment | None:
    key = parse_id(attachment_id)
    if key is None:
        return None
    return await FormAttachment.get_or_none(id=key).prefetch_related("form_response")
