"""Signed, expiring links to one appointment, for the messages we send.

A link carries the appointment's id and an expiry, signed with the server's secret key
(``itsdangerous``): it cannot be forged or extended, and it says nothing by itself. Opening it
shows only the clinic and the time; the appointment itself opens for the patient's own account
once signed in. A forwarded message therefore exposes no more than the SMS text already does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from itsdangerous import BadSignature, URLSafeSerializer

from booking.models import Appointment, AppointmentStatus

SALT: Final = "tsunagu.appointment-link.v1"
AFTER_THE_VISIT: Final = timedelta(days=7)  # how long a link stays good after the visit ends
PATH_PREFIX: Final = "/a/"


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a valid token points at: an appointment id, and until when the link works."""

    appointment_id: str
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def expiry_for(appointment: Appointment) -> datetime:
    """A waitlist offer's link lasts as long as the offer; any other, a week past the visit."""
    if appointment.status is AppointmentStatus.HELD and appointment.hold_expires_at is not None:
        return appointment.hold_expires_at
    return appointment.ends_at + AFTER_THE_VISIT


def _serializer(secret_key: str) -> URLSafeSerializer:
    if not secret_key:
        raise ValueError("appointment links need the server's secret key")
    return URLSafeSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, appointment_id: str, expires_at: datetime) -> str:
    return str(_serializer(secret_key).dumps([appointment_id, int(expires_at.timestamp())]))


def make_link(secret_key: str, public_url: str, appointment: Appointment) -> str:
    token = make_token(secret_key, str(appointment.id), expiry_for(appointment))
    return f"{public_url.rstrip('/')}{PATH_PREFIX}{token}"


def read_token(secret_key: str, token: str) -> LinkTarget | None:
    """The target of a genuine token (expired or not), or None for anything else."""
    if not token or len(token) > 200:
        return None
    try:
        payload = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], str)
        or not isinstance(payload[1], int)
    ):
        return None
    try:
        appointment_id = str(uuid.UUID(payload[0]))
        expires_at = datetime.fromtimestamp(payload[1], UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return LinkTarget(appointment_id, expires_at)
