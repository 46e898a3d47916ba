"""Patient records: read and change them, for the account holder or their clinic's staff.

Authorisation happens before these are called (the policy layer); these functions only load
and store, and say which clinics a patient belongs to so the policy can decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from patient_portal.accounts.models import (
    ClinicRegistration,
    Patient,
    PatientAccount,
    Relationship,
    Sex,
)


@dataclass(frozen=True, slots=True)
class PatientView:
    """What pages and the API show of a patient (a plain value, never an ORM row)."""

    id: str
    relationship: Relationship
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: Sex
    postal_code: str | None
    email: str | None

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def full_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}"


def view_of(patient: Patient) -> PatientView:
    return PatientView(
        id=str(patient.id),
        relationship=patient.relationship,
        family_name=patient.family_name,
        given_name=patient.given_name,
        family_name_kana=patient.family_name_kana,
        given_name_kana=patient.given_name_kana,
        birth_date=cast(date, patient.birth_date),  # an EncryptedDateField gives a date
        sex=patient.sex,
        postal_code=patient.postal_code,
        email=patient.email,
    )


async def patients_of_account(account_id: str) -> list[PatientView]:
    rows = await Patient.filter(account_id=account_id).order_by("created_at")
    return [view_of(row) for row in rows]


def parse_id(value: str) -> uuid.UUID | None:
    """A record id from a URL, or None when it is not one (answered like a missing record)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def find_patient(patient_id: str) -> Patient | None:
    key = parse_id(patient_id)
    return await Patient.get_or_none(id=key) if key else None


async def find_patients(patient_ids: Iterable[str]) -> dict[str, Patient]:
    """Id → patient for those of ``patient_ids`` that exist, in one query (ids that are not
    record ids, or of nobody, are left out)."""
    keys = {key for key in map(parse_id, patient_ids) if key is not None}
    if not keys:
        return {}
    return {str(row.id): row for row in await Patient.filter(id__in=keys)}


async def clinics_of(patient_id: str) -> frozenset[str]:
    key = parse_id(patient_id)
    if key is None:
        return frozenset()
    ids = await ClinicRegistration.filter(patient_id=key).values_list("clinic_id", flat=True)
    return frozenset(str(i) for i in ids)


async def add_patient(
    account_id: str, relationship: Relationship, fields: dict[str, object]
) -> PatientView:
    account = await PatientAccount.get(id=account_id)
    values: dict[str, Any] = dict(fields)
    patient = await Patient.create(account=account, relationship=relationship, **values)
    return view_of(patient)


async def update_patient(patient: Patient, fields: dict[str, object]) -> PatientView:
    for name, value in fields.items():
        setattr(patient, name, value)
    await patient.save()
    return view_of(patient)


async def clinic_patients(clinic_id: str) -> list[tuple[str, PatientView]]:
    """(patient number, patient) for every patient registered at the clinic."""
    key = parse_id(clinic_id)
    if key is None:
        return []
    rows = (
        await ClinicRegistration.filter(clinic_id=key)
        .order_by("patient_number")
        .prefetch_related("patient")
    )
    return [(row.patient_number, view_of(row.patient)) for row in rows]
