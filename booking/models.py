"""Tortoise models of the booking package (the persistence adapter).

The clinic is the unit of isolation: every row of clinic data hangs off a :class:`Clinic`.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

DEFAULT_REMINDER_OFFSETS = (1440, 60)


def default_reminder_offsets() -> list[int]:
    """Reminders the day before and one hour before, unless the clinic chooses otherwise."""
    return list(DEFAULT_REMINDER_OFFSETS)


class Clinic(Model):
    """A clinic (診療所) using Tsunagu. ``slug`` names its public page."""

    id = fields.UUIDField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    name_kana = fields.CharField(max_length=200)
    postal_code = fields.CharField(max_length=8)
    address = fields.CharField(max_length=300)
    phone = fields.CharField(max_length=20)
    time_zone = fields.CharField(max_length=64, default="Asia/Tokyo")
    # Departments (診療科) as the clinic names them, e.g. ["内科", "小児科"].
    departments: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # Japanese public holidays are closed unless the clinic opens them.
    open_on_holidays = fields.BooleanField(default=False)
    # When reminders go out, in minutes before the start (default: the day before, one hour before).
    reminder_offsets_minutes: fields.JSONField[list[int]] = fields.JSONField(
        default=default_reminder_offsets
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "booking_clinic"

    def __str__(self) -> str:
        return f"Clinic({self.slug})"


class VisitMode(StrEnum):
    IN_PERSON = "in_person"  # 対面
    ONLINE = "online"  # オンライン
    BOTH = "both"


class VisitKind(StrEnum):
    FIRST = "first"  # 初診
    REVISIT = "revisit"  # 再診
    EITHER = "either"


class AppointmentStatus(StrEnum):
    HELD = "held"  # a seat kept for a patient who is still completing the steps
    BOOKED = "booked"
    CHECKED_IN = "checked_in"  # 受付済
    IN_CONSULT = "in_consult"  # 診察中
    DONE = "done"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # a hold that was not confirmed in time


class Practitioner(Model):
    """Someone patients book: a doctor (linked to a staff account by id, if they have one)."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="practitioners", on_delete=fields.RESTRICT
    )
    staff_id = fields.UUIDField(null=True)
    display_name = fields.CharField(max_length=120)
    display_name_kana = fields.CharField(max_length=120)
    is_active = fields.BooleanField(default=True)

    class Meta:
        table = "booking_practitioner"


class Menu(Model):
    """A kind of visit a clinic offers (診療メニュー), with its booking rules."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="menus", on_delete=fields.RESTRICT
    )
    title_ja = fields.CharField(max_length=120)
    title_en = fields.CharField(max_length=120)
    description_ja = fields.TextField(default="")
    description_en = fields.TextField(default="")
    mode = fields.CharEnumField(VisitMode, max_length=10)
    visit_kind = fields.CharEnumField(VisitKind, max_length=8)
    duration_minutes = fields.IntField()
    capacity = fields.IntField(default=1)
    fee_yen = fields.IntField(default=0)
    booking_fee_yen = fields.IntField(default=0)
    questionnaire_id = fields.CharField(max_length=64, null=True)
    min_notice_minutes = fields.IntField(default=60)
    max_days_ahead = fields.IntField(default=30)
    buffer_before_minutes = fields.IntField(default=0)
    buffer_after_minutes = fields.IntField(default=0)
    cancel_deadline_minutes = fields.IntField(default=120)
    visible_to_patients = fields.BooleanField(default=True)
    # A 診療前相談 (pre-consultation): completing one satisfies "pre_consultation_required".
    pre_consultation = fields.BooleanField(default=False)
    # MHLW online-consult rules this menu applies, by code (see booking.eligibility.ONLINE_RULES).
    online_rules: fields.JSONField[list[str]] = fields.JSONField(default=list)
    sort_order = fields.IntField(default=0)
    practitioners: fields.ManyToManyRelation[Practitioner] = fields.ManyToManyField(
        "booking.Practitioner", related_name="menus", through="booking_menu_practitioner"
    )

    class Meta:
        table = "booking_menu"


class WeeklyHours(Model):
    """One opening range of a practitioner on a weekday (0 = Monday), for all menus or one."""

    id = fields.UUIDField(primary_key=True)
    practitioner: fields.ForeignKeyRelation[Practitioner] = fields.ForeignKeyField(
        "booking.Practitioner", related_name="hours", on_delete=fields.CASCADE
    )
    menu: fields.ForeignKeyNullableRelation[Menu] = fields.ForeignKeyField(
        "booking.Menu", related_name="hours", null=True, on_delete=fields.CASCADE
    )
    weekday = fields.IntField()
    # Minutes after midnight, local to the clinic (Tortoise's TimeField does not bind on SQLite).
    start_minute = fields.IntField()
    end_minute = fields.IntField()

    class Meta:
        table = "booking_weekly_hours"


class HoursException(Model):
    """A date that differs from the week: closed (all day or a range), or extra hours."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="exceptions", on_delete=fields.CASCADE
    )
    practitioner: fields.ForeignKeyNullableRelation[Practitioner] = fields.ForeignKeyField(
        "booking.Practitioner", related_name="exceptions", null=True, on_delete=fields.CASCADE
    )
    day = fields.DateField()
    closed = fields.BooleanField(default=True)
    start_minute = fields.IntField(null=True)
    end_minute = fields.IntField(null=True)
    note = fields.CharField(max_length=200, default="")

    class Meta:
        table = "booking_hours_exception"


