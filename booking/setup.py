"""Setting up a clinic: its profile, practitioners, menus, weekly hours and date exceptions.

Two layers, as everywhere in booking:

- **input schemas** (pydantic) check what an administrator sends, value by value: lengths,
  ranges, the 5-minute grid, a postal code, a phone number, a time zone. They need no database;
- **write functions** check what needs the database (a page address already taken, an id of
  another clinic, a range that overlaps one already set) and write in one transaction, so a
  refused change leaves nothing half-written.

Every refusal is a :class:`SetupInvalid` (422) that names each wrong field with a message in
Japanese and English. Appointments keep their own start and end: editing a menu (its duration,
its buffers) changes what is offered from now on and never moves a booking.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, TypeVar
from zoneinfo import available_timezones

import jpholiday
import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from booking.availability import japanese_holiday
from booking.eligibility import ONLINE_RULES
from booking.errors import BookingRefused
from booking.models import (
    Clinic,
    HoursException,
    Menu,
    Practitioner,
    VisitKind,
    VisitMode,
    WeeklyHours,
)
from booking.service import parse_id

# MHLW online-consult rules a menu may apply, by code (defined in booking.eligibility).
ONLINE_RULE_CODES: Final = tuple(ONLINE_RULES)
# Reminder choices offered as checkboxes, in minutes before the start.
REMINDER_PRESETS: Final = (10080, 4320, 1440, 720, 180, 60, 30)
REMINDER_MIN: Final = 10
REMINDER_MAX: Final = 14 * 24 * 60
REMINDERS_MAX_COUNT: Final = 5
PHONE_MAX: Final = 20  # Clinic.phone's column
GRID: Final = 5  # minutes: hours, durations and buffers sit on the seat-claim grid
DAY_MINUTES: Final = 24 * 60
EXCEPTION_HORIZON: Final = timedelta(days=2 * 366)
HOLIDAYS_SHOWN: Final = timedelta(days=180)

KANA: Final = re.compile(r"^[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\u3000 0-9]+$")
POSTAL: Final = re.compile(r"^〒?\s*(\d{3})-?(\d{4})$")
SLUG: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CLOCK: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
OFFSET: Final = re.compile(r"^(\d{1,6})\s*(m|min|分|h|時間|d|日)?$")
_DASHES: Final = re.compile("[\u2010-\u2015\u2212\u30fc\uff70]")
_LIST_SEPARATORS: Final = re.compile(r"[\n,、，;]+")


# --- refusals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """What is wrong with one field, for people in both languages; ``code`` is stable."""

    field: str
    code: str
    message_ja: str
    message_en: str


class SetupInvalid(BookingRefused):
    """A set-up change was refused; ``problems`` names every wrong field."""

    status = 422
    message_ja = "入力内容を確認してください"
    message_en = "Please check the fields marked below."

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__(", ".join(p.field for p in problems))
        self.problems = tuple(problems)

    def by_field(self) -> dict[str, FieldProblem]:
        """The first problem of each field."""
        found: dict[str, FieldProblem] = {}
        for problem in self.problems:
            found.setdefault(problem.field, problem)
        return found


# Error code → (Japanese, English); {names} are filled from pydantic's context.
MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "missing": ("入力してください", "This field is required"),
    "required": ("入力してください", "This field is required"),
    "string_too_long": (
        "{max_length} 文字以内で入力してください",
        "Enter at most {max_length} characters",
    ),
    "int_parsing": ("半角数字の整数で入力してください", "Enter a whole number"),
    "int_type": ("半角数字の整数で入力してください", "Enter a whole number"),
    "int_from_float": ("整数で入力してください", "Enter a whole number"),
    "greater_than_equal": ("{ge} 以上にしてください", "Must be {ge} or more"),
    "less_than_equal": ("{le} 以下にしてください", "Must be {le} or less"),
    "multiple_of": ("{multiple_of} の倍数にしてください", "Must be a multiple of {multiple_of}"),
    "enum": ("選択肢から選んでください", "Choose one of the options"),
    "literal_error": ("選択肢から選んでください", "Choose one of the options"),
    "uuid_parsing": ("選択肢から選んでください", "Choose one of the options"),
    "uuid_type": ("選択肢から選んでください", "Choose one of the options"),
    "date_parsing": ("日付は YYYY-MM-DD で入力してください", "Enter a date as YYYY-MM-DD"),
    "date_from_datetime_parsing": (
        "日付は YYYY-MM-DD で入力してください",
        "Enter a date as YYYY-MM-DD",
    ),
    "too_long": ("{max_length} 件までにしてください", "Give at most {max_length} entries"),
    "kana": ("ふりがなはひらがなまたはカタカナで入力してください", "Enter the reading in kana"),
    "postal": ("郵便番号は 123-4567 の形で入力してください", "Enter a postal code like 123-4567"),
    "phone": (
        "電話番号を正しく入力してください(例: 03-1234-5678)",
        "Enter a valid phone number (for example 03-1234-5678)",
    ),
    "time_zone": (
        "タイムゾーンは Asia/Tokyo のような IANA の名前で入力してください",
        "Enter an IANA time zone name such as Asia/Tokyo",
    ),
    "slug": (
        "半角英小文字・数字・ハイフンで入力してください(先頭と末尾は英数字)",
        "Use lowercase letters, digits and hyphens (starting and ending with a letter or digit)",
    ),
    "slug_taken": (
        "このアドレスはほかの医療機関が使っています。別のものを選んでください",
        "Another clinic already uses this address. Please choose another.",
    ),
    "offset": (
        "リマインダーは 10 分前から 14 日前までの分・時間・日(例: 90, 3h, 1d)で入力してください",
        "Enter reminders from 10 minutes to 14 days before, e.g. 90, 3h or 1d",
    ),
    "department": (
        "診療科はそれぞれ 40 文字以内にしてください",
        "Keep each department within 40 characters",
    ),
    "online_rule_unknown": ("選択肢から選んでください", "Choose one of the options"),
    "online_rules_need_online": (
        "オンライン診療のルールはオンラインを含むメニューにだけ設定できます",
        "Online rules apply only to menus that include online visits",
    ),
    "clock": ("時刻は 09:30 のように入力してください", "Enter a time such as 09:30"),
    "grid": ("時刻は 5 分単位で入力してください", "Use times on a 5-minute grid"),
    "end_before_start": (
        "終了は開始より後の時刻にしてください(日をまたぐ設定はできません)",
        "The end must be after the start (ranges cannot run past midnight)",
    ),
    "times_needed": ("開始と終了の時刻を入力してください", "Enter a start and an end time"),
    "weekdays": ("曜日を選んでください", "Choose at least one weekday"),
    "overlap": (
        "すでに設定されている時間帯と重なっています",
        "This overlaps a range that is already set",
    ),
    "day_range": (
        "今日から 2 年以内の日付を入力してください",
        "Enter a date from today up to two years ahead",
    ),
    "unknown_choice": ("選択肢から選んでください", "Choose one of the options"),
    "not_offered": (
        "この医師はこのメニューを担当していません。先に医師の担当メニューに加えてください",
        "This practitioner does not offer this menu; add it to their menus first",
    ),
    "staff_taken": (
        "このスタッフアカウントはほかの医師に結び付けられています",
        "This staff account is already linked to another practitioner",
    ),
}
FALLBACK: Final = ("値が正しくありません", "The value is not valid")


def problem(field: str, code: str, **context: Any) -> FieldProblem:
    ja, en = MESSAGES.get(code, FALLBACK)
    return FieldProblem(field, code, _fill(ja, context), _fill(en, context))


def _fill(template: str, context: dict[str, Any]) -> str:
    try:
        return template.format(**{key: str(value) for key, value in context.items()})
    except (KeyError, IndexError, ValueError):
        return template


def invalid(field: str, code: str, **context: Any) -> SetupInvalid:
    return SetupInvalid([problem(field, code, **context)])


Schema = TypeVar("Schema", bound=BaseModel)


def parse(schema: type[Schema], data: dict[str, Any]) -> Schema:
    """``data`` checked by ``schema``; :class:`SetupInvalid` naming every wrong field."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_input=False):
            field = str(item["loc"][0]) if item["loc"] else "form"
            code = item["type"]
            if code in ("string_too_short", "too_short"):
                code = "required"
            problems.append(problem(field, code, **dict(item.get("ctx") or {})))
        raise SetupInvalid(problems) from None


