"""Seeds a clinic for the booking race test and prints bearer tokens (run in its own process).

Usage: ``python -m tests.support.race_seed N`` with TSUNAGU_DATABASE_URL, TSUNAGU_DATA_DIR set.
Prints JSON: {"menu_id", "practitioner_id", "tokens": [N access tokens]}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from booking.models import Clinic
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.tokens import Tokens
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.jobs import utc_now
from patient_portal.settings import load_settings
from tests.support.booking import make_menu
from tests.support.identity import make_patient


async def seed(count: int) -> dict[str, object]:
    settings = load_settings(os.environ)
    with use_keyring(keyring_for(settings.key_file, production=False)):
        async with database(settings, global_fallback=False):
            clinic = await Clinic.create(
                slug="race",
                name="見本",
                name_kana="ミホン",
                postal_code="100-0000",
                address="見本町",
                phone="03-0000-0000",
            )
            menu, doctor = await make_menu(clinic, capacity=2, every_day=(0, 24 * 60))
            tokens = []
            for n in range(count):
                patient = await make_patient(f"+8190{20000000 + n:08d}")
                pair = await Tokens(utc_now).issue(
                    PrincipalKind.PATIENT,
                    str(patient.account_id),  # type: ignore[attr-defined]
                )
                tokens.append(pair.access_token)
            return {"menu_id": str(menu.id), "practitioner_id": str(doctor.id), "tokens": tokens}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(int(sys.argv[1])))))
