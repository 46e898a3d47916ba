"""The one place that decides who may do what: role × action × resource. Pure, no I/O.

Pages, the API and websockets all ask :func:`decide`; a handler never compares roles itself.
Two rules sit above the role table:

- **clinic isolation** — staff act only on resources of their own clinic;
- **own records only** — a patient acts only on their own record and their family's.

A platform operator runs the platform and sees no patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    PATIENT = "patient"
    RECEPTIONIST = "receptionist"
    NURSE = "nurse"
    DOCTOR = "doctor"
    CLINIC_ADMIN = "clinic_admin"
    PLATFORM_OPERATOR = "platform_operator"


class Action(StrEnum):
    PATIENT_READ = "patient.read"
    PATIENT_WRITE = "patient.write"
    PATIENT_LIST = "patient.list"
    FAMILY_ADD = "family.add"
    STAFF_LIST = "staff.list"
    STAFF_INVITE = "staff.invite"
    STAFF_DISABLE = "staff.disable"
    STAFF_RESET_MFA = "staff.reset_mfa"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    CLINIC_READ = "clinic.read"
    APPOINTMENT_BOOK = "appointment.book"
    APPOINTMENT_READ = "appointment.read"
    APPOINTMENT_CANCEL = "appointment.cancel"
    SCHEDULE_READ = "schedule.read"
    APPOINTMENT_MANAGE = "appointment.manage"
    CLINIC_MANAGE = "clinic.manage"  # profile, practitioners, menus, hours, exceptions
    FORM_MANAGE = "form.manage"  # write, test and publish questionnaires
    FORM_ANSWER = "form.answer"  # a patient answers the questionnaire of their appointment
    FORM_RESPONSE_READ = "form.response.read"  # read a patient's answers (clinical staff)
    RECORDING_READ = "recording.read"  # watch a consult's consented recording (clinical staff)


STAFF_ROLES: Final = frozenset({Role.RECEPTIONIST, Role.NURSE, Role.DOCTOR, Role.CLINIC_ADMIN})

# Which roles may attempt an action at all; the scope rules below still apply.
ALLOWED: Final[dict[Action, frozenset[Role]]] = {
    Action.PATIENT_READ: frozenset({Role.PATIENT, *STAFF_ROLES}),
    Action.PATIENT_WRITE: frozenset({Role.PATIENT, Role.RECEPTIONIST, Role.CLINIC_ADMIN}),
    Action.PATIENT_LIST: STAFF_ROLES,
    Action.FAMILY_ADD: frozenset({Role.PATIENT}),
    Action.STAFF_LIST: frozenset({Role.CLINIC_ADMIN}),
    Action.STAFF_INVITE: frozenset({Role.CLINIC_ADMIN}),
    Action.STAFF_DISABLE: frozenset({Role.CLINIC_ADMIN}),
    Action.STAFF_RESET_MFA: frozenset({Role.CLINIC_ADMIN}),
    Action.AUDIT_READ: frozenset({Role.CLINIC_ADMIN}),
    Action.AUDIT_EXPORT: frozenset({Role.CLINIC_ADMIN}),
    Action.CLINIC_READ: frozenset({*STAFF_ROLES, Role.PLATFORM_OPERATOR}),
    Action.APPOINTMENT_BOOK: frozenset({Role.PATIENT}),
    Action.APPOINTMENT_READ: frozenset({Role.PATIENT, *STAFF_ROLES}),
    Action.APPOINTMENT_CANCEL: frozenset({Role.PATIENT, Role.RECEPTIONIST, Role.CLINIC_ADMIN}),
    Action.SCHEDULE_READ: STAFF_ROLES,
    Action.APPOINTMENT_MANAGE: STAFF_ROLES,
    Action.CLINIC_MANAGE: frozenset({Role.CLINIC_ADMIN}),
    Action.FORM_MANAGE: frozenset({Role.CLINIC_ADMIN, Role.DOCTOR}),
    Action.FORM_ANSWER: frozenset({Role.PATIENT}),
    Action.FORM_RESPONSE_READ: frozenset(
        {Role.PATIENT, Role.DOCTOR, Role.NURSE, Role.CLINIC_ADMIN}
    ),
    Action.RECORDING_READ: frozenset({Role.DOCTOR, Role.NURSE, Role.CLINIC_ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking. Staff carry their clinic; a patient carries the records they hold."""

    kind: str  # "patient" | "staff"
    id: str
    role: Role
    clinic_id: str = ""
    patient_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"


@dataclass(frozen=True, slots=True)
class Resource:
    """What is asked about. ``clinic_ids``: the clinics the resource belongs to (a patient may be
    registered at several); ``patient_id``: the patient record it is, or belongs to."""

    kind: str
    id: str = ""
    clinic_ids: frozenset[str] = field(default_factory=frozenset)
    patient_id: str = ""
    account_id: str = ""  # the patient account it belongs to (a hold has no patient yet)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def decide(principal: Principal, action: Action, resource: Resource) -> Decision:
    """Allow ``action`` on ``resource`` for ``principal``, or say why not."""
    if principal.role not in ALLOWED[action]:
        return Decision(False, f"role {principal.role} may not {action}")
    if principal.role is Role.PATIENT:
        if action is Action.FAMILY_ADD:
            return Decision(True, "a patient adds to their own family")
        if resource.patient_id and resource.patient_id in principal.patient_ids:
            return Decision(True, "own or family record")
        if resource.account_id and resource.account_id == principal.id:
            return Decision(True, "the account's own")
        return Decision(False, "not the patient's own or family record")
    if principal.role is Role.PLATFORM_OPERATOR:
        return Decision(True, "platform operation")
    if principal.clinic_id and principal.clinic_id in resource.clinic_ids:
        return Decision(True, "same clinic")
    return Decision(False, "another clinic's resource")
