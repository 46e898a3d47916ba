"""Background jobs: one interface (:class:`JobQueue`), two runners.

Embedded default: :class:`DatabaseJobQueue` + :class:`InProcessRunner` (jobs are database rows).
With Redis: :class:`ArqJobQueue` + an arq worker (``tsunagu worker``, :func:`run_worker`).
Handlers are ``async def handler(payload: dict[str, Any], ctx: JobContext) -> None``, registered
by name on a :class:`JobRegistry`; they must be idempotent.
"""

from patient_portal.jobs.arq_queue import ArqJobQueue, FinalFailure, build_worker, worker_settings
from patient_portal.jobs.housekeeping import default_registry, purge_finished_jobs
from patient_portal.jobs.inprocess import DatabaseJobQueue, InProcessRunner
from patient_portal.jobs.queue import JobQueue
from patient_portal.jobs.spec import (
    DuplicateJob,
    InvalidPayload,
    InvalidSchedule,
    JobContext,
    JobError,
    JobFailed,
    JobHandler,
    JobRegistry,
    JobSpec,
    QueueUnavailable,
    UnknownJob,
    retry_delay,
    utc_now,
)
from patient_portal.jobs.worker import build_job_queue, run_worker, running_jobs

__all__ = [
    "ArqJobQueue",
    "DatabaseJobQueue",
    "DuplicateJob",
    "FinalFailure",
    "InProcessRunner",
    "InvalidPayload",
    "InvalidSchedule",
    "JobContext",
    "JobError",
    "JobFailed",
    "JobHandler",
    "JobQueue",
    "JobRegistry",
    "JobSpec",
    "QueueUnavailable",
    "UnknownJob",
    "build_job_queue",
    "build_worker",
    "default_registry",
    "purge_finished_jobs",
    "retry_delay",
    "run_worker",
    "running_jobs",
    "utc_now",
    "worker_settings",
]
