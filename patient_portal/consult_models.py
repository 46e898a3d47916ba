"""What an online consult leaves behind in the portal: chat lines (encrypted) and the doctor's
identity check (MHLW: the doctor confirms the patient is who they say, from a photo ID)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from interview_forms.sealed import SealedBytesField
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


class IdentityPhoto(Model):
    """A photo of the patient's ID document for one consult, shown to the clinic only."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(unique=True)
    clinic_id = fields.UUIDField()
    patient_id = fields.UUIDField()
    content_type = fields.CharField(max_length=40)
    data: Any = SealedBytesField()
    uploaded_at = fields.DatetimeField()

    class Meta:
        table = "portal_identity_photo"
