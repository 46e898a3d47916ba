"""Messages about appointments — confirmed, cancelled, reminders — sent by jobs.

Each message is a job keyed by appointment and kind, so a restart neither loses nor repeats it,
and each job looks at the appointment when it runs: a reminder of an appointment cancelled since
is dropped. The text names the clinic and the time and carries a signed, expiring link
(:mod:`patient_portal.appointment_links`) that shows only clinic and time until the patient signs
in: no patient name, no medical detail (SMS and e-mail are not private). Reminders go out at the
clinic's own offsets (default: the day before and one hour before).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from booking.models import Appointment, AppointmentStatus, default_reminder_offsets
from patient_portal.accounts.models import Patient, PatientAccount
from patient_portal.appointment_links import make_link
from patient_portal.jobs import JobContext, JobQueue, JobRegistry, JobSpec
from patient_portal.notify import Message, Notifier

logger = logging.getLogger(__name__)

SEND_APPOINTMENT_MESSAGE: Final = "send_appointment_message"
CONFIRMED, CANCELLED, CHANGED, REMINDER = "confirmed", "cancelled", "changed", "reminder"
OFFERED = "offered"  # a freed seat held for someone on the waitlist
STILL_ON: Final = {
    AppointmentStatus.BOOKED,
    AppointmentStatus.CHECKED_IN,
}


def compose(kind: str, clinic_name: str, start: datetime, link: str) -> tuple[str, str]:
    """(subject, body) in Japanese with an English line: the product's default language, and
    readable by a patient who chose English."""
    when = start.strftime("%m/%d %H:%M")
    if kind == CONFIRMED:
        subject = f"【{clinic_name}】ご予約を承りました"
        english = f"Booked at {clinic_name}: {when}."
        lead = f"{when} のご予約を承りました。"
    elif kind == OFFERED:
        subject = f"【{clinic_name}】キャンセル待ちの空きが出ました"
        english = f"A time at {clinic_name} is free for you: {when}. Confirm within 30 minutes."
        lead = f"{when} に空きが出ました。30分以内にご予約を確定してください。"
    elif kind == CHANGED:
        subject = f"【{clinic_name}】ご予約の日時を変更しました"
        english = f"Your appointment at {clinic_name} is moved to {when}."
        lead = f"ご予約を {when} に変更しました。"
    elif kind == CANCELLED:
        subject = f"【{clinic_name}】ご予約をキャンセルしました"
        english = f"Your appointment at {clinic_name} on {when} is cancelled."
        lead = f"{when} のご予約をキャンセルしました。"
    else:
        subject = f"【{clinic_name}】ご予約のお知らせ"
        english = f"Reminder: {clinic_name}, {when}."
        lead = f"{when} にご予約があります。"
    body = f"{clinic_name}: {lead}\n{english}\n{link}"
    return subject, body


async def schedule_messages(
    queue: JobQueue, appointment: Appointment, kind: str, *, now: datetime
) -> None:
    """Enqueue the message of ``kind`` now and, for a booking, its reminders."""
    base = f"appointment:{appointment.id}"
    await queue.enqueue(
        SEND_APPOINTMENT_MESSAGE,
        {"appointment_id": str(appointment.id), "kind": kind},
        key=f"{base}:{kind}",
    )
    if kind not in (CONFIRMED, CHANGED):
        return
    for minutes in await reminder_offsets(appointment):
        at = appointment.starts_at - timedelta(minutes=minutes)
        if at > now:
            await queue.enqueue(
                SEND_APPOINTMENT_MESSAGE,
                {"appointment_id": str(appointment.id), "kind": REMINDER},
                run_at=at,
                key=f"{base}:{REMINDER}:{minutes}",
            )


async def reminder_offsets(appointment: Appointment) -> list[int]:
    """The clinic's reminder offsets in minutes before the start, largest first, no repeats."""
    clinic = await appointment.clinic
    chosen = clinic.reminder_offsets_minutes
    if not isinstance(chosen, list):
        chosen = default_reminder_offsets()
    valid = {m for m in chosen if isinstance(m, int) and not isinstance(m, bool) and m > 0}
    return sorted(valid, reverse=True)


def register(registry: JobRegistry, notifier: Notifier, public_url: str, secret_key: str) -> None:
    """Register the job that sends appointment messages through ``notifier``."""

    async def send(payload: dict[str, Any], context: JobContext) -> None:
        kind = str(payload.get("kind", ""))
        appointment = await Appointment.get_or_none(
            id=str(payload.get("appointment_id", ""))
        ).prefetch_related("clinic")
        if appointment is None or kind not in (CONFIRMED, CANCELLED, CHANGED, REMINDER, OFFERED):
            logger.warning("appointment message %s: nothing to send", context.job_id)
            return
        if kind == CANCELLED and (
            appointment.status is not AppointmentStatus.CANCELLED or appointment.patient_id is None
        ):
            return  # not cancelled after all, or only a hold that was let go
        if kind == OFFERED and appointment.status is not AppointmentStatus.HELD:
            return  # taken or lapsed already
        if kind not in (CANCELLED, OFFERED) and appointment.status not in STILL_ON:
            return  # cancelled (or over) since it was scheduled: never sent
        account = await PatientAccount.get_or_none(id=appointment.account_id)
        patient = (
            await Patient.get_or_none(id=appointment.patient_id) if appointment.patient_id else None
        )
        clinic = appointment.clinic
        start = appointment.starts_at.astimezone(ZoneInfo(clinic.time_zone))
        link = make_link(secret_key, public_url, appointment)
        subject, body = compose(kind, clinic.name, start, link)
        await notifier.send(
            Message(
                to_phone=account.phone if account else None,
                to_email=patient.email if patient else None,
                subject=subject,
                body=body,
                key=f"appointment:{appointment.id}:{kind}:{context.job_id}",
            )
        )

    registry.register(JobSpec(SEND_APPOINTMENT_MESSAGE, send, max_attempts=5))
