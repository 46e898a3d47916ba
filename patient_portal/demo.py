"""The demo clinic: obviously fake people and places, seeded idempotently.

Every name uses 見本 (mihon, "sample") or デモ, the address is a made-up 見本町, and the phone
numbers are 090-1000-000X (well-formed, since sign-in validates numbers; the demo sends no SMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    Menu,
    Practitioner,
    VisitKind,
    VisitMode,
    WeeklyHours,
)
from booking.service import minute_of
from patient_portal.accounts.models import (
    ClinicRegistration,
    Patient,
    PatientAccount,
    Relationship,
    Sex,
    StaffMember,
    StaffRole,
)
from patient_portal.auth import passwords
from patient_portal.crypto.keyring import current_keyring
from patient_portal.demo_forms import seed_demo_questionnaires

DEMO_CLINIC_SLUG = "demo"
# Demo credentials, printed by `tsunagu demo`. They exist only in the demo's own SQLite file.
DEMO_PASSWORD = "mihon-clinic-demo-password"  # noqa: S105 - a published demo credential
DEMO_TOTP_SECRET = "TSUNAGUDEMOSTAFFAUTHENTICATOR234"  # noqa: S105 - published demo value
DEMO_PHONE = "090-1000-0001"


@dataclass(frozen=True, slots=True)
class DemoStaff:
    login_id: str
    name: str
    role: StaffRole


@dataclass(frozen=True, slots=True)
class DemoSummary:
    clinic_name: str
    clinic_slug: str
    staff: tuple[DemoStaff, ...]
    patient_count: int


STAFF = (
    DemoStaff("doctor1@demo.tsunagu.invalid", "見本 一郎", StaffRole.DOCTOR),
    DemoStaff("doctor2@demo.tsunagu.invalid", "見本 花子", StaffRole.DOCTOR),
    DemoStaff("reception@demo.tsunagu.invalid", "見本 受付", StaffRole.RECEPTIONIST),
    DemoStaff("admin@demo.tsunagu.invalid", "見本 管理", StaffRole.CLINIC_ADMIN),
)
STAFF_KANA = {
    "doctor1@demo.tsunagu.invalid": "ミホン イチロウ",
    "doctor2@demo.tsunagu.invalid": "ミホン ハナコ",
    "reception@demo.tsunagu.invalid": "ミホン ウケツケ",
    "admin@demo.tsunagu.invalid": "ミホン カンリ",
}
# Accounts by phone, each with its patients:
# (family, given, family kana, given kana, birth date, sex, relationship to the account holder)
PATIENTS = {
    "+819010000001": (
        ("デモ", "太郎", "デモ", "タロウ", date(1948, 4, 1), Sex.MALE, Relationship.SELF),
        ("デモ", "梅子", "デモ", "ウメコ", date(1952, 11, 3), Sex.FEMALE, Relationship.SPOUSE),
    ),
    "+819010000003": (
        ("見本", "桜", "ミホン", "サクラ", date(1990, 7, 7), Sex.FEMALE, Relationship.SELF),
        ("見本", "葵", "ミホン", "アオイ", date(2019, 5, 5), Sex.FEMALE, Relationship.CHILD),
    ),
}
PHONE_PURPOSE = "phone"


# (title ja, title en, mode, kind, minutes, booking fee, online rules)
MENUS: tuple[tuple[str, str, VisitMode, VisitKind, int, int, list[str]], ...] = (
    (
        "内科 初診(対面)",
        "Internal medicine, first visit (at the clinic)",
        VisitMode.IN_PERSON,
        VisitKind.FIRST,
        15,
        0,
        [],
    ),
    (
        "内科 再診(オンライン)",
        "Internal medicine, follow-up (online)",
        VisitMode.ONLINE,
        VisitKind.REVISIT,
        10,
        330,
        [],
    ),
    (
        "オンライン診療前相談",
        "Pre-consultation (online)",
        VisitMode.ONLINE,
        VisitKind.FIRST,
        10,
        0,
        [],
    ),
    (
        "花粉症 オンライン初診",
        "Hay fever, first visit online",
        VisitMode.ONLINE,
        VisitKind.FIRST,
        15,
        330,
        ["pre_consultation_required", "no_restricted_drugs_at_first_visit"],
    ),
)
# Monday to Friday 9:00-12:30 and 15:00-18:30, Saturday mornings.
WEEK = [(day, time(9), time(12, 30)) for day in range(6)] + [
    (day, time(15), time(18, 30)) for day in range(5)
]


async def _seed_booking(clinic: Clinic) -> None:
    if await Menu.exists(clinic=clinic):
        return
    doctors = []
    for member in STAFF:
        if member.role is not StaffRole.DOCTOR:
            continue
        staff = await StaffMember.get(login_id=member.login_id)
        doctor = await Practitioner.create(
            clinic=clinic,
            staff_id=staff.id,
            display_name=member.name,
            display_name_kana=STAFF_KANA[member.login_id],
        )
        for weekday, start, end in WEEK:
            await WeeklyHours.create(
                practitioner=doctor,
                weekday=weekday,
                start_minute=minute_of(start),
                end_minute=minute_of(end),
            )
        doctors.append(doctor)
    for order, (title_ja, title_en, mode, kind, minutes, fee, rules) in enumerate(MENUS):
        menu = await Menu.create(
            clinic=clinic,
            title_ja=title_ja,
            title_en=title_en,
            mode=mode,
            visit_kind=kind,
            duration_minutes=minutes,
            booking_fee_yen=fee,
            online_rules=rules,
            pre_consultation=title_en.startswith("Pre-consultation"),
            sort_order=order,
        )
        await menu.practitioners.add(*doctors)


async def _taro() -> Patient | None:
    """デモ 太郎, the first demo account's own record."""
    phone_index = current_keyring().blind_index("+819010000001", PHONE_PURPOSE)
    account = await PatientAccount.get_or_none(phone_index=phone_index)
    return await Patient.filter(account=account, relationship=Relationship.SELF).first()


