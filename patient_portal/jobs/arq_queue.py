"""The Redis runner: jobs go through arq, run by ``tsunagu worker``.

Every Tsunagu job is one arq function, :data:`ARQ_FUNCTION`, called with ``(name, payload)``; the
worker looks the name up in the registry. A failed run raises ``arq.Retry`` with our backoff until
the spec's ``max_attempts`` is used; the last failure is stored as a ``failed`` ``JobRecord``
(``runner="redis"``, payload kept so it can be run again) and the job ends.

Jobs are stored as JSON rather than arq's default pickle (a Redis write must not be able to run
code in the worker), and the payload is hidden from arq's log lines and left out of the results it
keeps: payloads may hold patient data. Deferred jobs live in Redis, so they outlive the process
that enqueued them. arq drops a job that has not started ``expires_after`` past its time
(logged by arq as ``job … expired``); keep workers running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from arq import ArqRedis, Retry, create_pool
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Worker, func
from redis.exceptions import RedisError

from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.jobs.spec import (
    Clock,
    JobContext,
    JobFailed,
    JobRegistry,
    QueueUnavailable,
    UnknownJob,
    describe_failure,
    utc_now,
)

logger = logging.getLogger(__name__)

ARQ_FUNCTION = "tsunagu_job"
QUEUE_NAME = "tsunagu:jobs"
RUNNER_NAME = "redis"
_KEY_NAMESPACE = uuid.UUID("6f1d3c1e-5a8b-4c0e-9a57-7d1f2b7e4a10")
# Runs arq may start beyond our max_attempts: a worker stopped mid-job counts a try in arq.
_INTERRUPTED_RUNS = 3
_TIMEOUT_MARGIN = 10.0
RESULT_RETENTION = timedelta(days=1)  # how long arq remembers a finished job's id


@dataclass(frozen=True, slots=True)
class FinalFailure:
    """A job that used its last attempt, as handed to ``record_failure``."""

    job_id: str
    name: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    error: str
    failed_at: datetime


RecordFailure = Callable[[FinalFailure], Awaitable[None]]


def job_id_for(key: str | None) -> str:
    """The arq job id: derived from ``key`` (so a repeat is recognised), else random. A UUID, so
    a failed job's record can use it as its primary key."""
    return str(uuid.uuid5(_KEY_NAMESPACE, key) if key is not None else uuid.uuid4())


class _Redacted(dict[str, Any]):
    """A payload whose repr hides its content: arq logs every job's arguments with ``repr``."""

    def __repr__(self) -> str:
        return "<payload>"


def dump_job(data: dict[str, Any]) -> bytes:
    """arq's serializer. Results (they have ``"r"``) keep no arguments and only the error type."""
    if "r" in data:
        result = data["r"]
        data = {**data, "a": [], "k": {}}
        data["r"] = type(result).__name__ if isinstance(result, BaseException) else None
    return json.dumps(data, separators=(",", ":")).encode()


def load_job(raw: bytes) -> dict[str, Any]:
    """arq's deserializer: the inverse of :func:`dump_job`, payloads wrapped in ``_Redacted``."""
    data: dict[str, Any] = json.loads(raw)
    data["a"] = tuple(_Redacted(a) if isinstance(a, dict) else a for a in data.get("a", ()))
    return data


async def record_failed_job(failure: FinalFailure) -> None:
    """Default ``record_failure``: a ``failed`` ``JobRecord`` row with ``runner="redis"``."""
    await JobRecord.update_or_create(
        id=uuid.UUID(failure.job_id),
        defaults={
            "name": failure.name,
            "payload": dict(failure.payload),
            "status": JobStatus.FAILED,
            "run_at": failure.failed_at,
            "attempts": failure.attempts,
            "max_attempts": failure.max_attempts,
            "last_error": failure.error,
            "runner": RUNNER_NAME,
            "lease_until": None,
            "finished_at": failure.failed_at,
        },
    )


class ArqJobQueue:
    """:class:`~.queue.JobQueue` on Redis through arq. Connects on first use; :meth:`close` it.

    ``key`` dedupes while the job is queued and for :data:`RESULT_RETENTION` after it ran. Each
    Redis round trip is bounded by ``timeout`` seconds; a Redis that does not answer raises
    :class:`~.spec.QueueUnavailable`.
    """

    def __init__(
        self,
        redis_url: str,
        registry: JobRegistry,
        *,
        clock: Clock = utc_now,
        timeout: float = 5.0,
        expires_after: timedelta = timedelta(days=7),
    ) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._registry = registry
        self._clock = clock
        self._timeout = timeout
        self._expires_after = expires_after
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> ArqRedis:
        async with self._lock:
            if self._pool is None:
                async with asyncio.timeout(self._timeout):
                    self._pool = await create_pool(
                        self._settings,
                        job_serializer=dump_job,
                        job_deserializer=load_job,
                        default_queue_name=QUEUE_NAME,
                    )
            return self._pool

    async def enqueue(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        run_at: datetime | None = None,
        key: str | None = None,
    ) -> str:
        request = self._registry.request(name, payload, run_at=run_at, key=key)
        job_id = job_id_for(key)
        delay = max(timedelta(0), (run_at - self._clock()) if run_at else timedelta(0))
        try:
            pool = await self._connection()
            async with asyncio.timeout(self._timeout):
                await pool.enqueue_job(
                    ARQ_FUNCTION,
                    request.spec.name,
                    request.payload,
                    _job_id=job_id,
                    _defer_until=run_at,
                    _expires=delay + self._expires_after,
                )  # None when the key is already queued: the first job stands
        except (RedisError, OSError, TimeoutError) as exc:
            raise QueueUnavailable(f"Redis did not take the job ({type(exc).__name__})") from exc
        return job_id

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()