# --- value checks ---------------------------------------------------------------------------


def _nfkc(value: Any) -> Any:
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


def _number(value: Any) -> Any:
    """Numbers as people type them: full-width digits and thousands separators are fine."""
    if isinstance(value, str):
        return _nfkc(value).replace(",", "")
    return value


def _kana(value: str) -> str:
    value = _nfkc(value)
    if not KANA.match(value):
        raise PydanticCustomError("kana", "kana")
    return str(value)


def _postal(value: str) -> str:
    match = POSTAL.match(_DASHES.sub("-", _nfkc(value)))
    if not match:
        raise PydanticCustomError("postal", "postal")
    return f"{match.group(1)}-{match.group(2)}"


def normalise_phone(value: str) -> str:
    """A clinic's phone number (landlines welcome) in its usual written form, e.g. 03-1234-5678."""
    text = _DASHES.sub("-", _nfkc(value))
    if not text or len(text) > 30 or not re.match(r"^\+?[0-9 ().\-]+$", text):
        raise PydanticCustomError("phone", "phone")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        raise PydanticCustomError("phone", "phone") from None
    if not phonenumbers.is_valid_number(number):
        raise PydanticCustomError("phone", "phone")
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if phonenumbers.region_code_for_number(number) == "JP"
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    written = phonenumbers.format_number(number, style)
    if len(written) > PHONE_MAX:
        raise PydanticCustomError("phone", "phone")
    return str(written)


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: str) -> str:
    value = _nfkc(value)
    if value not in time_zones():
        raise PydanticCustomError("time_zone", "time_zone")
    return str(value)


