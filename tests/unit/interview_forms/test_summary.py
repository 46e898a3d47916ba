"""The doctor's view and S-note text of a completed questionnaire (pure)."""

from __future__ import annotations

from typing import Any

from interview_forms import from_fhir
from interview_forms.summary import RED_FLAG, SUMMARY_LABEL, summarize

OUTCOME = "https://tsunagu.dev/fhir/StructureDefinition/outcome"
SNOMED = "http://snomed.info/sct"


def outcome(outcome_id: str, question: str, message: str) -> dict[str, Any]:
    return {
        "url": OUTCOME,
        "extension": [
            {"url": "id", "valueId": outcome_id},
            {"url": "action", "valueCode": "visit-in-person"},
            {
                "url": "condition",
                "extension": [
                    {"url": "question", "valueString": question},
                    {"url": "operator", "valueCode": "="},
                    {"url": "answer", "valueBoolean": True},
                ],
            },
            {"url": "behavior", "valueCode": "any"},
            {"url": "message-ja", "valueString": message},
            {"url": "message-en", "valueString": "Come in person."},
        ],
    }


FORM = from_fhir(
    {
        "resourceType": "Questionnaire",
        "title": "内科 初診",
        "status": "active",
        "extension": [outcome("breath", "breath", "息苦しさあり: 対面受診")],
        "item": [
            {
                "linkId": "complaint",
                "text": "今日はどうされましたか？",
                "type": "choice",
                "extension": [{"url": SUMMARY_LABEL, "valueString": "主訴"}],
                "answerOption": [
                    {"valueCoding": {"system": SNOMED, "code": "49727002", "display": "咳"}},
                    {"valueCoding": {"system": SNOMED, "code": "386661006", "display": "発熱"}},
                ],
            },
            {"linkId": "onset", "text": "いつからですか", "type": "string"},
            {
                "linkId": "vitals",
                "text": "体温",
                "type": "group",
                "item": [
                    {"linkId": "fever", "text": "熱はありますか", "type": "boolean"},
                    {
                        "linkId": "temp",
                        "text": "体温",
                        "type": "decimal",
                        "enableWhen": [
                            {"question": "fever", "operator": "=", "answerBoolean": True}
                        ],
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                                "valueCoding": {
                                    "system": "http://unitsofmeasure.org",
                                    "code": "Cel",
                                    "display": "℃",
                                },
                            }
                        ],
                    },
                    {"linkId": "breath", "text": "息苦しさはありますか", "type": "boolean"},
                ],
            },
            {
                "linkId": "history",
                "text": "既往歴・アレルギー",
                "type": "group",
                "item": [
                    {
                        "linkId": "allergy",
                        "text": "薬のアレルギー",
                        "type": "string",
                        "extension": [{"url": RED_FLAG, "valueBoolean": True}],
                    },
                    {
                        "linkId": "meds",
                        "text": "服用中の薬",
                        "type": "group",
                        "repeats": True,
                        "item": [{"linkId": "med", "text": "薬の名前", "type": "string"}],
                    },
                ],
            },
        ],
    }
)


def test_answers_are_grouped_and_readable() -> None:
    answers = {
        "complaint": "49727002",
        "onset": "3日前",
        "fever": True,
        "temp": 38.5,
        "breath": False,
        "meds": [{"med": "ロキソニン"}, {"med": "ムコダイン"}],
    }
    summary = summarize(FORM, answers)
    assert [b.title for b in summary.blocks] == ["", "体温", "既往歴・アレルギー"]
    lines = {line.key: line for line in summary.lines}
    assert lines["complaint"].label == "主訴"
    assert lines["complaint"].answer == "咳"
    assert lines["temp"].answer == "38.5 ℃"
    assert lines["fever"].answer == "はい"
    assert lines["breath"].answer == "いいえ"
    assert lines["meds[1]/med"].answer == "ムコダイン"
    assert "allergy" not in lines  # unanswered items are left out
    assert not summary.flags
    assert summary.red_keys == frozenset()
    english = summarize(FORM, answers, locale="en")
    assert {line.key: line.answer for line in english.lines}["fever"] == "Yes"


def test_the_s_text_has_the_answers_given_and_not_the_disabled_ones() -> None:
    # "temp" was answered, then "fever" changed to no: the temperature is disabled and dropped.
    answers = {"complaint": "386661006", "onset": "昨日", "fever": False, "temp": 39.9}
    summary = summarize(FORM, answers, heading="問診票: 内科 初診")
    text = summary.text("ja")
    assert text.splitlines()[0] == "問診票: 内科 初診"
    assert "主訴: 発熱" in text
    assert "いつからですか: 昨日" in text
    assert text.splitlines()[-1] == "熱はありますか(-)"  # a pertinent negative
    assert "39.9" not in text
    assert "temp" not in {line.key for line in summary.lines}
    assert "Fever" not in text
    assert "熱はありますか(-)" in summary.text("en")
    changed = summarize(FORM, answers, previous=(FORM, {**answers, "fever": True}))
    assert "熱はありますか: いいえ" in changed.text("ja")  # a changed "no" keeps its own line


def test_consecutive_negatives_share_a_line() -> None:
    summary = summarize(FORM, {"fever": False, "breath": False, "onset": "今朝"})
    assert summary.text("ja").splitlines() == [
        "いつからですか: 今朝",
        "熱はありますか(-)、息苦しさはありますか(-)",
    ]


def test_red_flags_come_from_fired_outcomes_and_flagged_items() -> None:
    answers = {"fever": False, "breath": True, "allergy": "ペニシリン"}
    summary = summarize(FORM, answers)
    assert [f.outcome_id for f in summary.flags] == ["breath"]
    assert summary.flags[0].keys == ("breath",)
    assert summary.red_keys == {"breath", "allergy"}
    assert not {line.key: line for line in summary.lines}["fever"].red_flag
    text = summary.text("ja")
    assert text.splitlines()[0] == "【注意】息苦しさあり: 対面受診"
    assert "⚠ 息苦しさはありますか: はい" in text
    assert "⚠ 薬のアレルギー: ペニシリン" in text


def test_changes_since_the_previous_response_are_marked() -> None:
    before = {"complaint": "49727002", "fever": True, "temp": 37.2, "allergy": "なし"}
    now = {"complaint": "49727002", "fever": True, "temp": 38.5, "onset": "3日前"}
    summary = summarize(FORM, now, previous=(FORM, before))
    lines = {line.key: line for line in summary.lines}
    assert summary.has_previous
    assert not lines["complaint"].changed
    assert lines["temp"].changed
    assert lines["temp"].previous == "37.2 ℃"
    assert lines["onset"].changed
    assert lines["onset"].previous is None
    assert [line.key for line in summary.removed] == ["allergy"]
    text = summary.text("ja")
    assert "前回から変更: いつからですか（—→3日前）、体温（37.2 ℃→38.5 ℃）" in text
    assert "前回あり・今回なし: 薬のアレルギー（なし）" in text
    # Without a previous response nothing is "changed".
    assert not any(line.changed for line in summarize(FORM, now).lines)


def test_no_answers_says_so() -> None:
    assert summarize(FORM, {}).text("ja") == "回答なし"
