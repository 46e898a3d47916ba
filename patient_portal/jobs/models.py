"""The job table: every in-process job, and the final record of any job that failed for good."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRecord(Model):
    """One job. ``key`` (optional, unique) makes enqueueing idempotent.

    A ``running`` job whose ``lease_until`` has passed belonged to a process that died; the runner
    takes it back. ``last_error`` holds the exception type and a short message, never a payload.
    """

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=120)
    key = fields.CharField(max_length=200, unique=True, null=True)
    payload: fields.JSONField[dict[str, object]] = fields.JSONField()
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.PENDING)
    run_at = fields.DatetimeField(db_index=True)
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField()
    lease_until = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=500, default="")
    runner = fields.CharField(max_length=16, default="inprocess")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "portal_job"
        indexes = (("status", "run_at"),)
