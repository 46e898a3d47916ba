"""People who use Tsunagu: patients (with their families) and clinic staff.

Identifying fields of patients are encrypted at rest (:mod:`patient_portal.crypto`); the phone
number is found through ``phone_index``, a keyed hash, never through the number itself.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from booking.models import Clinic
from patient_portal.crypto.fields import EncryptedDateField, EncryptedTextField


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


class Relationship(StrEnum):
    """How a patient record relates to the account holder (続柄)."""

    SELF = "self"
    CHILD = "child"
    PARENT = "parent"
    SPOUSE = "spouse"
    OTHER = "other"


class PatientAccount(Model):
    """The sign-in identity of a patient: a verified mobile number, optionally a password."""

    id = fields.UUIDField(primary_key=True)
    phone_index = fields.CharField(max_length=64, unique=True)
    phone = EncryptedTextField()
    password_hash = fields.CharField(max_length=200, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_sign_in_at = fields.DatetimeField(null=True)

    patients: fields.ReverseRelation[Patient]

    class Meta:
        table = "portal_patient_account"


class Patient(Model):
    """A patient record. An account holds the holder's own record and their family's."""

    id = fields.UUIDField(primary_key=True)
    account: fields.ForeignKeyRelation[PatientAccount] = fields.ForeignKeyField(
        "portal.PatientAccount", related_name="patients", on_delete=fields.RESTRICT
    )
    relationship = fields.CharEnumField(Relationship, max_length=8, default=Relationship.SELF)
    family_name = EncryptedTextField()
    given_name = EncryptedTextField()
    family_name_kana = EncryptedTextField()
    given_name_kana = EncryptedTextField()
    birth_date = EncryptedDateField()
    sex = fields.CharEnumField(Sex, max_length=8, default=Sex.UNKNOWN)
    postal_code = EncryptedTextField(null=True)
    email = EncryptedTextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "portal_patient"


class StaffMember(Model):
    """A person working at one clinic with one role (a platform operator has no clinic).

    Staff always sign in with a password and a second factor: ``totp_secret`` (encrypted) once
    enrolled. ``totp_last_step`` refuses a code that was already used.
    """

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyNullableRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="staff", null=True, on_delete=fields.RESTRICT
    )
    login_id = fields.CharField(max_length=120, unique=True)
    display_name = fields.CharField(max_length=120)
    display_name_kana = fields.CharField(max_length=120)
    role = fields.CharEnumField(StaffRole, max_length=24)
    is_active = fields.BooleanField(default=True)
    password_hash = fields.CharField(max_length=200, null=True)
    password_changed_at = fields.DatetimeField(null=True)
    totp_secret = EncryptedTextField(null=True)
    totp_enrolled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_sign_in_at = fields.DatetimeField(null=True)

    class Meta:
        table = "portal_staff_member"


class PasswordHistory(Model):
    """Every password hash an account has had, so that none is used again."""

    id = fields.UUIDField(primary_key=True)
    staff: fields.ForeignKeyNullableRelation[StaffMember] = fields.ForeignKeyField(
        "portal.StaffMember", related_name="password_history", null=True, on_delete=fields.CASCADE
    )
    patient_account: fields.ForeignKeyNullableRelation[PatientAccount] = fields.ForeignKeyField(
        "portal.PatientAccount",
        related_name="password_history",
        null=True,
        on_delete=fields.CASCADE,
    )
    password_hash = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "portal_password_history"


class RecoveryCode(Model):
    """A single-use second-factor recovery code, stored as a hash and shown to its owner once."""

    id = fields.UUIDField(primary_key=True)
    staff: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "portal.StaffMember", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64, unique=True)
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "portal_recovery_code"


class StaffInvitation(Model):
    """A single-use, expiring link a clinic admin sends to a new staff member."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="invitations", on_delete=fields.CASCADE
    )
    login_id = fields.CharField(max_length=120)
    display_name = fields.CharField(max_length=120)
    display_name_kana = fields.CharField(max_length=120)
    role = fields.CharEnumField(StaffRole, max_length=24)
    token_hash = fields.CharField(max_length=64, unique=True)
    invited_by: fields.ForeignKeyNullableRelation[StaffMember] = fields.ForeignKeyField(
        "portal.StaffMember", related_name="invitations_sent", null=True, on_delete=fields.SET_NULL
    )
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "portal_staff_invitation"


class ClinicRegistration(Model):
    """A patient registered at a clinic (診察券). Staff see a patient only through this link."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="registrations", on_delete=fields.RESTRICT
    )
    patient: fields.ForeignKeyRelation[Patient] = fields.ForeignKeyField(
        "portal.Patient", related_name="registrations", on_delete=fields.RESTRICT
    )
    patient_number = fields.CharField(max_length=20)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "portal_clinic_registration"
        unique_together = (("clinic", "patient"), ("clinic", "patient_number"))
