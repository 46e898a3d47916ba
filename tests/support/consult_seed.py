"""Seeds an online appointment starting in five minutes and prints bearer tokens for its
patient and doctor (run in its own process, for tests with several server processes).

Usage: ``python -m tests.support.consult_seed`` with TSUNAGU_DATABASE_URL, TSUNAGU_DATA_DIR set.
Prints JSON: {"appointment_id", "patient_token", "doctor_token"}.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta

from booking.models import Clinic, VisitMode
from patient_portal.accounts.models import StaffRole
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.tokens import Tokens
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.jobs import utc_now
from patient_portal.settings import load_settings
from tests.support.booking import book, make_menu
from tests.support.identity import make_clinic, make_patient, make_staff


async def seed() -> dict[str, str]:
    settings = load_settings(os.environ)
    with use_keyring(keyring_for(settings.key_file, production=False)):
        async with database(settings, global_fallback=False):
            clinic: Clinic = await make_clinic("consult")
            menu, practitioner = await make_menu(clinic, mode=VisitMode.ONLINE)
            patient = await make_patient("+819030300001", clinic)
            doctor = await make_staff(clinic, StaffRole.DOCTOR)
            now = utc_now()
            start = now + timedelta(minutes=5)
            appointment = await book(clinic, menu, practitioner, patient, start, now=now)
            tokens = Tokens(utc_now)
            patient_pair = await tokens.issue(
                PrincipalKind.PATIENT,
                str(patient.account_id),  # type: ignore[attr-defined]
            )
            doctor_pair = await tokens.issue(PrincipalKind.STAFF, doctor.id)
            return {
                "appointment_id": str(appointment.id),
                "patient_token": patient_pair.access_token,
                "doctor_token": doctor_pair.access_token,
            }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed())))
