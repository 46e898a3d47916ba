"""Mobile phone numbers, the patient's sign-in identity: parsing to E.164 and masking.

Japanese input is accepted as people type it — ``090-1234-5678``, ``09012345678``,
``+81 90 1234 5678``, full-width ``０９０－１２３４－５６７８`` or with a katakana long-vowel mark
for the dashes — and numbers from abroad in international form (``+1 415 …``). Only numbers that
can receive an SMS are accepted: Japanese 070/080/090 mobiles, not landlines (03, 06, …), IP
phones (050) or M2M/pager numbers (020).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from patient_portal.problems import Text

DEFAULT_REGION: Final = "JP"
MAX_INPUT_LENGTH: Final = 40
SMS_CAPABLE: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Characters people use between digit groups; NFKC has already made full-width forms ASCII.
_DASHES = re.compile("[\u2010-\u2015\u2212\u30fc\uff70]")
_ALLOWED = re.compile(r"^\+?[0-9 ().\-]+$")


class PhoneError(ValueError):
    """The input is not a mobile number we can send a code to. ``text`` is for the user; ``code``
    (``phone-invalid`` or ``phone-not-mobile``) is stable. Never carries the input."""

    status = 400

    def __init__(self, code: str, text: Text) -> None:
        super().__init__(code)
        self.code = code
        self.text = text


INVALID: Final = Text(
    "携帯電話番号を正しく入力してください(例: 090-1234-5678)",
    "Enter a valid mobile phone number (for example 090-1234-5678)",
)
NOT_MOBILE: Final = Text(
    "SMS を受け取れる携帯電話番号(070・080・090 など)を入力してください",
    "Enter a mobile number that can receive text messages (070, 080, 090 …)",
)


def normalise_mobile(raw: str) -> str:
    """``raw`` as an E.164 string (``+819012345678``); :class:`PhoneError` if it is not a valid
    SMS-capable number. Idempotent: an E.164 result normalises to itself."""
    text = _DASHES.sub("-", unicodedata.normalize("NFKC", raw)).strip()
    if not text or len(text) > MAX_INPUT_LENGTH or not _ALLOWED.match(text):
        # Letters (vanity numbers), extensions ("内線", "ext.") and other junk are refused here,
        # before phonenumbers could quietly drop them.
        raise PhoneError("phone-invalid", INVALID)
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except NumberParseException:
        raise PhoneError("phone-invalid", INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("phone-invalid", INVALID)
    if phonenumbers.number_type(number) not in SMS_CAPABLE:
        raise PhoneError("phone-not-mobile", NOT_MOBILE)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """The number with all but its last four digits hidden (``***5678``), for logs and screens."""
    digits = "".join(c for c in e164 if c.isdigit())
    return "***" + digits[-4:] if len(digits) > 4 else "***"
