"""Seeding clinics, staff and patients for tests, through the real models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from booking.models import Clinic
from patient_portal.accounts.models import (
    ClinicRegistration,
    Patient,
    PatientAccount,
    Relationship,
    StaffMember,
    StaffRole,
)
from patient_portal.auth import passwords, totp
from patient_portal.crypto.keyring import current_keyring

STAFF_PASSWORD = "correct horse battery staple clinic"
_HASHES: dict[str, str] = {}


def _password_hash(password: str) -> str:
    """argon2 is slow on purpose; tests seed many staff with one password, so hash it once."""
    if password not in _HASHES:
        _HASHES[password] = passwords.hash_password(password)
    return _HASHES[password]


@dataclass(frozen=True)
class SeededStaff:
    id: str
    login_id: str
    password: str
    totp_secret: str
    clinic_id: str


async def make_clinic(slug: str | None = None) -> Clinic:
    slug = slug or f"clinic-{uuid.uuid4().hex[:8]}"
    return await Clinic.create(
        slug=slug,
        name=f"見本クリニック {slug}",
        name_kana="ミホンクリニック",
        postal_code="100-0000",
        address="東京都千代田区見本町1-1",
        phone="03-0000-0000",
    )


async def make_staff(
    clinic: Clinic | None, role: StaffRole = StaffRole.DOCTOR, *, enrolled: bool = True
) -> SeededStaff:
    login_id = f"{role.value}-{uuid.uuid4().hex[:6]}@example.invalid"
    secret = totp.new_secret()
    staff = await StaffMember.create(
        clinic=clinic,
        login_id=login_id,
        display_name="見本 職員",
        display_name_kana="ミホン ショクイン",
        role=role,
        password_hash=_password_hash(STAFF_PASSWORD),
        totp_secret=secret if enrolled else None,
    )
    return SeededStaff(
        str(staff.id), login_id, STAFF_PASSWORD, secret, str(clinic.id) if clinic else ""
    )


async def make_patient(phone: str, clinic: Clinic | None = None, **names: str) -> Patient:
    account, _ = await PatientAccount.get_or_create(
        phone_index=current_keyring().blind_index(phone, "phone"), defaults={"phone": phone}
    )
    patient = await Patient.create(
        account=account,
        relationship=Relationship.SELF,
        family_name=names.get("family_name", "見本"),
        given_name=names.get("given_name", "花子"),
        family_name_kana="ミホン",
        given_name_kana="ハナコ",
        birth_date=date(1980, 1, 2),
    )
    if clinic is not None:
        count = await ClinicRegistration.filter(clinic=clinic).count()
        await ClinicRegistration.create(
            clinic=clinic, patient=patient, patient_number=f"{count + 1:06d}"
        )
    return patient
