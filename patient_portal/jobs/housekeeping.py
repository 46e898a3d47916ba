"""Jobs Tsunagu itself needs, and the registry that holds them.

``purge_finished_jobs`` keeps ``portal_job`` small: succeeded rows are only history, failed rows
are kept until someone has looked at them. Schedule it daily, e.g. with the key
``purge_finished_jobs:YYYY-MM-DD`` so a second scheduler in the same day adds nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.jobs.queue import JobQueue
from patient_portal.jobs.spec import JobContext, JobRegistry, JobSpec

logger = logging.getLogger(__name__)

PURGE_FINISHED_JOBS = "purge_finished_jobs"
DEFAULT_RETENTION = timedelta(days=30)


async def purge_finished_jobs(now: datetime, *, older_than: timedelta = DEFAULT_RETENTION) -> int:
    """Delete succeeded jobs that finished before ``now - older_than``; return how many."""
    return await JobRecord.filter(
        status=JobStatus.SUCCEEDED, finished_at__lt=now - older_than
    ).delete()


async def _purge_finished_jobs(payload: dict[str, Any], context: JobContext) -> None:
    """Payload: ``{"older_than_days": N}`` (optional, a whole number ≥ 1; default 30)."""
    days = payload.get("older_than_days", DEFAULT_RETENTION.days)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ValueError("older_than_days must be a whole number of days, at least 1")
    deleted = await purge_finished_jobs(context.now, older_than=timedelta(days=days))
    logger.info("purged %d succeeded jobs older than %d days", deleted, days)


def default_registry() -> JobRegistry:
    """A registry with every job Tsunagu ships; packages register theirs on it at start-up."""
    registry = JobRegistry()
    registry.register(JobSpec(PURGE_FINISHED_JOBS, _purge_finished_jobs, max_attempts=3))
    return registry


async def schedule_housekeeping(queue: JobQueue, registry: JobRegistry, now: datetime) -> None:
    """Enqueue today's housekeeping if ``registry`` has it; every process calls this at start,
    and the key (one per day) keeps it to one job."""
    if PURGE_FINISHED_JOBS in registry:
        await queue.enqueue(PURGE_FINISHED_JOBS, {}, key=f"{PURGE_FINISHED_JOBS}:{now.date()}")