def _slug(value: str) -> str:
    value = _nfkc(value).lower()
    if not SLUG.match(value):
        raise PydanticCustomError("slug", "slug")
    return str(value)


def _departments(value: list[str]) -> list[str]:
    found: list[str] = []
    for item in value:
        name = _nfkc(item)
        if len(name) > 40:
            raise PydanticCustomError("department", "department")
        if name and name not in found:
            found.append(name)
    return found


def parse_offset(text: str) -> int:
    """A reminder offset as typed: ``90`` (minutes), ``3h`` / ``3時間``, ``1d`` / ``1日``."""
    match = OFFSET.match(_nfkc(text).lower())
    if not match:
        raise PydanticCustomError("offset", "offset")
    unit = match.group(2) or "m"
    factor = {"h": 60, "時間": 60, "d": DAY_MINUTES, "日": DAY_MINUTES}.get(unit, 1)
    return int(match.group(1)) * factor


def _offsets(value: list[Any]) -> list[int]:
    minutes = {item if isinstance(item, int) else parse_offset(str(item)) for item in value}
    if any(not REMINDER_MIN <= m <= REMINDER_MAX for m in minutes):
        raise PydanticCustomError("offset", "offset")
    return sorted(minutes, reverse=True)


def parse_clock(value: Any) -> int:
    """``HH:MM`` as minutes after midnight (24:00 closes the day), on the 5-minute grid."""
    if isinstance(value, int):
        minute = value
    else:
        match = CLOCK.match(_nfkc(str(value)))
        if not match:
            raise PydanticCustomError("clock", "clock")
        hours, minutes = int(match.group(1)), int(match.group(2))
        if minutes > 59 or hours > 24 or (hours == 24 and minutes):
            raise PydanticCustomError("clock", "clock")
        minute = hours * 60 + minutes
    if not 0 <= minute <= DAY_MINUTES:
        raise PydanticCustomError("clock", "clock")
    if minute % GRID:
        raise PydanticCustomError("grid", "grid")
    return minute


def clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def split_list(text: str) -> list[str]:
    """One entry per line or separated by commas (、 too), blanks dropped."""
    return [part.strip() for part in _LIST_SEPARATORS.split(text) if part.strip()]


def _unique(value: list[Any]) -> list[Any]:
    return list(dict.fromkeys(value))


