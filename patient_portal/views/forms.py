"""Input schemas shared by pages and the API, with messages in both languages."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from patient_portal.accounts.models import Relationship, Sex
from patient_portal.api.validation import field_errors
from patient_portal.problems import FieldError, Text

KANA: Final = re.compile(r"^[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\u3000 ]+$")
POSTAL: Final = re.compile(r"^(\d{3})-?(\d{4})$")
EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$")


def _clean(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _kana(value: str) -> str:
    value = _clean(value)
    if not KANA.match(value):
        raise ValueError("kana")
    return value


def _postal(value: str | None) -> str | None:
    if value is None or not _clean(value):
        return None
    match = POSTAL.match(_clean(value))
    if not match:
        raise ValueError("postal")
    return f"{match.group(1)}-{match.group(2)}"


def _email(value: str | None) -> str | None:
    if value is None or not _clean(value):
        return None
    if not EMAIL.match(_clean(value)):
        raise ValueError("email")
    return _clean(value)


def _birth(value: date) -> date:
    if not date(1900, 1, 1) <= value <= date.today():  # noqa: DTZ011 - a calendar date
        raise ValueError("birth_date")
    return value


Name = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_clean)]
Kana = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_kana)]


class PatientProfile(BaseModel):
    """A patient's identifying details (stored encrypted)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    family_name: Name
    given_name: Name
    family_name_kana: Kana
    given_name_kana: Kana
    birth_date: Annotated[date, AfterValidator(_birth)]
    sex: Sex = Sex.UNKNOWN
    postal_code: Annotated[str | None, Field(max_length=10), AfterValidator(_postal)] = None
    email: Annotated[str | None, Field(max_length=254), AfterValidator(_email)] = None


class FamilyMember(PatientProfile):
    relationship: Relationship = Relationship.CHILD


CUSTOM_MESSAGES: Final = {
    "kana": Text("ふりがなはひらがなまたはカタカナで入力してください", "Enter the reading in kana"),
    "postal": Text(
        "郵便番号は 123-4567 の形で入力してください", "Enter a postal code like 123-4567"
    ),
    "email": Text("メールアドレスの形式が正しくありません", "The e-mail address is not valid"),
    "birth_date": Text("生年月日を確認してください", "Please check the date of birth"),
}


def form_errors(error: ValidationError, location: str = "body") -> tuple[FieldError, ...]:
    """Like the API's field errors, with this module's own messages for its own checks."""
    errors = list(field_errors(error, location))
    for index, item in enumerate(error.errors(include_url=False, include_input=False)):
        context = item.get("ctx") or {}
        reason = str(context.get("error", ""))
        if item["type"] == "value_error" and reason in CUSTOM_MESSAGES:
            errors[index] = FieldError(errors[index].field, reason, CUSTOM_MESSAGES[reason])
    return tuple(errors)
