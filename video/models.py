"""Tortoise models of video: one consult room per online appointment.

The room's state (who is waiting, admitted, connected; see :mod:`video.room`) lives in the
database, not in one worker's memory, so a patient and a doctor on different ``serve`` workers
share it and a worker restart loses nothing. ``version`` makes every change a compare-and-set:
two workers changing the same room at once cannot both win. No patient data is stored here —
ids and states only.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class ConsultRoom(Model):
    """The consult room of an online appointment."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(unique=True)
    clinic_id = fields.UUIDField(db_index=True)
    state: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    version = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "video_consult_room"


class PrecallCheck(Model):
    """The outcome of one pre-call check, stored so any worker can answer for it."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(db_index=True)
    participant = fields.CharField(max_length=64)
    status = fields.CharField(max_length=10, default="running")  # running | done
    level = fields.CharField(max_length=24, null=True)  # video.precall.Level
    figures: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    advice: fields.JSONField[list[dict[str, str]]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "video_precall_check"


class RecordingConsent(Model):
    """A recording decision in a consult (asked, agreed, declined, withdrawn) kept as consent."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(db_index=True)
    clinic_id = fields.UUIDField()
    participant = fields.CharField(max_length=64)  # the room's participant id (role:record id)
    decision = fields.CharField(max_length=10)  # request | consent | decline | withdraw
    segment = fields.IntField()
    decided_at = fields.DatetimeField()

    class Meta:
        table = "video_recording_consent"


class ConsultRecording(Model):
    """The recording of one participant in a consented recording segment, kept in a sealed file."""

    id = fields.UUIDField(primary_key=True)
    appointment_id = fields.UUIDField(db_index=True)
    clinic_id = fields.UUIDField(db_index=True)
    participant = fields.CharField(max_length=64)
    segment = fields.IntField()
    status = fields.CharField(max_length=10, default="recording")  # recording | done | failed
    end_reason = fields.CharField(max_length=16, null=True)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    seconds = fields.FloatField(default=0.0)
    video_frames = fields.IntField(default=0)
    audio_frames = fields.IntField(default=0)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    file_bytes = fields.BigIntField(default=0)  # the sealed file's size on disk

    class Meta:
        table = "video_consult_recording"