Number = Annotated[int, BeforeValidator(_number)]
Minute = Annotated[int, BeforeValidator(parse_clock)]
Ids = Annotated[list[uuid.UUID], AfterValidator(_unique), Field(max_length=200)]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_blank_is_none)]
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- input schemas --------------------------------------------------------------------------


class ClinicProfile(BaseModel):
    """The clinic's own details, its public page address and its calendar defaults."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=200), BeforeValidator(_nfkc)]
    name_kana: Annotated[
        str, Field(min_length=1, max_length=200), BeforeValidator(_nfkc), AfterValidator(_kana)
    ]
    postal_code: Annotated[
        str, Field(min_length=1, max_length=20), BeforeValidator(_nfkc), AfterValidator(_postal)
    ]
    address: Annotated[str, Field(min_length=1, max_length=300), BeforeValidator(_nfkc)]
    phone: Annotated[
        str,
        Field(min_length=1, max_length=30),
        BeforeValidator(_nfkc),
        AfterValidator(normalise_phone),
    ]
    departments: Annotated[list[str], Field(max_length=20), AfterValidator(_departments)] = []
    time_zone: Annotated[
        str, Field(min_length=1, max_length=64), BeforeValidator(_nfkc), AfterValidator(_time_zone)
    ] = "Asia/Tokyo"
    slug: Annotated[
        str, Field(min_length=2, max_length=64), BeforeValidator(_nfkc), AfterValidator(_slug)
    ]
    open_on_holidays: bool = False
    reminder_offsets_minutes: Annotated[
        list[int | str], Field(max_length=REMINDERS_MAX_COUNT), AfterValidator(_offsets)
    ] = []


class PractitionerInput(BaseModel):
    """Someone patients book, optionally linked to a staff account, and the menus they offer."""

    model_config = _STRICT

    display_name: Annotated[str, Field(min_length=1, max_length=120), BeforeValidator(_nfkc)]
    display_name_kana: Annotated[
        str, Field(min_length=1, max_length=120), BeforeValidator(_nfkc), AfterValidator(_kana)
    ]
    staff_id: OptionalId = None
    menu_ids: Ids = []


class MenuInput(BaseModel):
    """Every setting of a menu (診療メニュー); ``practitioner_ids`` are who offer it."""

    model_config = _STRICT

    title_ja: Annotated[str, Field(min_length=1, max_length=120), BeforeValidator(_nfkc)]
    title_en: Annotated[str, Field(min_length=1, max_length=120), BeforeValidator(_nfkc)]
    description_ja: Annotated[str, Field(max_length=2000)] = ""
    description_en: Annotated[str, Field(max_length=2000)] = ""
    mode: VisitMode
    visit_kind: VisitKind
    duration_minutes: Annotated[Number, Field(ge=5, le=480, multiple_of=GRID)]
    capacity: Annotated[Number, Field(ge=1, le=50)] = 1
    fee_yen: Annotated[Number, Field(ge=0, le=1_000_000)] = 0
    booking_fee_yen: Annotated[Number, Field(ge=0, le=1_000_000)] = 0
    questionnaire_id: Annotated[
        Annotated[str, Field(max_length=64)] | None, BeforeValidator(_blank_is_none)
    ] = None
    min_notice_minutes: Annotated[Number, Field(ge=0, le=30 * DAY_MINUTES)] = 60
    max_days_ahead: Annotated[Number, Field(ge=0, le=365)] = 30
    buffer_before_minutes: Annotated[Number, Field(ge=0, le=120, multiple_of=GRID)] = 0
    buffer_after_minutes: Annotated[Number, Field(ge=0, le=120, multiple_of=GRID)] = 0
    cancel_deadline_minutes: Annotated[Number, Field(ge=0, le=30 * DAY_MINUTES)] = 120
    visible_to_patients: bool = True
    pre_consultation: bool = False
    online_rules: Annotated[list[str], Field(max_length=10)] = []
    sort_order: Annotated[Number, Field(ge=0, le=9999)] = 0
    practitioner_ids: Ids = []

    @field_validator("online_rules")
    @classmethod
    def _online_rules(cls, value: list[str], info: ValidationInfo) -> list[str]:
        rules = _unique(value)
        if any(rule not in ONLINE_RULE_CODES for rule in rules):
            raise PydanticCustomError("online_rule_unknown", "online_rule_unknown")
        if rules and info.data.get("mode") is VisitMode.IN_PERSON:
            raise PydanticCustomError("online_rules_need_online", "online_rules_need_online")
        return rules


class HoursInput(BaseModel):
    """One opening range on some weekdays (0 = Monday), for all menus or for one."""

    model_config = _STRICT

    weekdays: Annotated[list[Annotated[int, Field(ge=0, le=6)]], Field(max_length=7)]
    start: Minute
    end: Minute
    menu_id: OptionalId = None

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value:
            raise PydanticCustomError("weekdays", "weekdays")
        return sorted(set(value))

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise PydanticCustomError("end_before_start", "end_before_start")
        return value


ExceptionKind = Literal["closed_day", "closed_range", "extra_hours"]


class ExceptionInput(BaseModel):
    """A day that differs from the week: closed all day, closed for a range, or extra hours
    (which also open a public holiday). For the whole clinic, or one practitioner."""

    model_config = _STRICT

    day: date
    kind: ExceptionKind
    practitioner_id: OptionalId = None
    start: Annotated[Minute | None, BeforeValidator(_blank_is_none)] = None
    end: Annotated[Minute | None, BeforeValidator(_blank_is_none), Field(validate_default=True)] = (
        None
    )
    note: Annotated[str, Field(max_length=200), BeforeValidator(_nfkc)] = ""

    @field_validator("end")
    @classmethod
    def _times(cls, value: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("kind") in ("closed_range", "extra_hours"):
            start = info.data.get("start")
            if value is None or ("start" in info.data and start is None):
                raise PydanticCustomError("times_needed", "times_needed")
            if start is not None and value <= start:
                raise PydanticCustomError("end_before_start", "end_before_start")
        return value


# --- the clinic -----------------------------------------------------------------------------


def profile_of(clinic: Clinic) -> dict[str, Any]:
    return {
        "name": clinic.name,
        "name_kana": clinic.name_kana,
        "postal_code": clinic.postal_code,
        "address": clinic.address,
        "phone": clinic.phone,
        "departments": list(clinic.departments),
        "time_zone": clinic.time_zone,
        "slug": clinic.slug,
        "open_on_holidays": clinic.open_on_holidays,
        "reminder_offsets_minutes": list(clinic.reminder_offsets_minutes),
    }


async def update_clinic(clinic: Clinic, profile: ClinicProfile) -> list[str]:
    """Save the profile; the names of the fields that changed. A taken address is refused."""
    values = profile.model_dump()
    if await Clinic.filter(slug=profile.slug).exclude(id=clinic.id).exists():
        raise invalid("slug", "slug_taken")
    changed = [name for name, value in values.items() if getattr(clinic, name) != value]
    if not changed:
        return []
    clinic.update_from_dict(values)
    try:
        async with in_transaction() as conn:
            await clinic.save(using_db=conn, update_fields=changed)
    except IntegrityError:
        await clinic.refresh_from_db()
        raise invalid("slug", "slug_taken") from None
    return changed


# --- practitioners --------------------------------------------------------------------------


def _menus_of(practitioner: Practitioner) -> fields.ManyToManyRelation[Menu]:
    """The reverse side of ``Menu.practitioners`` (declared there, so untyped here)."""
    return practitioner.menus  # type: ignore[attr-defined, no-any-return]


async def practitioners(clinic: Clinic) -> list[Practitioner]:
    """Every practitioner of the clinic, active first, with their menus fetched."""
    return (
        await Practitioner.filter(clinic=clinic)
        .order_by("-is_active", "display_name_kana")
        .prefetch_related("menus")
    )


async def practitioner_of(clinic: Clinic, practitioner_id: str) -> Practitioner | None:
    key = parse_id(practitioner_id)
    return await Practitioner.get_or_none(id=key, clinic=clinic) if key else None


async def _clinic_menus(clinic: Clinic, ids: Iterable[uuid.UUID], field: str) -> list[Menu]:
    wanted = set(ids)
    if not wanted:
        return []
    found = await Menu.filter(clinic=clinic, id__in=list(wanted))
    if len(found) != len(wanted):
        raise invalid(field, "unknown_choice")
    return list(found)


async def _check_staff(
    clinic: Clinic, data: PractitionerInput, staff_ids: Collection[str], current: str | None
) -> None:
    if data.staff_id is None:
        return
    if str(data.staff_id) not in staff_ids:
        raise invalid("staff_id", "unknown_choice")
    linked = Practitioner.filter(clinic=clinic, staff_id=data.staff_id)
    if current is not None:
        linked = linked.exclude(id=current)
    if await linked.exists():
        raise invalid("staff_id", "staff_taken")


async def create_practitioner(
    clinic: Clinic, data: PractitionerInput, *, staff_ids: Collection[str]
) -> Practitioner:
    """Add a practitioner. ``staff_ids`` are the clinic's staff accounts one may be linked to."""
    await _check_staff(clinic, data, staff_ids, None)
    menus = await _clinic_menus(clinic, data.menu_ids, "menu_ids")
    async with in_transaction() as conn:
        practitioner = await Practitioner.create(
            clinic=clinic,
            display_name=data.display_name,
            display_name_kana=data.display_name_kana,
            staff_id=data.staff_id,
            using_db=conn,
        )
        if menus:
            await _menus_of(practitioner).add(*menus, using_db=conn)
    return practitioner


