"""Tortoise models of interview_forms: questionnaire versions, responses and attachments.

A questionnaire is known to menus by ``key`` (``Menu.questionnaire_id``); each key has numbered
versions. A published version never changes: editing makes a new draft, and every response
points at the exact version it answered. Answers, the FHIR QuestionnaireResponse, the summary
and attachments are patient data and are encrypted at rest (:mod:`interview_forms.sealed`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from interview_forms.sealed import SealedBytesField, SealedJSONField


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class QuestionnaireVersion(Model):
    """One version of a clinic's questionnaire (FHIR R4 Questionnaire JSON in ``body``)."""

    id = fields.UUIDField(primary_key=True)
    clinic_id = fields.UUIDField(db_index=True)
    key = fields.CharField(max_length=64)
    version = fields.IntField()
    status = fields.CharEnumField(VersionStatus, max_length=10, default=VersionStatus.DRAFT)
    title = fields.CharField(max_length=200)
    body: fields.JSONField[dict[str, Any]] = fields.JSONField()
    # Test cases the clinic attached: [{"name", "answers", "expect": {...}}], run on every save.
    tests: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    created_by = fields.UUIDField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "forms_questionnaire_version"
        unique_together = (("clinic_id", "key", "version"),)


class ResponseStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # a draft the patient is still answering
    COMPLETED = "completed"


class FormResponse(Model):
    """A patient's answers to one questionnaire version, usually for one appointment."""

    id = fields.UUIDField(primary_key=True)
    clinic_id = fields.UUIDField(db_index=True)
    questionnaire: fields.ForeignKeyRelation[QuestionnaireVersion] = fields.ForeignKeyField(
        "interview_forms.QuestionnaireVersion", related_name="responses", on_delete=fields.RESTRICT
    )
    account_id = fields.UUIDField(db_index=True)
    patient_id = fields.UUIDField(db_index=True)
    appointment_id = fields.UUIDField(null=True, db_index=True)
    status = fields.CharEnumField(ResponseStatus, max_length=12, default=ResponseStatus.IN_PROGRESS)
    section = fields.IntField(default=0)  # where the patient is (one section per screen)
    answers: Any = SealedJSONField()  # {linkId path: [raw values]} as the patient left them
    response: Any = SealedJSONField(null=True)  # the FHIR R4 QuestionnaireResponse, once completed
    structured: Any = SealedJSONField(null=True)  # flat copy (path → values) for the doctor's view
    outcomes: Any = SealedJSONField(null=True)  # routing outcomes that fired (codes, messages)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "forms_response"


class FormAttachment(Model):
    """An image a patient attached to an answer (a photo of a rash, the お薬手帳)."""

    id = fields.UUIDField(primary_key=True)
    form_response: fields.ForeignKeyRelation[FormResponse] = fields.ForeignKeyField(
        "interview_forms.FormResponse", related_name="attachments", on_delete=fields.CASCADE
    )
    link_id = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=40)
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64)
    data: Any = SealedBytesField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "forms_attachment"
