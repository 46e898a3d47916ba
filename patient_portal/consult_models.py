"""What an online consult leaves behind in the portal: chat lines (encrypted) and the doctor's
identity check (MHLW: the doctor confirms the patient is who they say, from a photo ID), and the
photo ID the patient registered for it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from interview_forms.sealed import SealedBytesField
from patient_portal.accounts.models import Patient
from patient_portal.crypto.fields import EncryptedTextField


class ConsultChatLine(Model):
    """One chat line of a consult, stored with the visit (the text encrypted at rest)."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(db_index=True)
    clinic_id = fields.UUIDField()
    sender = fields.CharField(max_length=64)  # the room's participant id (role:record id)
    message_id = fields.CharField(max_length=64, null=True)
    body = EncryptedTextField()
    sent_at = fields.DatetimeField()

    class Meta:
        table = "portal_consult_chat"


class IdentityDocument(StrEnum):
    MY_NUMBER_CARD = "my_number_card"  # マイナンバーカード
    DRIVERS_LICENSE = "drivers_license"  # 運転免許証
    PASSPORT = "passport"
    RESIDENCE_CARD = "residence_card"  # 在留カード
    INSURANCE_CARD = "insurance_card"  # 健康保険証 (with a second document)
    OTHER = "other"


class IdentityResult(StrEnum):
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"


class IdentityCheck(Model):
    """The identity check a doctor made in a consult: which document, and the result."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(db_index=True)
    clinic_id = fields.UUIDField()
    staff_id = fields.UUIDField()
    document = fields.CharEnumField(IdentityDocument, max_length=20)
    result = fields.CharEnumField(IdentityResult, max_length=16)
    note = EncryptedTextField(default="")
    checked_at = fields.DatetimeField()

    class Meta:
        table = "portal_identity_check"


class VisitStatus(StrEnum):
    READY = "ready"  # waiting for the clinic bridge to carry it into the karte
    SENT = "sent"


class Visit(Model):
    """The record an ended online consult leaves for the karte (what the clinic bridge sends)."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(unique=True)
    clinic_id = fields.UUIDField(db_index=True)
    patient_id = fields.UUIDField(null=True)
    practitioner_id = fields.UUIDField()
    ended_by = fields.CharField(max_length=64)  # the room's participant id of the doctor
    ended_at = fields.DatetimeField()
    identity_check: fields.ForeignKeyNullableRelation[IdentityCheck] = fields.ForeignKeyField(
        "portal.IdentityCheck", related_name="visits", null=True, on_delete=fields.SET_NULL
    )
    questionnaire_response_id = fields.UUIDField(null=True)
    chat_lines = fields.IntField(default=0)
    status = fields.CharEnumField(VisitStatus, max_length=8, default=VisitStatus.READY)

    class Meta:
        table = "portal_visit"


class PhotoIdDocument(StrEnum):
    """The documents a patient may register a photo of (their faces are on them; a health
    insurance card has none, so it is not one)."""

    MY_NUMBER_CARD = "my_number_card"  # マイナンバーカード
    DRIVERS_LICENSE = "drivers_license"  # 運転免許証
    PASSPORT = "passport"
    RESIDENCE_CARD = "residence_card"  # 在留カード
    OTHER = "other"


class IdentityPhoto(Model):
    """The registered photo ID of a patient (one each), shown to them and to their consult doctor.

    MHLW: the doctor compares the face on camera with the registered photo ID. The account that
    holds the patient's record registers, replaces and deletes it; a consult room's upload
    replaces it too. ``document`` is None only for a photo sent from a consult room before the
    kind was asked (migration 0006).
    """

    id = fields.UUIDField(primary_key=True)
    patient_id = fields.UUIDField(unique=True)
    document = fields.CharEnumField(PhotoIdDocument, max_length=20, null=True)
    content_type = fields.CharField(max_length=40)
    data: Any = SealedBytesField()
    uploaded_at = fields.DatetimeField()

    class Meta:
        # The table of the per-consult photos it replaced: the sealed photos stay readable,
        # since their encryption context is ``table.column``.
        table = "portal_identity_photo"


async def register_identity_photo(
    patient_id: str,
    document: PhotoIdDocument,
    content_type: str,
    data: bytes,
    now: datetime,
) -> bool:
    """Make ``data`` the patient's registered photo ID; True if it replaced one. The old photo
    is deleted in the same transaction (nothing of it is kept). Uploads for one patient take
    turns on a lock of the patient's record, so uploads at once leave exactly one photo."""
    async with in_transaction():
        # FOR UPDATE on PostgreSQL; SQLite runs one transaction at a time anyway.
        # (A values_list() query would drop the FOR UPDATE.)
        await Patient.filter(id=patient_id).select_for_update().only("id")
        replaced = await IdentityPhoto.filter(patient_id=patient_id).delete()
        await IdentityPhoto.create(
            patient_id=patient_id,
            document=document,
            content_type=content_type,
            data=data,
            uploaded_at=now,
        )
    return replaced > 0


async def delete_identity_photo(patient_id: str) -> bool:
    """Delete the patient's registered photo ID; False if there was none."""
    return await IdentityPhoto.filter(patient_id=patient_id).delete() > 0