async def update_practitioner(
    clinic: Clinic,
    practitioner: Practitioner,
    data: PractitionerInput,
    *,
    staff_ids: Collection[str],
) -> None:
    await _check_staff(clinic, data, staff_ids, str(practitioner.id))
    menus = await _clinic_menus(clinic, data.menu_ids, "menu_ids")
    practitioner.display_name = data.display_name
    practitioner.display_name_kana = data.display_name_kana
    practitioner.staff_id = data.staff_id
    async with in_transaction() as conn:
        await practitioner.save(using_db=conn)
        await _menus_of(practitioner).clear(using_db=conn)
        if menus:
            await _menus_of(practitioner).add(*menus, using_db=conn)


async def set_practitioner_active(practitioner: Practitioner, active: bool) -> None:
    """Deactivate (no new bookings; existing appointments stay) or reactivate. Never deleted:
    appointments refer to practitioners."""
    practitioner.is_active = active
    await practitioner.save(update_fields=["is_active"])


# --- menus ----------------------------------------------------------------------------------


async def menus(clinic: Clinic) -> list[Menu]:
    return (
        await Menu.filter(clinic=clinic)
        .order_by("sort_order", "title_ja")
        .prefetch_related("practitioners")
    )


async def menu_of(clinic: Clinic, menu_id: str) -> Menu | None:
    key = parse_id(menu_id)
    return await Menu.get_or_none(id=key, clinic=clinic) if key else None


