"""The audit log: who did what to which record, append-only and hash-chained."""

from patient_portal.audit.chain import (
    GENESIS,
    ChainChecker,
    ChainProblem,
    EntryView,
    entry_hash,
    verify_chain,
)
from patient_portal.audit.models import Outcome
from patient_portal.audit.service import (
    ACTOR_KINDS,
    EXPORT_ACTION,
    PURGE_ACTION,
    RETENTION_DEFAULT,
    AuditEvent,
    AuditLog,
    VerifyReport,
)

__all__ = [
    "ACTOR_KINDS",
    "EXPORT_ACTION",
    "GENESIS",
    "PURGE_ACTION",
    "RETENTION_DEFAULT",
    "AuditEvent",
    "AuditLog",
    "ChainChecker",
    "ChainProblem",
    "EntryView",
    "Outcome",
    "VerifyReport",
    "entry_hash",
    "verify_chain",
]
