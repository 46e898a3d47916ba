"""Tortoise models for people who use Tsunagu: clinic staff and patients."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from booking.models import Clinic


class StaffRole(StrEnum):
    RECEPTIONIST = "receptionist"  # 受付
    NURSE = "nurse"  # 看護師
    DOCTOR = "doctor"  # 医師
    CLINIC_ADMIN = "clinic_admin"  # 院長・管理者
    PLATFORM_OPERATOR = "platform_operator"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class StaffMember(Model):
    """A person working at one clinic, with one role. ``login_id`` is what they sign in with."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="staff", on_delete=fields.RESTRICT
    )
    login_id = fields.CharField(max_length=120, unique=True)
    display_name = fields.CharField(max_length=120)
    display_name_kana = fields.CharField(max_length=120)
    role = fields.CharEnumField(StaffRole, max_length=24)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "portal_staff_member"


class Patient(Model):
    """A patient record. Family members are patients whose ``guardian`` is the account holder."""

    id = fields.UUIDField(primary_key=True)
    guardian: fields.ForeignKeyNullableRelation[Patient] = fields.ForeignKeyField(
        "portal.Patient", related_name="family", null=True, on_delete=fields.RESTRICT
    )
    family_name = fields.CharField(max_length=60)
    given_name = fields.CharField(max_length=60)
    family_name_kana = fields.CharField(max_length=60)
    given_name_kana = fields.CharField(max_length=60)
    birth_date = fields.DateField()
    sex = fields.CharEnumField(Sex, max_length=8, default=Sex.UNKNOWN)
    phone = fields.CharField(max_length=20, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "portal_patient"