def menu_values(menu: Menu) -> dict[str, Any]:
    fields = MenuInput.model_fields.keys() - {"practitioner_ids"}
    return {name: getattr(menu, name) for name in fields}


async def _clinic_practitioners(clinic: Clinic, ids: Iterable[uuid.UUID]) -> list[Practitioner]:
    wanted = set(ids)
    if not wanted:
        return []
    found = await Practitioner.filter(clinic=clinic, id__in=list(wanted))
    if len(found) != len(wanted):
        raise invalid("practitioner_ids", "unknown_choice")
    return list(found)


async def create_menu(clinic: Clinic, data: MenuInput) -> Menu:
    chosen = await _clinic_practitioners(clinic, data.practitioner_ids)
    async with in_transaction() as conn:
        menu = await Menu.create(
            clinic=clinic, **data.model_dump(exclude={"practitioner_ids"}), using_db=conn
        )
        if chosen:
            await menu.practitioners.add(*chosen, using_db=conn)
    return menu


async def update_menu(clinic: Clinic, menu: Menu, data: MenuInput) -> list[str]:
    """Save every field; the names of those that changed. Appointments already made keep their
    times: a new duration or buffer applies to bookings made from now on."""
    chosen = await _clinic_practitioners(clinic, data.practitioner_ids)
    values = data.model_dump(exclude={"practitioner_ids"})
    changed = [name for name, value in values.items() if getattr(menu, name) != value]
    before = {str(p.id) for p in await menu.practitioners.all()}
    if before != {str(p.id) for p in chosen}:
        changed.append("practitioner_ids")
    menu.update_from_dict(values)
    async with in_transaction() as conn:
        await menu.save(using_db=conn)
        await menu.practitioners.clear(using_db=conn)
        if chosen:
            await menu.practitioners.add(*chosen, using_db=conn)
    return changed


