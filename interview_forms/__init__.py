"""Interview forms (問診): FHIR R4 Questionnaire definitions, the branching engine and responses.

Public surface: load a definition (:func:`load`, :func:`from_fhir`, :func:`to_fhir`), check it on
upload (:func:`validate`), evaluate answers as the patient goes (:func:`evaluate`) and accept them
(:func:`submit`). Everything here is pure: no database, no network, no clock.
"""

from .definition import (
    AnswerOption,
    EnableWhen,
    Item,
    Outcome,
    OutcomeAction,
    Questionnaire,
    from_fhir,
    load,
    to_fhir,
)
from .engine import Evaluation, SubmitResult, answers_from_response, evaluate, prune, submit
from .errors import AnswerError, DefinitionError, InterviewFormError, Problem
from .validate import Validation, response_problems, validate

__all__ = [
    "AnswerError",
    "AnswerOption",
    "DefinitionError",
    "EnableWhen",
    "Evaluation",
    "InterviewFormError",
    "Item",
    "Outcome",
    "OutcomeAction",
    "Problem",
    "Questionnaire",
    "SubmitResult",
    "Validation",
    "answers_from_response",
    "evaluate",
    "from_fhir",
    "load",
    "prune",
    "response_problems",
    "submit",
    "to_fhir",
    "validate",
]
