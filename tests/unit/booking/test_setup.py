"""Clinic set-up input checks: what an administrator may type, and what each refusal says."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking import setup
from booking.models import VisitMode

PROFILE: dict[str, Any] = {
    "name": "見本クリニック",
    "name_kana": "みほんくりにっく",
    "postal_code": "100-0005",
    "address": "東京都千代田区丸の内1-1-1",
    "phone": "03-1234-5678",
    "departments": ["内科"],
    "time_zone": "Asia/Tokyo",
    "slug": "mihon",
    "open_on_holidays": False,
    "reminder_offsets_minutes": [1440, 60],
}
MENU: dict[str, Any] = {
    "title_ja": "内科 再診",
    "title_en": "Internal medicine, follow-up",
    "mode": "in_person",
    "visit_kind": "revisit",
    "duration_minutes": 15,
}


def refusal(schema: type[Any], data: dict[str, Any]) -> dict[str, setup.FieldProblem]:
    with pytest.raises(setup.SetupInvalid) as caught:
        setup.parse(schema, data)
    assert caught.value.status == 422
    return caught.value.by_field()


@pytest.mark.parametrize(
    ("typed", "minute"),
    [("09:00", 540), ("9:30", 570), ("００:００", 0), ("23:55", 1435), ("24:00", 1440)],
)
def test_clock_times_as_typed(typed: str, minute: int) -> None:
    assert setup.parse_clock(typed) == minute


@pytest.mark.parametrize(
    ("typed", "code"),
    [("9時", "clock"), ("24:05", "clock"), ("12:60", "clock"), ("", "clock"), ("09:03", "grid")],
)
def test_clock_times_refused(typed: str, code: str) -> None:
    with pytest.raises(ValueError, match=code):
        setup.parse_clock(typed)


@given(st.integers(min_value=0, max_value=288))
def test_every_grid_time_reads_back_as_it_prints(step: int) -> None:
    minute = step * setup.GRID
    assert setup.parse_clock(setup.clock_text(minute)) == minute


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [("90", 90), ("3h", 180), ("3時間", 180), ("1d", 1440), ("２日", 2880), ("45 min", 45)],
)
def test_reminder_offsets_as_typed(typed: str, minutes: int) -> None:
    assert setup.parse_offset(typed) == minutes


def test_a_profile_is_normalised() -> None:
    profile = setup.parse(
        setup.ClinicProfile,
        {
            **PROFILE,
            "name": " 見本クリニック ",
            "postal_code": "〒１００－０００５",
            "phone": "０３１２３４５６７８",
            "departments": ["内科", " 小児科", "内科", ""],
            "slug": "Mihon-2",
            "reminder_offsets_minutes": ["1h", 1440, "60", "3h"],
        },
    )
    assert profile.name == "見本クリニック"
    assert profile.postal_code == "100-0005"
    assert profile.phone == "03-1234-5678"
    assert profile.departments == ["内科", "小児科"]
    assert profile.slug == "mihon-2"
    assert profile.reminder_offsets_minutes == [1440, 180, 60]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"name": ""}, "name", "required"),
        ({"name_kana": "Mihon"}, "name_kana", "kana"),
        ({"postal_code": "1000005x"}, "postal_code", "postal"),
        ({"phone": "03-0000-0000"}, "phone", "phone"),
        ({"phone": "03-1234-5678 内線2"}, "phone", "phone"),
        ({"time_zone": "Tokyo"}, "time_zone", "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone", "time_zone"),
        ({"slug": "-mihon"}, "slug", "slug"),
        ({"slug": "mi--hon"}, "slug", "slug"),
        ({"slug": "みほん"}, "slug", "slug"),
        ({"slug": "m"}, "slug", "required"),
        ({"departments": ["内" * 41]}, "departments", "department"),
        ({"reminder_offsets_minutes": [5]}, "reminder_offsets_minutes", "offset"),
        ({"reminder_offsets_minutes": ["15d"]}, "reminder_offsets_minutes", "offset"),
        ({"reminder_offsets_minutes": ["soon"]}, "reminder_offsets_minutes", "offset"),
        ({"reminder_offsets_minutes": [60] * 6}, "reminder_offsets_minutes", "too_long"),
        ({"colour": "blue"}, "colour", "extra_forbidden"),
    ],
)
def test_a_bad_profile_names_the_field(change: dict[str, Any], field: str, code: str) -> None:
    problems = refusal(setup.ClinicProfile, {**PROFILE, **change})
    assert problems[field].code == code
    assert problems[field].message_ja
    assert problems[field].message_en


@given(st.integers(min_value=-10, max_value=1000))
def test_a_duration_is_5_to_480_minutes_on_the_grid(minutes: int) -> None:
    data = {**MENU, "duration_minutes": minutes}
    if 5 <= minutes <= 480 and minutes % 5 == 0:
        assert setup.parse(setup.MenuInput, data).duration_minutes == minutes
    else:
        assert "duration_minutes" in refusal(setup.MenuInput, data)


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"capacity": 0}, "capacity", "greater_than_equal"),
        ({"capacity": 51}, "capacity", "less_than_equal"),
        ({"fee_yen": -1}, "fee_yen", "greater_than_equal"),
        ({"booking_fee_yen": 1_000_001}, "booking_fee_yen", "less_than_equal"),
        ({"buffer_after_minutes": 7}, "buffer_after_minutes", "multiple_of"),
        ({"max_days_ahead": 400}, "max_days_ahead", "less_than_equal"),
        ({"mode": "teleport"}, "mode", "enum"),
        ({"visit_kind": ""}, "visit_kind", "enum"),
        ({"questionnaire_id": "q" * 65}, "questionnaire_id", "string_too_long"),
        ({"online_rules": ["existing_patients_only"]}, "online_rules", "online_rules_need_online"),
        (
            {"mode": "online", "online_rules": ["made_up"]},
            "online_rules",
            "online_rule_unknown",
        ),
        ({"practitioner_ids": ["not-an-id"]}, "practitioner_ids", "uuid_parsing"),
    ],
)
def test_a_bad_menu_names_the_field(change: dict[str, Any], field: str, code: str) -> None:
    assert refusal(setup.MenuInput, {**MENU, **change})[field].code == code


def test_menu_numbers_as_people_type_them_and_online_rules_on_online_menus() -> None:
    menu = setup.parse(
        setup.MenuInput,
        {
            **MENU,
            "mode": "both",
            "fee_yen": "１,５００",
            "questionnaire_id": " ",
            "online_rules": [*setup.ONLINE_RULE_CODES, "existing_patients_only"],
        },
    )
    assert menu.fee_yen == 1500
    assert menu.questionnaire_id is None
    assert menu.mode is VisitMode.BOTH
    assert menu.online_rules == list(setup.ONLINE_RULE_CODES)


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"weekdays": [], "start": "09:00", "end": "10:00"}, "weekdays", "weekdays"),
        ({"weekdays": [7], "start": "09:00", "end": "10:00"}, "weekdays", "less_than_equal"),
        ({"weekdays": [0], "start": "10:00", "end": "10:00"}, "end", "end_before_start"),
        ({"weekdays": [0], "start": "22:00", "end": "02:00"}, "end", "end_before_start"),
        (
            {"weekdays": [0], "start": "09:00", "end": "10:00", "menu_id": "x"},
            "menu_id",
            "uuid_parsing",
        ),
    ],
)
def test_bad_hours(data: dict[str, Any], field: str, code: str) -> None:
    assert refusal(setup.HoursInput, data)[field].code == code


def test_hours_on_several_days_at_once() -> None:
    hours = setup.parse(
        setup.HoursInput, {"weekdays": ["4", "0", "0"], "start": "15:00", "end": "18:30"}
    )
    assert (hours.weekdays, hours.start, hours.end, hours.menu_id) == ([0, 4], 900, 1110, None)


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"day": "2030-02-30", "kind": "closed_day"}, "day", "date_from_datetime_parsing"),
        ({"day": "2030-01-07", "kind": "holiday"}, "kind", "literal_error"),
        ({"day": "2030-01-07", "kind": "closed_range", "start": "13:00"}, "end", "times_needed"),
        ({"day": "2030-01-07", "kind": "extra_hours", "end": "13:00"}, "end", "times_needed"),
        (
            {"day": "2030-01-07", "kind": "extra_hours", "start": "13:00", "end": "12:00"},
            "end",
            "end_before_start",
        ),
        ({"day": "2030-01-07", "kind": "closed_day", "note": "x" * 201}, "note", "string_too_long"),
    ],
)
def test_bad_exceptions(data: dict[str, Any], field: str, code: str) -> None:
    assert refusal(setup.ExceptionInput, data)[field].code == code


def test_a_whole_day_closure_needs_no_times() -> None:
    closed = setup.parse(
        setup.ExceptionInput, {"day": "2030-01-07", "kind": "closed_day", "start": "", "end": ""}
    )
    assert (closed.day, closed.start, closed.end) == (date(2030, 1, 7), None, None)


def test_every_message_reads_in_both_languages_with_its_values_filled_in() -> None:
    context = {"max_length": 5, "ge": 1, "le": 50, "multiple_of": 5}
    for code in setup.MESSAGES:
        problem = setup.problem("field", code, **context)
        assert problem.message_ja
        assert problem.message_en
        assert "{" not in problem.message_ja + problem.message_en, code


def test_upcoming_holidays_say_which_are_opened() -> None:
    found = setup.upcoming_holidays(
        date(2030, 1, 1),
        open_on_holidays=False,
        extra_days={date(2030, 1, 14)},
        within=timedelta(days=20),
    )
    assert [(h.day, h.opened) for h in found] == [
        (date(2030, 1, 1), False),
        (date(2030, 1, 14), True),  # 成人の日, opened by extra hours
    ]
    assert found[0].name == "元日"
    everything = setup.upcoming_holidays(
        date(2030, 1, 1), open_on_holidays=True, extra_days=(), within=timedelta(days=20)
    )
    assert all(h.opened for h in everything)


# Characters that NFKC expands (㍿ → 株式会社, ﬀ → ff), widens or drops, among ordinary ones.
TYPED = st.text(
    alphabet=st.sampled_from("㍿ﬀﾐﾎﾝ ａｂ１２３-ー〒みほんabcxyz019 　\t、,"), max_size=260
) | st.text(max_size=80)
COLUMNS = {
    "name": 200,
    "name_kana": 200,
    "postal_code": 8,
    "address": 300,
    "phone": 20,
    "time_zone": 64,
    "slug": 64,
}


@given(st.sampled_from(sorted(COLUMNS)), TYPED)
def test_whatever_is_typed_a_parsed_profile_fits_the_database(field: str, typed: str) -> None:
    refused: set[str] = set()
    try:
        profile = setup.parse(setup.ClinicProfile, {**PROFILE, field: typed})
    except setup.SetupInvalid as error:
        refused = set(error.by_field())
    else:
        assert len(getattr(profile, field)) <= COLUMNS[field]
    assert refused <= {field}


@given(st.sampled_from(["title_ja", "title_en"]), TYPED)
def test_whatever_is_typed_a_parsed_menu_title_fits_the_database(field: str, typed: str) -> None:
    try:
        menu = setup.parse(setup.MenuInput, {**MENU, field: typed})
    except setup.SetupInvalid:
        return
    assert 1 <= len(getattr(menu, field)) <= 120
