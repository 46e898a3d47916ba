"""The embedded runner: jobs are rows in ``portal_job`` and a loop in the app process runs them.

Every job is a database row from enqueue to its end, so a scheduled job survives a restart and a
failed job stays visible (``status = failed``, ``last_error``). Runners claim a job with a
conditional ``UPDATE … WHERE status = 'pending'``; only one runner's update matches, so two
runners — in one process or many — never run the same job at once. A claim holds a lease
(``lease_until``): a ``running`` job whose lease has passed belonged to a process that died, and
:meth:`InProcessRunner.recover_expired` puts it back.

``attempts`` counts runs started (it goes up when a job is claimed), so a job that crashes its
process every time still ends as ``failed`` after ``max_attempts`` runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.jobs.spec import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_TIMEOUT,
    Clock,
    JobContext,
    JobRegistry,
    JobSpec,
    UnknownJob,
    describe_failure,
    retry_delay,
    utc_now,
)

logger = logging.getLogger(__name__)

RUNNER_NAME = "inprocess"
_EXPIRED_LEASE = "LeaseExpired: the process running this job stopped before it finished"


class DatabaseJobQueue:
    """:class:`~.queue.JobQueue` that writes ``JobRecord`` rows for :class:`InProcessRunner`.

    Enqueue inside a transaction to make the job part of it: the row is written in a savepoint,
    so a duplicate ``key`` does not abort the caller's transaction. ``notify`` (e.g.
    ``runner.wake``) is called after each new job so a runner in this process starts it at once.
    """

    def __init__(
        self,
        registry: JobRegistry,
        *,
        clock: Clock = utc_now,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._notify = notify

    async def enqueue(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        run_at: datetime | None = None,
        key: str | None = None,
    ) -> str:
        request = self._registry.request(name, payload, run_at=run_at, key=key)
        if key is not None and (existing := await JobRecord.get_or_none(key=key)) is not None:
            return str(existing.id)
        try:
            async with in_transaction():
                record = await JobRecord.create(
                    name=request.spec.name,
                    key=key,
                    payload=request.payload,
                    run_at=(run_at or self._clock()).astimezone(UTC),
                    max_attempts=request.spec.max_attempts,
                    runner=RUNNER_NAME,
                )
        except IntegrityError:
            if key is None:
                raise
            # Another caller enqueued the same key between our read and our insert.
            return str((await JobRecord.get(key=key)).id)
        if self._notify is not None:
            self._notify()
        return str(record.id)

    async def close(self) -> None:
        """Nothing to release (the database belongs to the caller); here to match ArqJobQueue."""


class InProcessRunner:
    """Runs due jobs from ``portal_job``: :meth:`run_due` once, or :meth:`start` a loop.

    ``clock`` returns aware datetimes; the runner never reads the time any other way. A handler
    gets ``spec.timeout`` seconds per run; its claim's lease lasts that long plus
    ``lease_margin``, so keep the margin above any pause the event loop may take.
    """

    def __init__(
        self,
        registry: JobRegistry,
        *,
        clock: Clock = utc_now,
        poll_interval: float = 1.0,
        lease_margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._poll_interval = poll_interval
        self._lease_margin = lease_margin
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def run_due(self, *, limit: int = 100) -> int:
        """Recover expired leases, then run due jobs one by one (at most ``limit``); return the
        number of jobs run. Stops early, between two jobs, once :meth:`stop` was called."""
        await self.recover_expired()
        ran = 0
        while ran < limit and not self._stopping:
            job = await self._claim_next()
            if job is None:
                break
            await self._run(job)
            ran += 1
        return ran

    async def recover_expired(self) -> int:
        """Put ``running`` jobs whose lease has passed back to pending (or failed, if they used
        their last attempt); return how many were recovered."""
        now = self._now()
        expired = await JobRecord.filter(status=JobStatus.RUNNING, lease_until__lt=now)
        recovered = 0
        for job in expired:
            final = job.attempts >= job.max_attempts
            changes: dict[str, Any] = {"status": JobStatus.PENDING, "lease_until": None}
            if final:
                changes = {
                    "status": JobStatus.FAILED,
                    "lease_until": None,
                    "last_error": _EXPIRED_LEASE,
                    "finished_at": now,
                }
            recovered += await JobRecord.filter(
                id=job.id, status=JobStatus.RUNNING, attempts=job.attempts
            ).update(**changes, updated_at=now)
            log = logger.error if final else logger.warning
            log("job %s (%s): lease expired on attempt %d", job.id, job.name, job.attempts)
        return recovered

    async def _claim_next(self) -> JobRecord | None:
        while True:
            now = self._now()
            job = (
                await JobRecord.filter(status=JobStatus.PENDING, run_at__lte=now)
                .order_by("run_at")
                .first()
            )
            if job is None:
                return None
            lease = timedelta(seconds=self._timeout(job.name)) + self._lease_margin
            claimed = await JobRecord.filter(
                id=job.id, status=JobStatus.PENDING, attempts=job.attempts
            ).update(
                status=JobStatus.RUNNING,
                attempts=job.attempts + 1,
                lease_until=now + lease,
                updated_at=now,
            )
            if claimed:
                job.status = JobStatus.RUNNING
                job.attempts += 1
                return job
            logger.debug("job %s was claimed by another runner first", job.id)

    def _timeout(self, name: str) -> float:
        return self._registry.get(name).timeout if name in self._registry else DEFAULT_TIMEOUT

    async def _run(self, job: JobRecord) -> None:
        context = JobContext(job_id=str(job.id), attempt=job.attempts, now=self._now())
        try:
            spec = self._registry.get(job.name)
        except UnknownJob as exc:  # enqueued by another version of Tsunagu; retry after a deploy
            await self._failed(job, None, describe_failure(exc), type(exc).__name__)
            return
        try:
            async with asyncio.timeout(spec.timeout) as deadline:
                await spec.handler(dict(job.payload), context)
        except Exception as exc:
            error = (
                f"TimeoutError: ran longer than {spec.timeout:g}s"
                if deadline.expired()
                else describe_failure(exc)
            )
            await self._failed(job, spec, error, type(exc).__name__)
        else:
            await self._finish(job, status=JobStatus.SUCCEEDED, last_error="")

    async def _failed(
        self, job: JobRecord, spec: JobSpec | None, error: str, error_type: str
    ) -> None:
        if job.attempts >= job.max_attempts:
            logger.error(
                "job %s (%s) failed for good on attempt %d of %d (%s)",
                job.id,
                job.name,
                job.attempts,
                job.max_attempts,
                error_type,
            )
            await self._finish(job, status=JobStatus.FAILED, last_error=error)
            return
        now = self._now()
        if spec is None:
            run_at = now + retry_delay(job.attempts, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP)
        else:
            run_at = now + spec.retry_delay(job.attempts)
        logger.error(
            "job %s (%s) failed on attempt %d of %d (%s); retry at %s",
            job.id,
            job.name,
            job.attempts,
            job.max_attempts,
            error_type,
            run_at.isoformat(),
        )
        await self._update(
            job,
            status=JobStatus.PENDING,
            run_at=run_at,
            lease_until=None,
            last_error=error,
            updated_at=now,
        )

    async def _finish(self, job: JobRecord, *, status: JobStatus, last_error: str) -> None:
        now = self._now()
        await self._update(
            job,
            status=status,
            last_error=last_error,
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )

    async def _update(self, job: JobRecord, **changes: Any) -> None:
        """Record an outcome, unless the lease was lost and the job recovered meanwhile."""
        updated = await JobRecord.filter(
            id=job.id, status=JobStatus.RUNNING, attempts=job.attempts
        ).update(**changes)
        if not updated:
            logger.warning(
                "job %s (%s): lease lost before its outcome was stored", job.id, job.name
            )

    def wake(self) -> None:
        """Make the loop look for due jobs now (pass it as ``DatabaseJobQueue(notify=...)``)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background loop in the running event loop; :meth:`stop` ends it."""
        if self._task is not None:
            raise RuntimeError("the job runner is already started")
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="tsunagu-job-runner")

    async def stop(self) -> None:
        """Stop the loop; waits for the job that is running, and starts no other."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            limit = 100
            try:
                ran = await self.run_due(limit=limit)
            except Exception as exc:  # the database is away: keep the loop, try again later
                logger.error("job runner could not reach the job table (%s)", type(exc).__name__)
                ran = 0
            if ran >= limit or self._stopping:
                continue
            with suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
