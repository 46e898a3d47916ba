"""The Redis runner against real Redis (db 15) and a real database, through arq's own worker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio
from arq.worker import Worker

from patient_portal.jobs import (
    ArqJobQueue,
    JobContext,
    JobRegistry,
    JobSpec,
    QueueUnavailable,
    build_worker,
    run_worker,
    running_jobs,
    utc_now,
)
from patient_portal.jobs.arq_queue import QUEUE_NAME
from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.settings import JobRunner, Secret, Settings

pytestmark = [
    pytest.mark.redis,
    # arq 0.28's Worker.close() calls redis-py's deprecated Redis.close().
    pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning"),
]

PHONE = "090-1234-5678"
SECRET = f"患者 山田花子 {PHONE}"


@dataclass
class Recorder:
    """A handler that remembers its calls and fails its first ``failures`` runs."""

    failures: int = 0
    calls: list[tuple[dict[str, Any], JobContext]] = field(default_factory=list)

    async def __call__(self, payload: dict[str, Any], ctx: JobContext) -> None:
        self.calls.append((payload, ctx))
        if len(self.calls) <= self.failures:
            raise ValueError("flaky")

    @property
    def attempts(self) -> list[int]:
        return [ctx.attempt for _, ctx in self.calls]


def registry_with(handler: Recorder, *, max_attempts: int = 3) -> JobRegistry:
    registry = JobRegistry()
    registry.register(
        JobSpec(
            "remind",
            handler,
            max_attempts=max_attempts,
            backoff_base=timedelta(milliseconds=10),
            backoff_cap=timedelta(milliseconds=20),
        )
    )
    return registry


async def enqueue(redis_url: str, registry: JobRegistry, *jobs: dict[str, Any]) -> list[str]:
    """Enqueue each job from a queue that is closed afterwards, like a web process ending."""
    queue = ArqJobQueue(redis_url, registry)
    try:
        return [await queue.enqueue(**job) for job in jobs]
    finally:
        await queue.close()


async def run_burst(registry: JobRegistry, redis_url: str) -> Worker:
    """A fresh worker that runs until the queue is empty (deferred jobs included)."""
    worker = build_worker(registry, redis_url, burst=True, poll_delay=0.01)
    try:
        async with asyncio.timeout(10):
            await worker.main()
    finally:
        await worker.close()
    return worker


async def test_an_enqueued_job_runs_in_the_worker(db: Settings, redis_url: str) -> None:
    handler = Recorder()
    registry = registry_with(handler)
    [job_id, again, other] = await enqueue(
        redis_url,
        registry,
        {"name": "remind", "payload": {"booking_id": 7}, "key": "remind:7"},
        {"name": "remind", "payload": {"booking_id": 7}, "key": "remind:7"},
        {"name": "remind", "payload": {"booking_id": 8}},
    )
    assert job_id == again != other

    worker = await run_burst(registry, redis_url)

    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (2, 0, 0)
    runs = {ctx.job_id: (payload, ctx.attempt) for payload, ctx in handler.calls}
    assert runs == {job_id: ({"booking_id": 7}, 1), other: ({"booking_id": 8}, 1)}
    assert await JobRecord.all().count() == 0


async def test_a_failed_run_is_retried_until_it_succeeds(db: Settings, redis_url: str) -> None:
    handler = Recorder(failures=2)
    registry = registry_with(handler)
    await enqueue(redis_url, registry, {"name": "remind", "payload": {}})

    worker = await run_burst(registry, redis_url)

    assert handler.attempts == [1, 2, 3]
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 2, 0)
    assert await JobRecord.all().count() == 0


async def test_the_last_failure_is_recorded_as_a_failed_job(
    db: Settings, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Our loggers and arq's at every level. (The database drivers log query parameters at
    # DEBUG; Tsunagu's logging setup must keep them above that.)
    caplog.set_level(logging.DEBUG, logger="patient_portal")
    caplog.set_level(logging.DEBUG, logger="arq")
    handler = Recorder(failures=99)
    registry = registry_with(handler, max_attempts=3)
    [job_id] = await enqueue(redis_url, registry, {"name": "remind", "payload": {"note": SECRET}})

    worker = await run_burst(registry, redis_url)

    assert handler.attempts == [1, 2, 3]
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (0, 2, 1)
    row = await JobRecord.get(id=uuid.UUID(job_id))
    assert (row.status, row.runner, row.attempts, row.max_attempts) == (
        JobStatus.FAILED,
        "redis",
        3,
        3,
    )
    assert row.last_error == "ValueError: flaky"
    assert row.payload == {"note": SECRET}  # kept, so it can be run again
    assert "山田" not in caplog.text  # arq logs job arguments; ours are redacted
    assert PHONE not in caplog.text
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert PHONE.encode() not in b"".join(
            [await client.get(k) or b"" for k in await client.keys("arq:*")]
        )
    finally:
        await client.aclose()  # the result arq keeps has no arguments


async def test_a_job_the_worker_does_not_know_is_recorded_as_failed(
    db: Settings, redis_url: str
) -> None:
    [job_id] = await enqueue(
        redis_url, registry_with(Recorder()), {"name": "remind", "payload": {}}
    )
    other = JobRegistry()
    other.register(JobSpec("something_else", Recorder()))

    worker = await run_burst(other, redis_url)

    assert worker.jobs_failed == 1
    row = await JobRecord.get(id=uuid.UUID(job_id))
    assert row.status is JobStatus.FAILED
    assert row.last_error.startswith("UnknownJob")


async def test_a_deferred_job_outlives_the_process_that_enqueued_it(
    db: Settings, redis_url: str
) -> None:
    handler = Recorder()
    registry = registry_with(handler)
    run_at = utc_now() + timedelta(milliseconds=300)
    [job_id] = await enqueue(
        redis_url, registry, {"name": "remind", "payload": {"booking_id": 7}, "run_at": run_at}
    )
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.zcard(QUEUE_NAME) == 1  # held by Redis alone now
    finally:
        await client.aclose()

    await run_burst(registry, redis_url)  # waits, bounded, until the job is due

    [(payload, ctx)] = handler.calls
    assert (payload, ctx.job_id) == ({"booking_id": 7}, job_id)
    assert ctx.now >= run_at


def redis_settings(settings: Settings, redis_url: str) -> Settings:
    return replace(settings, redis_url=Secret(redis_url), job_runner=JobRunner.REDIS)


async def test_running_jobs_gives_the_arq_queue_with_the_redis_runner(
    db: Settings, redis_url: str
) -> None:
    handler = Recorder()
    registry = registry_with(handler)
    async with running_jobs(redis_settings(db, redis_url), registry) as queue:
        assert isinstance(queue, ArqJobQueue)
        job_id = await queue.enqueue("remind", {})

    await run_burst(registry, redis_url)

    assert [ctx.job_id for _, ctx in handler.calls] == [job_id]


async def test_run_worker_runs_redis_jobs_until_cancelled(
    settings: Settings, redis_url: str
) -> None:
    ran = asyncio.Event()

    async def remind(payload: dict[str, Any], ctx: JobContext) -> None:
        ran.set()

    registry = JobRegistry()
    registry.register(JobSpec("remind", remind))
    await enqueue(redis_url, registry, {"name": "remind", "payload": {}})

    worker = asyncio.create_task(
        run_worker(redis_settings(settings, redis_url), registry, handle_signals=False)
    )
    async with asyncio.timeout(10):
        await ran.wait()
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker


async def test_an_unreachable_redis_is_reported_as_queue_unavailable() -> None:
    queue = ArqJobQueue("redis://127.0.0.1:1/0", registry_with(Recorder()), timeout=0.2)
    try:
        with pytest.raises(QueueUnavailable, match="Redis did not take the job"):
            await queue.enqueue("remind", {})
    finally:
        await queue.close()
