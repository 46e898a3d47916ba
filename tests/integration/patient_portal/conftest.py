"""Fixtures for driving the whole portal: seeded people, an app with a fixed SMS code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from booking.models import Clinic
from patient_portal.accounts.models import Patient, StaffRole
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.booking import make_appointment
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff

SMS_CODE = "246810"


@dataclass(frozen=True)
class World:
    """Two clinics, each with staff of every role and a registered patient."""

    clinic_a: str
    clinic_b: str
    admin_a: SeededStaff
    doctor_a: SeededStaff
    receptionist_a: SeededStaff
    admin_b: SeededStaff
    doctor_b: SeededStaff
    operator: SeededStaff
    patient_a: str  # registered at clinic A, account phone PHONE_A
    patient_b: str  # registered at clinic B, account phone PHONE_B
    appointment_b: str  # patient B's booked appointment at clinic B


PHONE_A = "+819011110001"
PHONE_B = "+819011110002"


@pytest.fixture
def world(settings: Settings) -> World:
    async def seed() -> World:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                a: Clinic = await make_clinic("clinic-a")
                b: Clinic = await make_clinic("clinic-b")
                patient_a: Patient = await make_patient(PHONE_A, a, given_name="一子")
                patient_b: Patient = await make_patient(PHONE_B, b, given_name="二子")
                appointment_b = await make_appointment(b, patient_b)
                return World(
                    clinic_a=str(a.id),
                    clinic_b=str(b.id),
                    admin_a=await make_staff(a, StaffRole.CLINIC_ADMIN),
                    doctor_a=await make_staff(a, StaffRole.DOCTOR),
                    receptionist_a=await make_staff(a, StaffRole.RECEPTIONIST),
                    admin_b=await make_staff(b, StaffRole.CLINIC_ADMIN),
                    doctor_b=await make_staff(b, StaffRole.DOCTOR),
                    operator=await make_staff(None, StaffRole.PLATFORM_OPERATOR),
                    patient_a=str(patient_a.id),
                    patient_b=str(patient_b.id),
                    appointment_b=str(appointment_b.id),
                )

    return run_sync(seed())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def portal(settings: Settings, clock: FakeClock, world: World) -> Starlette:
    """The app, on a database already seeded (seeding beside a running app would be two SQLite
    writers at once, which a real deployment does not have)."""
    return create_app(settings, verifier=ConsoleVerifier(clock, fixed_code=SMS_CODE), clock=clock)


@pytest.fixture
def browser(portal: Starlette) -> Iterator[TestClient]:
    with TestClient(portal, base_url="http://127.0.0.1") as client:
        yield client
