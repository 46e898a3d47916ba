"""The audit log: append-only, hash-chained. See :mod:`patient_portal.audit.chain`."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditEntry(Model):
    """One event, numbered by ``seq`` without gaps and sealed by ``hash``.

    ``hash`` covers every other column and ``prev_hash``, so changing, deleting or reordering an
    entry breaks the chain. (Tortoise copies a model's first docstring line into the schema as
    the table comment and cannot take a semicolon there.)
    """

    # A non-generated integer primary key trips Tortoise's migration autodetector (it keeps
    # seeing a change), so the key is a UUID and ``seq`` is unique beside it.
    id = fields.UUIDField(primary_key=True)
    seq = fields.BigIntField(unique=True)
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, default="")
    actor_role = fields.CharField(max_length=24, default="")
    clinic_id = fields.CharField(max_length=36, default="", db_index=True)
    action = fields.CharField(max_length=64, db_index=True)
    target_kind = fields.CharField(max_length=32, default="")
    target_id = fields.CharField(max_length=64, default="")
    outcome = fields.CharEnumField(Outcome, max_length=8)
    ip = fields.CharField(max_length=45, default="")
    user_agent = fields.CharField(max_length=200, default="")
    detail: fields.JSONField[dict[str, object]] = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "portal_audit_entry"


class AuditHead(Model):
    """The single row that names the newest entry and the anchor the chain starts from.

    Appending locks it, so the chain never forks, and truncating the newest entries is detected.
    """

    id = fields.CharField(max_length=16, primary_key=True)  # always "head"
    last_seq = fields.BigIntField(default=0)
    last_hash = fields.CharField(max_length=64)
    anchor_seq = fields.BigIntField(default=0)
    anchor_hash = fields.CharField(max_length=64)

    class Meta:
        table = "portal_audit_head"
