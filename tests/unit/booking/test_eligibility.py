"""Who may book a menu: revisit menus and the online first-visit rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.eligibility import (
    ONLINE_RULES,
    PRE_CONSULTATION_VALID_DAYS,
    MenuTerms,
    VisitHistory,
    refusal,
    rules_shown,
    unknown_rules,
)
from booking.models import VisitKind, VisitMode

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
NEW = VisitHistory()
KNOWN = VisitHistory(has_visited=True)
ONLINE_FIRST = MenuTerms(
    VisitMode.ONLINE,
    VisitKind.FIRST,
    ("pre_consultation_required", "no_restricted_drugs_at_first_visit"),
)


def reason(terms: MenuTerms, history: VisitHistory) -> str | None:
    refused = refusal(terms, history, now=NOW)
    return refused.reason if refused else None


def test_a_revisit_menu_is_for_patients_who_have_visited() -> None:
    revisit = MenuTerms(VisitMode.IN_PERSON, VisitKind.REVISIT)
    assert reason(revisit, NEW) == "revisit_only"
    assert reason(revisit, KNOWN) is None
    # a pre-consultation alone does not make someone a patient of the clinic
    assert reason(revisit, VisitHistory(last_pre_consultation=NOW)) == "revisit_only"


def test_a_first_visit_menu_stays_open_to_everyone() -> None:
    first = MenuTerms(VisitMode.IN_PERSON, VisitKind.FIRST)
    assert reason(first, NEW) is None
    assert reason(first, KNOWN) is None


def test_pre_consultation_required_needs_a_recent_pre_consultation_or_a_known_patient() -> None:
    assert reason(ONLINE_FIRST, NEW) == "pre_consultation_required"
    assert reason(ONLINE_FIRST, KNOWN) is None
    recent = VisitHistory(last_pre_consultation=NOW - timedelta(days=3))
    assert reason(ONLINE_FIRST, recent) is None
    stale = VisitHistory(
        last_pre_consultation=NOW - timedelta(days=PRE_CONSULTATION_VALID_DAYS, minutes=1)
    )
    assert reason(ONLINE_FIRST, stale) == "pre_consultation_required"


def test_existing_patients_only_refuses_new_patients_online_but_not_in_person() -> None:
    online = MenuTerms(VisitMode.ONLINE, VisitKind.EITHER, ("existing_patients_only",))
    assert reason(online, NEW) == "existing_patients_only"
    assert reason(online, KNOWN) is None
    both = MenuTerms(VisitMode.BOTH, VisitKind.EITHER, ("existing_patients_only",))
    assert reason(both, NEW) == "existing_patients_only"
    in_person = MenuTerms(VisitMode.IN_PERSON, VisitKind.EITHER, ("existing_patients_only",))
    assert reason(in_person, NEW) is None  # online rules bind online visits only


def test_the_pre_consultation_menu_itself_is_open() -> None:
    pre = MenuTerms(VisitMode.ONLINE, VisitKind.FIRST, ("pre_consultation_required",), True)
    assert reason(pre, NEW) is None


def test_refusals_speak_both_languages() -> None:
    for terms in (ONLINE_FIRST, MenuTerms(VisitMode.IN_PERSON, VisitKind.REVISIT)):
        refused = refusal(terms, NEW, now=NOW)
        assert refused is not None
        assert refused.status == 422
        assert refused.message_ja
        assert refused.message_en
        assert refused.message_ja != refused.message_en


def test_rule_catalogue() -> None:
    assert unknown_rules(["existing_patients_only", "bogus"]) == ["bogus"]
    shown = rules_shown(["no_restricted_drugs_at_first_visit", "pre_consultation_required"])
    assert [rule.code for rule in shown] == [
        "pre_consultation_required",
        "no_restricted_drugs_at_first_visit",
    ]
    assert not ONLINE_RULES["no_restricted_drugs_at_first_visit"].enforced


@given(
    mode=st.sampled_from(list(VisitMode)),
    kind=st.sampled_from(list(VisitKind)),
    rules=st.sets(st.sampled_from(sorted(ONLINE_RULES))),
    pre=st.booleans(),
    visited=st.booleans(),
    days_ago=st.one_of(st.none(), st.integers(0, 400)),
)
def test_a_patient_who_has_visited_is_never_refused(
    mode: VisitMode,
    kind: VisitKind,
    rules: set[str],
    pre: bool,
    visited: bool,
    days_ago: int | None,
) -> None:
    terms = MenuTerms(mode, kind, tuple(sorted(rules)), pre)
    last = None if days_ago is None else NOW - timedelta(days=days_ago)
    history = VisitHistory(has_visited=visited, last_pre_consultation=last)
    refused = refusal(terms, history, now=NOW)
    if visited:
        assert refused is None
    if kind is VisitKind.REVISIT and not visited:
        assert refused is not None


@pytest.mark.parametrize("code", sorted(ONLINE_RULES))
def test_every_rule_has_text_in_both_languages(code: str) -> None:
    rule = ONLINE_RULES[code]
    assert rule.text_ja
    assert rule.text_en
    assert rule.code == code
