"""Who may book a menu: first visit or revisit, and the online first-visit rules.

The MHLW guideline on online consultations (オンライン診療の適切な実施に関する指針) lets a clinic
see a new patient online only under conditions. A menu lists the rules it applies by code
(:data:`ONLINE_RULES`). Each rule is shown to the patient; the rules the system can check from
the clinic's own records are also enforced when the booking is confirmed:

- ``existing_patients_only`` — the patient has completed a visit at this clinic before;
- ``pre_consultation_required`` — the patient has completed a pre-consultation (診療前相談) here
  within :data:`PRE_CONSULTATION_VALID_DAYS` days, or is already a patient of the clinic (the
  doctor then knows them; the guideline asks for a pre-consultation when they do not);
- ``no_restricted_drugs_at_first_visit`` — what the doctor may prescribe is the doctor's
  decision in the consult: shown, not enforced here.

A revisit (再診) menu is for patients who have completed a visit at the clinic. A first-visit
(初診) menu stays open to everyone: a returning patient with a new complaint is a first visit too.

Everything here is pure: the caller gathers the :class:`VisitHistory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from booking.errors import NotEligible
from booking.models import VisitKind, VisitMode

PRE_CONSULTATION_VALID_DAYS: Final = 30


@dataclass(frozen=True, slots=True)
class OnlineRule:
    """A rule an online first-visit menu applies: what the patient is told, and if we enforce it."""

    code: str
    text_ja: str
    text_en: str
    enforced: bool


ONLINE_RULES: Final[dict[str, OnlineRule]] = {
    rule.code: rule
    for rule in (
        OnlineRule(
            "pre_consultation_required",
            "初めての方は、先に診療前相談(オンライン)を受けてからご予約ください。",
            "New patients need a pre-consultation (online) before booking this visit.",
            enforced=True,
        ),
        OnlineRule(
            "existing_patients_only",
            "当院を受診したことのある方のみご予約いただけます。",
            "Only patients who have visited this clinic before can book this visit.",
            enforced=True,
        ),
        OnlineRule(
            "no_restricted_drugs_at_first_visit",
            "初診では麻薬・向精神薬などは処方できず、処方は原則8日分までです。",
            "At a first visit, narcotics and psychotropics cannot be prescribed, and "
            "prescriptions are limited to 8 days.",
            enforced=False,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class VisitHistory:
    """What the clinic's records say about one patient, for eligibility."""

    has_visited: bool = False  # a completed visit (any menu) at this clinic
    last_pre_consultation: datetime | None = None  # when their latest completed 診療前相談 was


@dataclass(frozen=True, slots=True)
class MenuTerms:
    """The parts of a menu eligibility looks at."""

    mode: VisitMode
    visit_kind: VisitKind
    online_rules: tuple[str, ...] = ()
    pre_consultation: bool = False


def unknown_rules(codes: list[str] | tuple[str, ...]) -> list[str]:
    """The codes that are not rules we know (for validating a menu)."""
    return [code for code in codes if code not in ONLINE_RULES]


def rules_shown(codes: list[str] | tuple[str, ...]) -> list[OnlineRule]:
    """The rules of a menu, in the catalogue's order, for the patient to read."""
    return [rule for code, rule in ONLINE_RULES.items() if code in codes]


def refusal(terms: MenuTerms, history: VisitHistory, *, now: datetime) -> NotEligible | None:
    """Why this patient may not book this menu, or None when they may."""
    if terms.visit_kind is VisitKind.REVISIT and not history.has_visited:
        return NotEligible.revisit_only()
    online = terms.mode in (VisitMode.ONLINE, VisitMode.BOTH)
    if not online or terms.pre_consultation:
        return None
    if "existing_patients_only" in terms.online_rules and not history.has_visited:
        return NotEligible.existing_patients_only()
    if "pre_consultation_required" in terms.online_rules and not history.has_visited:
        recent = now - timedelta(days=PRE_CONSULTATION_VALID_DAYS)
        last = history.last_pre_consultation
        if last is None or last < recent:
            return NotEligible.pre_consultation_required()
    return None
