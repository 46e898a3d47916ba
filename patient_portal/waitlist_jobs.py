"""Jobs that run the waitlist: offer a freed seat, and pass it on when an offer lapses.

A freed seat (a cancellation, or a patient's hold that lapsed unconfirmed: every hold schedules
``booking_hold_lapsed`` for when it ends) enqueues ``offer_freed_seat``; an offer is a 30-minute
hold for the first patient waiting, who gets a message with the link to confirm it, and a check
is scheduled for when the hold ends: ``waitlist_offer_lapsed`` frees the seat if the offer was
not taken and offers it to the next person. Every step is a keyed job, so nothing is offered twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from booking import waitlist
from booking.models import Appointment, Menu
from patient_portal.appointment_messages import OFFERED, schedule_messages
from patient_portal.jobs import JobContext, JobQueue, JobRegistry, JobSpec

OFFER_FREED_SEAT: Final = "offer_freed_seat"
OFFER_LAPSED: Final = "waitlist_offer_lapsed"
HOLD_LAPSED: Final = "booking_hold_lapsed"


@dataclass
class QueueHolder:
    """The queue of this process, for jobs that enqueue follow-up jobs (set once it exists)."""

    queue: JobQueue | None = None

    def get(self) -> JobQueue:
        if self.queue is None:
            raise RuntimeError("the job queue is not open yet")
        return self.queue


async def seat_freed(queue: JobQueue, appointment: Appointment) -> None:
    """Called after a booking is cancelled: its seat may go to someone waiting."""
    await queue.enqueue(
        OFFER_FREED_SEAT, _slot_of(appointment), key=f"waitlist:freed:{appointment.id}"
    )


async def watch_hold(queue: JobQueue, appointment: Appointment) -> None:
    """Called after a patient holds a seat: when the hold ends unconfirmed, its seat may go to
    someone waiting."""
    if appointment.hold_expires_at is None:
        return
    await queue.enqueue(
        HOLD_LAPSED,
        {"appointment_id": str(appointment.id)},
        run_at=appointment.hold_expires_at,
        key=f"hold:lapse:{appointment.id}:{int(appointment.hold_expires_at.timestamp())}",
    )


def _slot_of(appointment: Appointment) -> dict[str, Any]:
    return {
        "menu_id": str(appointment.menu_id),  # type: ignore[attr-defined]
        "practitioner_id": str(appointment.practitioner_id),  # type: ignore[attr-defined]
        "start": appointment.starts_at.isoformat(),
    }


async def _offer(holder: QueueHolder, payload: dict[str, Any], now: datetime) -> None:
    menu = await Menu.get_or_none(id=str(payload.get("menu_id", "")))
    if menu is None:
        return
    entry = await waitlist.offer(
        menu,
        practitioner_id=str(payload.get("practitioner_id", "")),
        start=datetime.fromisoformat(str(payload.get("start", ""))),
        now=now,
    )
    if entry is None or entry.offer_appointment_id is None:
        return
    held = await Appointment.get(id=entry.offer_appointment_id)
    queue = holder.get()
    await schedule_messages(queue, held, OFFERED, now=now)
    assert held.hold_expires_at is not None  # noqa: S101 - an offer is a hold
    await queue.enqueue(
        OFFER_LAPSED,
        {"entry_id": str(entry.id)},
        run_at=held.hold_expires_at,
        key=f"waitlist:lapse:{entry.id}:{held.id}",
    )


def register(registry: JobRegistry, holder: QueueHolder) -> None:
    async def offer_freed_seat(payload: dict[str, Any], context: JobContext) -> None:
        await _offer(holder, payload, context.now)

    async def offer_lapsed(payload: dict[str, Any], context: JobContext) -> None:
        lapsed = await waitlist.expire_offer(str(payload.get("entry_id", "")), now=context.now)
        if lapsed is not None:
            await _offer(holder, _slot_of(lapsed), context.now)

    async def hold_lapsed(payload: dict[str, Any], context: JobContext) -> None:
        appointment_id = str(payload.get("appointment_id", ""))
        lapsed = await waitlist.lapse_hold(appointment_id, now=context.now)
        if lapsed is not None:
            await _offer(holder, _slot_of(lapsed), context.now)

    registry.register(JobSpec(OFFER_FREED_SEAT, offer_freed_seat, max_attempts=5))
    registry.register(JobSpec(OFFER_LAPSED, offer_lapsed, max_attempts=5))
    registry.register(JobSpec(HOLD_LAPSED, hold_lapsed, max_attempts=5))
