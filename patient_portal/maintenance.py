"""Daily housekeeping of the product: what expires is deleted, the audit log keeps its retention.

Every ``serve`` and ``worker`` process enqueues today's jobs when it starts; the job key (one per
job and day) keeps each to a single run however many processes start.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Final

from patient_portal import appointment_messages, waitlist_jobs
from patient_portal.audit.service import AuditLog
from patient_portal.auth.models import ApiToken, OtpChallenge, Session
from patient_portal.jobs import JobContext, JobQueue, JobRegistry, JobSpec, default_registry
from patient_portal.jobs.housekeeping import schedule_housekeeping
from patient_portal.notify import Notifier
from patient_portal.settings import Settings
from patient_portal.waitlist_jobs import QueueHolder

logger = logging.getLogger(__name__)

PURGE_SIGN_IN_LEFTOVERS: Final = "purge_sign_in_leftovers"
PURGE_AUDIT_LOG: Final = "purge_audit_log"


async def purge_sign_in_leftovers(now: datetime) -> dict[str, int]:
    """Delete one-time codes, sessions and API tokens that can no longer be used."""
    return {
        "codes": await OtpChallenge.filter(expires_at__lt=now - timedelta(days=1)).delete(),
        "sessions": await Session.filter(expires_at__lt=now).delete(),
        "tokens": await ApiToken.filter(expires_at__lt=now - timedelta(days=1)).delete(),
    }


async def _purge_sign_in_leftovers(payload: dict[str, Any], context: JobContext) -> None:
    counts = await purge_sign_in_leftovers(context.now)
    logger.info("purged expired sign-in data: %s", counts)


async def _purge_audit_log(payload: dict[str, Any], context: JobContext) -> None:
    days = payload.get("retention_days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 365:
        raise ValueError("retention_days must be a whole number of days, at least 365")
    deleted = await AuditLog().purge_before(context.now - timedelta(days=days))
    logger.info("purged %d audit entries older than %d days", deleted, days)


def product_registry(
    settings: Settings, notifier: Notifier, queue: QueueHolder | None = None
) -> JobRegistry:
    """Every job the product runs: the job table's own housekeeping and the product's.
    ``queue`` is filled with this process's queue once it is open (for follow-up jobs)."""
    registry = default_registry()
    appointment_messages.register(
        registry, notifier, settings.public_url, settings.secret_key.reveal()
    )
    waitlist_jobs.register(registry, queue or QueueHolder())
    registry.register(JobSpec(PURGE_SIGN_IN_LEFTOVERS, _purge_sign_in_leftovers, max_attempts=3))
    registry.register(JobSpec(PURGE_AUDIT_LOG, _purge_audit_log, max_attempts=3, timeout=600))
    return registry


async def schedule_daily(
    queue: JobQueue, registry: JobRegistry, settings: Settings, now: datetime
) -> None:
    await schedule_housekeeping(queue, registry, now)
    day = now.date()
    await queue.enqueue(PURGE_SIGN_IN_LEFTOVERS, {}, key=f"{PURGE_SIGN_IN_LEFTOVERS}:{day}")
    await queue.enqueue(
        PURGE_AUDIT_LOG,
        {"retention_days": settings.audit_retention_days},
        key=f"{PURGE_AUDIT_LOG}:{day}",
    )