# --- weekly hours ---------------------------------------------------------------------------


async def hours_of_practitioner(practitioner: Practitioner) -> list[WeeklyHours]:
    return (
        await WeeklyHours.filter(practitioner=practitioner)
        .order_by("weekday", "start_minute")
        .prefetch_related("menu")
    )


async def hours_row(practitioner: Practitioner, hours_id: str) -> WeeklyHours | None:
    key = parse_id(hours_id)
    return await WeeklyHours.get_or_none(id=key, practitioner=practitioner) if key else None


async def add_hours(
    clinic: Clinic, practitioner: Practitioner, data: HoursInput
) -> list[WeeklyHours]:
    """Add the range on each chosen weekday, for all menus or for one the practitioner offers.
    A range that overlaps one already set for the same menu (or for all menus) on that weekday
    is refused, so every range stays readable."""
    menu = None
    if data.menu_id is not None:
        menu = await Menu.get_or_none(id=data.menu_id, clinic=clinic)
        if menu is None:
            raise invalid("menu_id", "unknown_choice")
        if not await menu.practitioners.filter(id=practitioner.id).exists():
            raise invalid("menu_id", "not_offered")
    existing = await WeeklyHours.filter(
        practitioner=practitioner, weekday__in=data.weekdays, menu_id=data.menu_id
    )
    if any(row.start_minute < data.end and data.start < row.end_minute for row in existing):
        raise invalid("start", "overlap")
    async with in_transaction() as conn:
        return [
            await WeeklyHours.create(
                practitioner=practitioner,
                menu=menu,
                weekday=weekday,
                start_minute=data.start,
                end_minute=data.end,
                using_db=conn,
            )
            for weekday in data.weekdays
        ]


async def delete_hours(row: WeeklyHours) -> None:
    await row.delete()


# --- date exceptions and holidays -----------------------------------------------------------


async def upcoming_exceptions(clinic: Clinic, today: date) -> list[HoursException]:
    return (
        await HoursException.filter(clinic=clinic, day__gte=today)
        .order_by("day", "start_minute")
        .prefetch_related("practitioner")
    )


async def exception_of(clinic: Clinic, exception_id: str) -> HoursException | None:
    key = parse_id(exception_id)
    return await HoursException.get_or_none(id=key, clinic=clinic) if key else None


async def add_exception(clinic: Clinic, data: ExceptionInput, *, today: date) -> HoursException:
    if not today <= data.day <= today + EXCEPTION_HORIZON:
        raise invalid("day", "day_range")
    practitioner = None
    if data.practitioner_id is not None:
        practitioner = await Practitioner.get_or_none(id=data.practitioner_id, clinic=clinic)
        if practitioner is None:
            raise invalid("practitioner_id", "unknown_choice")
    whole_day = data.kind == "closed_day"
    return await HoursException.create(
        clinic=clinic,
        practitioner=practitioner,
        day=data.day,
        closed=data.kind != "extra_hours",
        start_minute=None if whole_day else data.start,
        end_minute=None if whole_day else data.end,
        note=data.note,
    )


async def delete_exception(row: HoursException) -> None:
    await row.delete()


@dataclass(frozen=True, slots=True)
class Holiday:
    """A public holiday ahead: closed unless the clinic opens holidays or adds hours that day."""

    day: date
    name: str
    opened: bool


def upcoming_holidays(
    today: date, *, open_on_holidays: bool, extra_days: Collection[date], within: timedelta
) -> list[Holiday]:
    found = []
    day = today
    while day <= today + within:
        if japanese_holiday(day):
            name = str(jpholiday.is_holiday_name(day) or "")
            found.append(Holiday(day, name, open_on_holidays or day in extra_days))
        day += timedelta(days=1)
    return found
