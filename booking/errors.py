"""Errors of the booking package.

The tree::

    BookingError
     ├── BookingRuleError (also a ValueError): a value that breaks a booking rule
     │   (a slot that ends before it starts, a capacity of zero, a naive datetime…)
     └── BookingRefused: a step refused for a reason the patient can act on
          ├── SlotUnavailable (422), SlotTaken (409, with alternatives)
          ├── HoldExpired (409), CancelTooLate (409)
          ├── NotEligible (422): the menu is not for this patient (revisit, online rules)
          └── AppointmentNotFound (404)
"""

from __future__ import annotations

from collections.abc import Sequence


class BookingError(Exception):
    """Base of every error the booking package raises on purpose."""


class BookingRuleError(BookingError, ValueError):
    """A value object was built with values that break its rules."""


class BookingRefused(BookingError):
    """A booking step the patient asked for cannot be done; the message says what to do.

    ``status`` is the HTTP status the portal answers with; the messages are for people.
    """

    status = 400
    message_ja = "この予約は受け付けられません"
    message_en = "This booking cannot be made"


class SlotUnavailable(BookingRefused):
    """Not a time the menu offers: in the past, too soon, outside hours, or not on its grid."""

    status = 422
    message_ja = "この時間は予約できません。空いている時間から選び直してください"
    message_en = "This time cannot be booked. Please choose one of the free times."


class SlotTaken(BookingRefused):
    """The last seat went to someone else a moment ago; ``alternatives`` are still free."""

    status = 409
    message_ja = "この時間はたった今ほかの方の予約で埋まりました。ほかの時間をお選びください"
    message_en = "This time was just taken. Please choose another time."

    def __init__(self, alternatives: Sequence[object] = ()) -> None:
        super().__init__(self.message_en)
        self.alternatives = list(alternatives)


class HoldExpired(BookingRefused):
    status = 409
    message_ja = "確保していた時間の有効期限が切れました。もう一度時間を選んでください"
    message_en = "The time kept for you has expired. Please choose a time again."


class AppointmentNotFound(BookingRefused):
    status = 404
    message_ja = "予約が見つかりません"
    message_en = "The appointment was not found"


class CancelTooLate(BookingRefused):
    status = 409
    message_ja = "キャンセルの受付期限を過ぎています。医療機関にお電話でご連絡ください"
    message_en = "It is too late to cancel online. Please call the clinic."


class NotEligible(BookingRefused):
    """This patient may not book this menu (see :mod:`booking.eligibility`); ``reason`` says why."""

    status = 422

    def __init__(self, reason: str, message_ja: str, message_en: str) -> None:
        super().__init__(message_en)
        self.reason = reason
        self.message_ja = message_ja
        self.message_en = message_en

    @classmethod
    def revisit_only(cls) -> NotEligible:
        return cls(
            "revisit_only",
            "このメニューは再診の方向けです。初めての方は初診のメニューからご予約ください",
            "This menu is for returning patients. If this is your first visit, please book a "
            "first-visit menu.",
        )

    @classmethod
    def existing_patients_only(cls) -> NotEligible:
        return cls(
            "existing_patients_only",
            "このオンライン診療は当院を受診したことのある方のみご予約いただけます。"
            "初めての方は対面の初診をご予約ください",
            "This online visit is only for patients who have visited the clinic before. Please "
            "book an in-person first visit.",
        )

    @classmethod
    def pre_consultation_required(cls) -> NotEligible:
        return cls(
            "pre_consultation_required",
            "オンライン初診の前に診療前相談が必要です。先に「診療前相談」をご予約ください",
            "An online first visit needs a pre-consultation first. Please book a pre-consultation.",
        )
