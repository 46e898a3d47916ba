"""Seeds N online appointments starting in five minutes, each with its patient and doctor, for
``bench/video_signaling.py`` (run in its own process).

Usage: ``python -m tests.support.consult_bench_seed N`` with TSUNAGU_DATABASE_URL and
TSUNAGU_DATA_DIR set. Prints JSON: [{"appointment_id", "clinic_id", "patient", "doctor"}, ...]
where patient and doctor are the participant ids the room knows.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta

from booking.models import Clinic, VisitMode
from patient_portal.accounts.models import StaffRole
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.jobs import utc_now
from patient_portal.settings import load_settings
from tests.support.booking import book, make_menu
from tests.support.identity import make_clinic, make_patient, make_staff


async def seed(rooms: int) -> list[dict[str, str]]:
    settings = load_settings(os.environ)
    seats = []
    with use_keyring(keyring_for(settings.key_file, production=False)):
        async with database(settings, global_fallback=False):
            clinic: Clinic = await make_clinic("bench")
            menu, practitioner = await make_menu(clinic, mode=VisitMode.ONLINE, capacity=50)
            doctor = await make_staff(clinic, StaffRole.DOCTOR)
            now = utc_now()
            for n in range(rooms):
                patient = await make_patient(f"+8190{40000000 + n:08d}", clinic)
                start = now + timedelta(minutes=5)
                appointment = await book(clinic, menu, practitioner, patient, start, now=now)
                seats.append(
                    {
                        "appointment_id": str(appointment.id),
                        "clinic_id": str(clinic.id),
                        "patient": f"patient:{patient.id}",
                        "doctor": f"staff:{doctor.id}",
                    }
                )
    return seats


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(int(sys.argv[1])))))