async def _seed_demo_consult(clinic: Clinic) -> None:
    """Keep an online consult for デモ 太郎 ready to enter: each demo start books one beginning in
    about ten minutes unless one is still live. It is booked as the clinic's deliberate
    over-booking (whatever the hours), so it takes no patient's seat."""
    taro = await _taro()
    menu = await Menu.filter(
        clinic=clinic, mode=VisitMode.ONLINE, visit_kind=VisitKind.REVISIT
    ).first()
    doctor = await Practitioner.filter(clinic=clinic).order_by("display_name_kana").first()
    if taro is None or menu is None or doctor is None:
        return
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_CONSULT)
    if await Appointment.exists(
        patient_id=taro.id, menu=menu, status__in=live, starts_at__gte=now - timedelta(minutes=45)
    ):
        return
    start = now + timedelta(minutes=10 + (5 - now.minute % 5) % 5)
    await Appointment.create(
        clinic=clinic,
        menu=menu,
        practitioner=doctor,
        account_id=taro.account_id,  # type: ignore[attr-defined]
        patient_id=taro.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=menu.duration_minutes),
        status=AppointmentStatus.BOOKED,
        overbooked=True,
        created_at=now,
        updated_at=now,
    )


async def _seed_past_visit(clinic: Clinic) -> None:
    """デモ 太郎 visited a month ago, so he may book the revisit menu; 見本 桜 never has."""
    taro = await _taro()
    if taro is None or await Appointment.exists(clinic=clinic, patient_id=taro.id):
        return
    menu = await Menu.filter(clinic=clinic).order_by("sort_order").first()
    doctor = await Practitioner.filter(clinic=clinic).order_by("display_name_kana").first()
    if menu is None or doctor is None:
        return
    zone = ZoneInfo(clinic.time_zone)
    start = datetime.combine(datetime.now(zone).date() - timedelta(days=30), time(10), tzinfo=zone)
    await Appointment.create(
        clinic=clinic,
        menu=menu,
        practitioner=doctor,
        account_id=taro.account_id,  # type: ignore[attr-defined]
        patient_id=taro.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=menu.duration_minutes),
        status=AppointmentStatus.DONE,
        created_at=start,
        updated_at=start,
    )


async def seed_demo_clinic() -> DemoSummary:
    """Create the demo clinic, its staff and patients; running it again changes nothing but
    keeping an online consult ready for デモ 太郎 (see :func:`_seed_demo_consult`)."""
    clinic, _ = await Clinic.get_or_create(
        slug=DEMO_CLINIC_SLUG,
        defaults={
            "name": "つなぐ見本クリニック",
            "name_kana": "ツナグミホンクリニック",
            "postal_code": "100-0000",
            "address": "東京都千代田区見本町1-2-3 デモビル2階",
            "phone": "03-1000-0000",
            "departments": ["内科", "小児科", "アレルギー科"],
        },
    )
    demo_hash: str | None = None
    for member in STAFF:
        if not await StaffMember.exists(login_id=member.login_id):
            demo_hash = demo_hash or await passwords.hash_password_async(DEMO_PASSWORD)
            await StaffMember.create(
                login_id=member.login_id,
                clinic=clinic,
                display_name=member.name,
                display_name_kana=STAFF_KANA[member.login_id],
                role=member.role,
                password_hash=demo_hash,
                totp_secret=DEMO_TOTP_SECRET,
            )
    keyring = current_keyring()
    patient_count = 0
    for phone, members in PATIENTS.items():
        account, created = await PatientAccount.get_or_create(
            phone_index=keyring.blind_index(phone, PHONE_PURPOSE), defaults={"phone": phone}
        )
        if created:
            for family, given, family_kana, given_kana, birth, sex, relationship in members:
                await Patient.create(
                    account=account,
                    relationship=relationship,
                    family_name=family,
                    given_name=given,
                    family_name_kana=family_kana,
                    given_name_kana=given_kana,
                    birth_date=birth,
                    sex=sex,
                )
        patient_count += await Patient.filter(account=account).count()
    await _seed_booking(clinic)
    await seed_demo_questionnaires(str(clinic.id))
    await _seed_past_visit(clinic)
    await _seed_demo_consult(clinic)
    registered = await ClinicRegistration.filter(clinic=clinic).count()
    for patient in await Patient.filter(registrations=None).order_by("created_at"):
        registered += 1
        await ClinicRegistration.create(
            clinic=clinic, patient=patient, patient_number=f"{registered:06d}"
        )
    return DemoSummary(
        clinic_name=clinic.name,
        clinic_slug=clinic.slug,
        staff=STAFF,
        patient_count=patient_count,
    )