class Appointment(Model):
    """A booking (or a hold on the way to one). ``patient_id``/``account_id`` name the portal's
    patient record and account; booking keeps ids only."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="appointments", on_delete=fields.RESTRICT
    )
    menu: fields.ForeignKeyRelation[Menu] = fields.ForeignKeyField(
        "booking.Menu", related_name="appointments", on_delete=fields.RESTRICT
    )
    practitioner: fields.ForeignKeyRelation[Practitioner] = fields.ForeignKeyField(
        "booking.Practitioner", related_name="appointments", on_delete=fields.RESTRICT
    )
    account_id = fields.UUIDField(db_index=True)
    patient_id = fields.UUIDField(null=True, db_index=True)
    starts_at = fields.DatetimeField(db_index=True)
    ends_at = fields.DatetimeField()
    status = fields.CharEnumField(AppointmentStatus, max_length=12)
    hold_expires_at = fields.DatetimeField(null=True)
    overbooked = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "booking_appointment"


class SeatClaim(Model):
    """One seat of a practitioner's five-minute cell, taken by an appointment or a hold.

    The unique constraint on (practitioner, cell, seat) is what makes a double booking
    impossible, with any number of server processes: a second claim of the same seat fails in
    the database itself.
    """

    id = fields.UUIDField(primary_key=True)
    practitioner: fields.ForeignKeyRelation[Practitioner] = fields.ForeignKeyField(
        "booking.Practitioner", related_name="claims", on_delete=fields.RESTRICT
    )
    cell_start = fields.DatetimeField()
    seat = fields.IntField()
    appointment: fields.ForeignKeyRelation[Appointment] = fields.ForeignKeyField(
        "booking.Appointment", related_name="claims", on_delete=fields.CASCADE
    )
    expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "booking_seat_claim"
        unique_together = (("practitioner", "cell_start", "seat"),)


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a freed seat is held for this entry
    BOOKED = "booked"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"  # an offer was not taken in time


class WaitlistEntry(Model):
    """A patient waiting for a seat of a menu on one of a few days, first come first served."""

    id = fields.UUIDField(primary_key=True)
    clinic: fields.ForeignKeyRelation[Clinic] = fields.ForeignKeyField(
        "booking.Clinic", related_name="waitlist", on_delete=fields.RESTRICT
    )
    menu: fields.ForeignKeyRelation[Menu] = fields.ForeignKeyField(
        "booking.Menu", related_name="waitlist", on_delete=fields.RESTRICT
    )
    account_id = fields.UUIDField(db_index=True)
    patient_id = fields.UUIDField()
    first_day = fields.DateField()
    last_day = fields.DateField()
    status = fields.CharEnumField(WaitlistStatus, max_length=10, default=WaitlistStatus.WAITING)
    offer_appointment_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "booking_waitlist_entry"
