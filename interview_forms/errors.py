"""What can go wrong with a questionnaire or its answers, in Japanese and English.

    InterviewFormError
     └── DefinitionError      a definition that cannot be loaded (carries its Problems)

Problems with a definition (:class:`Problem`) and with answers (:class:`AnswerError`) are values,
not exceptions: callers show all of them at once. Every one has a stable rule ``code`` (tests and
the browser evaluator use it) and a message in both languages built from :mod:`.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .messages import message

Severity = Literal["error", "warning"]


class InterviewFormError(Exception):
    """Base of this package's exceptions."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule in a definition: where (``link_id``, ``None`` for the whole resource)."""

    code: str
    link_id: str | None
    message_ja: str
    message_en: str
    severity: Severity = "error"

    @classmethod
    def of(
        cls, code: str, link_id: str | None, severity: Severity = "error", **params: object
    ) -> Problem:
        ja, en = message(code, link_id=link_id or "", **params)
        return cls(code, link_id, ja, en, severity)


@dataclass(frozen=True, slots=True)
class AnswerError:
    """One problem with the answers: ``key`` is the item's path (see :mod:`.engine`)."""

    key: str
    link_id: str
    code: str
    message_ja: str
    message_en: str

    @classmethod
    def of(cls, code: str, key: str, link_id: str, **params: object) -> AnswerError:
        ja, en = message(code, link_id=link_id, **params)
        return cls(key, link_id, code, ja, en)


class DefinitionError(InterviewFormError):
    """The document is not a questionnaire this package can read; ``problems`` says where."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("; ".join(f"{p.link_id or '-'}: {p.code}" for p in problems))
        self.problems = problems