def _dispatcher(
    registry: JobRegistry, record_failure: RecordFailure, clock: Clock
) -> WorkerCoroutine:
    async def tsunagu_job(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
        name: str
        payload: dict[str, Any]
        name, payload = args  # enqueued by ArqJobQueue as (name, payload)
        job_id: str = ctx["job_id"]
        attempt: int = ctx["job_try"]
        try:
            spec = registry.get(name)
        except UnknownJob as exc:
            await _give_up(record_failure, job_id, name, payload, attempt, attempt, exc, clock())
        context = JobContext(job_id=job_id, attempt=attempt, now=clock())
        try:
            async with asyncio.timeout(spec.timeout) as deadline:
                await spec.handler(dict(payload), context)
        except Exception as raised:
            timed_out = TimeoutError(f"ran longer than {spec.timeout:g}s")
            error = timed_out if deadline.expired() else raised
            if attempt < spec.max_attempts:
                delay = spec.retry_delay(attempt)
                logger.error(
                    "job %s (%s) failed on attempt %d of %d (%s); retry in %ss",
                    job_id, name, attempt, spec.max_attempts, type(error).__name__,
                    delay.total_seconds(),
                )  # fmt: skip
                raise Retry(defer=delay) from None
            await _give_up(
                record_failure, job_id, name, payload, attempt, spec.max_attempts, error, clock()
            )

    return tsunagu_job


async def _give_up(
    record_failure: RecordFailure,
    job_id: str,
    name: str,
    payload: dict[str, Any],
    attempts: int,
    max_attempts: int,
    exc: BaseException,
    now: datetime,
) -> NoReturn:
    """Record the final failure and end the arq job as failed (``JobFailed``, no payload)."""
    failure = FinalFailure(
        job_id, name, dict(payload), attempts, max_attempts, describe_failure(exc), now
    )
    try:
        await record_failure(failure)
    except Exception as record_exc:
        # Keep the job in Redis rather than lose it; arq runs it again until its own max_tries.
        logger.error(
            "job %s (%s): could not record its failure (%s)",
            job_id, name, type(record_exc).__name__,
        )  # fmt: skip
        raise Retry(defer=timedelta(seconds=30)) from None
    logger.error("job %s (%s) failed for good after %d attempts", job_id, name, attempts)
    raise JobFailed(f"job {job_id} ({name}) failed after {attempts} attempts") from None


def worker_settings(
    registry: JobRegistry,
    redis_url: str,
    *,
    record_failure: RecordFailure = record_failed_job,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` that run ``registry``'s jobs from Redis.

    arq's own ``max_tries`` and ``job_timeout`` sit above every spec's, so our retry policy and
    timeouts always act first.
    """
    max_attempts = max((spec.max_attempts for spec in registry), default=1)
    timeout = max((spec.timeout for spec in registry), default=1.0) + _TIMEOUT_MARGIN
    return {
        "functions": [
            func(
                _dispatcher(registry, record_failure, clock),
                name=ARQ_FUNCTION,
                max_tries=max_attempts + _INTERRUPTED_RUNS,
                timeout=timeout,
            )
        ],
        "queue_name": QUEUE_NAME,
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "job_serializer": dump_job,
        "job_deserializer": load_job,
        "max_tries": max_attempts + _INTERRUPTED_RUNS,
        "job_timeout": timeout,
        "keep_result": RESULT_RETENTION,
        "log_results": False,
    }


def build_worker(
    registry: JobRegistry,
    redis_url: str,
    *,
    record_failure: RecordFailure = record_failed_job,
    clock: Clock = utc_now,
    burst: bool = False,
    poll_delay: float = 0.5,
    handle_signals: bool = False,
) -> Worker:
    """An arq ``Worker`` for ``registry``. Call it inside the running event loop; run it with
    ``await worker.async_run()`` (or ``main()``) and always ``await worker.close()`` after."""
    return Worker(
        **worker_settings(registry, redis_url, record_failure=record_failure, clock=clock),
        burst=burst,
        poll_delay=poll_delay,
        handle_signals=handle_signals,
    )
