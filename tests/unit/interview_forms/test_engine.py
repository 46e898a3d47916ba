"""The engine beyond the shared vectors: submit, drafts, resuming, pruning, outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from interview_forms import answers_from_response, evaluate, from_fhir, prune, submit
from interview_forms.validate import response_problems

from .vectors import VECTORS

JST = timezone(timedelta(hours=9))


def vector(name: str) -> dict[str, object]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


REPEATING = from_fhir(vector("repeating")["questionnaire"])
OUTCOMES = from_fhir(vector("outcomes")["questionnaire"])


def test_submit_drops_disabled_answers_and_keeps_repeating_instances_apart() -> None:
    answers = {
        "has_meds": True,
        "meds": [
            {"med_name": "ロキソニン", "daily": True, "times": 3},
            {"med_name": "ムコダイン", "daily": False, "times": 2},
        ],
    }
    result = submit(REPEATING, answers, authored=datetime(2026, 4, 1, 9, 30, tzinfo=JST))
    assert result.ok
    assert result.dropped == ("meds[1]/times",)
    response = result.response
    assert response is not None
    assert response_problems(response) == []
    assert response["status"] == "completed"
    assert response["authored"] == "2026-04-01T09:30:00+09:00"
    meds = [item for item in response["item"] if item["linkId"] == "meds"]
    assert len(meds) == 2
    assert [i["linkId"] for i in meds[1]["item"]] == ["med_name", "daily"]
    assert result.structured == {
        "has_meds": [True],
        "meds[0]/med_name": ["ロキソニン"],
        "meds[0]/daily": [True],
        "meds[0]/times": [3],
        "meds[1]/med_name": ["ムコダイン"],
        "meds[1]/daily": [False],
    }


def test_errors_in_both_languages_and_no_response() -> None:
    result = submit(REPEATING, {"has_meds": True, "meds": [{"daily": True, "times": 0}]})
    assert not result.ok
    assert result.response is None
    by_code = {e.code: e for e in result.errors}
    assert set(by_code) == {"required", "below-min"}
    assert by_code["below-min"].key == "meds[0]/times"
    assert "1 以上" in by_code["below-min"].message_ja
    assert "1 or more" in by_code["below-min"].message_en


def test_a_draft_needs_no_required_answers() -> None:
    result = submit(REPEATING, {"has_meds": True, "meds": [{}]}, complete=False)
    assert result.ok
    assert result.response is not None
    assert result.response["status"] == "in-progress"
    assert "item" in result.response  # has_meds


def test_authored_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        submit(REPEATING, {"has_meds": False}, authored=datetime(2026, 4, 1))  # noqa: DTZ001


def test_resuming_from_a_saved_response_gives_the_same_response() -> None:
    answers = {
        "has_meds": True,
        "meds": [{"med_name": "A", "daily": True, "times": 2}, {"med_name": "B"}],
    }
    first = submit(REPEATING, answers, authored=datetime(2026, 1, 1, tzinfo=UTC))
    assert first.response is not None
    again = submit(
        REPEATING,
        answers_from_response(REPEATING, first.response),
        authored=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert again.response == first.response


def test_prune_removes_exactly_the_disabled_answers() -> None:
    answers = {"has_meds": False, "meds": [{"med_name": "A"}], "bogus": 1}
    assert prune(REPEATING, answers) == {"has_meds": False}
    assert prune(REPEATING, prune(REPEATING, answers)) == {"has_meds": False}


def test_outcomes_carry_action_menu_and_messages() -> None:
    evaluation = evaluate(OUTCOMES, {"chest_pain": True, "symptoms": ["sneeze"]})
    assert [(o.id, o.action, o.menu) for o in evaluation.outcomes] == [
        ("chest", "call-ambulance", None),
        ("hay-fever", "recommend-menu", "hay-fever"),
    ]
    assert evaluation.blocks_online
    assert "119" in evaluation.outcomes[0].message_ja
    assert not evaluate(OUTCOMES, {"symptoms": ["sneeze"]}).blocks_online
    result = submit(OUTCOMES, {"chest_pain": True})
    assert result.ok
    assert [o.id for o in result.outcomes] == ["chest"]


def test_calculated_value_is_in_the_response() -> None:
    calculated = from_fhir(vector("calculated")["questionnaire"])
    result = submit(calculated, {"weight": 80, "height": 170, "bmi": 99})
    assert result.structured is not None
    assert result.structured["bmi"] == [27.7]


def test_repeating_group_instance_counts() -> None:
    evaluation = evaluate(REPEATING, {"has_meds": True, "meds": [{}, {}, {}]})
    assert evaluation.instances == {"meds": 3}
    assert evaluate(REPEATING, {"has_meds": False, "meds": [{}]}).instances == {}


def test_vectors_directory_is_packaged_with_the_code() -> None:
    assert Path(VECTORS).is_dir()
