"""``/api/v1`` questionnaire endpoints: the definition of an appointment's questionnaire, drafts
of the answers, and sending them (the server's check decides).

Answers travel in the engine's shape (see :mod:`interview_forms.engine`): ``{linkId: value}``,
a repeating group as a list of answer sets. Errors name the item by its key (``meds[1]/dose``)
and carry messages in Japanese and English.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request

from booking import service as booking
from booking.errors import AppointmentNotFound
from booking.models import Appointment
from interview_forms import responses, versions
from interview_forms import summary as summaries
from interview_forms.engine import Evaluation, evaluate
from interview_forms.models import FormResponse, ResponseStatus
from patient_portal import questionnaire_gate
from patient_portal.api.v1 import api
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.problems import CONFLICT, NOT_FOUND, VALIDATION, Problem, Text
from patient_portal.questionnaire_gate import response_resource
from patient_portal.views.booking import appointment_resource, clinician_appointment, clock
from patient_portal.views.common import authorize, record, require
from patient_portal.views.form_attachments import referenced
from patient_portal.waitlist_jobs import watch_hold

NOT_A_FAMILY_MEMBER = Text(
    "この方はこのアカウントの患者ではありません", "Not a patient of this account"
)
NO_QUESTIONNAIRE = Text("この予約には問診票がありません", "This appointment has no questionnaire")
ALREADY_SENT = Text("問診票はすでに送信済みです", "The questionnaire has already been sent")


class AnswerErrorOut(BaseModel):
    key: str
    link_id: str
    code: str
    message_ja: str
    message_en: str


class OutcomeOut(BaseModel):
    id: str
    action: str
    message_ja: str
    message_en: str
    menu: str | None = None


class QuestionnaireOut(BaseModel):
    questionnaire: dict[str, Any] = Field(description="The FHIR R4 Questionnaire to answer")
    status: str = Field(description="not_started, in_progress or completed")
    patient_id: str | None
    answers: dict[str, Any]
    response: dict[str, Any] | None = Field(
        None, description="The FHIR R4 QuestionnaireResponse, once sent"
    )
    outcomes: list[OutcomeOut] = []


class AnswersIn(BaseModel):
    patient_id: str = Field(max_length=64)
    answers: dict[str, Any] = Field(default_factory=dict)
    section: int = Field(0, ge=0, le=999)


class DraftOut(BaseModel):
    status: str
    enabled: list[str]
    missing_required: list[str]
    errors: list[AnswerErrorOut]
    outcomes: list[OutcomeOut]


class SentOut(BaseModel):
    status: str
    response: dict[str, Any]
    outcomes: list[OutcomeOut]
    online_blocked: bool = Field(
        description="The answers rule out this online visit: the hold was let go"
    )


async def _appointment(request: Request) -> tuple[Principal, Appointment]:
    principal = require(request, "patient")
    appointment_id = str(request.path_params["appointment_id"])
    try:
        appointment = await booking.account_appointment(appointment_id, principal.id)
    except AppointmentNotFound:
        await authorize(
            request, principal, Action.FORM_ANSWER, Resource("appointment", appointment_id)
        )
        raise Problem(NOT_FOUND) from None
    await authorize(request, principal, Action.FORM_ANSWER, appointment_resource(appointment))
    return principal, appointment


def _outcomes(items: Any) -> list[OutcomeOut]:
    return [
        OutcomeOut(
            id=str(o.get("id", "")),
            action=str(o.get("action", "")),
            message_ja=str(o.get("message_ja", "")),
            message_en=str(o.get("message_en", "")),
            menu=o.get("menu"),
        )
        for o in (items if isinstance(items, list) else [])
        if isinstance(o, dict)
    ]


def _evaluation_outcomes(evaluation: Evaluation) -> list[OutcomeOut]:
    return [
        OutcomeOut(
            id=o.id, action=o.action, message_ja=o.message_ja, message_en=o.message_en, menu=o.menu
        )
        for o in evaluation.outcomes
    ]


@api.endpoint(
    "GET",
    "/appointments/{appointment_id}/questionnaire",
    summary="The questionnaire of an appointment, with the answers given so far",
    response=QuestionnaireOut,
    tags=("questionnaires",),
    problems=(401, 404),
)
async def get_questionnaire(request: Request) -> QuestionnaireOut:
    principal, appointment = await _appointment(request)
    version = await questionnaire_gate.questionnaire_needed(appointment)
    if version is None:
        raise Problem(NOT_FOUND, NO_QUESTIONNAIRE)
    response = await responses.for_appointment(str(appointment.id))
    if response is None:
        return QuestionnaireOut(
            questionnaire=version.body,
            status="not_started",
            patient_id=None,
            answers={},
            response=None,
        )
    await record(
        request,
        principal,
        "form.response.read",
        response_resource(appointment, response),
    )
    return QuestionnaireOut(
        questionnaire=response.questionnaire.body,
        status=response.status.value,
        patient_id=str(response.patient_id),
        answers=response.answers or {},
        response=response.response,
        outcomes=_outcomes(response.outcomes),
    )


async def _draft(request: Request, body: AnswersIn) -> tuple[Principal, Appointment, FormResponse]:
    principal, appointment = await _appointment(request)
    if body.patient_id not in principal.patient_ids:
        raise Problem(VALIDATION, NOT_A_FAMILY_MEMBER)
    response = await questionnaire_gate.begin(appointment, body.patient_id, clock(request))
    if response is None:
        raise Problem(NOT_FOUND, NO_QUESTIONNAIRE)
    if response.status is ResponseStatus.COMPLETED:
        raise Problem(CONFLICT, ALREADY_SENT)
    if str(response.patient_id) != body.patient_id:
        raise Problem(CONFLICT, ALREADY_SENT)
    return principal, appointment, response


@api.endpoint(
    "PUT",
    "/appointments/{appointment_id}/questionnaire",
    summary="Save the answers so far (a draft); says what applies, what is missing, what is wrong",
    body=AnswersIn,
    response=DraftOut,
    tags=("questionnaires",),
    problems=(401, 404, 409, 422),
)
async def put_answers(request: Request, body: AnswersIn) -> DraftOut:
    principal, appointment, response = await _draft(request, body)
    now = clock(request)
    await responses.save_draft(response, body.answers, body.section, now=now)
    await record(
        request,
        principal,
        "form.response.save",
        response_resource(appointment, response),
    )
    if await booking.extend_hold(appointment, now=now):
        await watch_hold(request.app.state.jobs, appointment)
    evaluation = evaluate(responses.definition_of(response.questionnaire), body.answers)
    return DraftOut(
        status=response.status.value,
        enabled=sorted(evaluation.enabled),
        missing_required=list(evaluation.missing_required),
        errors=[AnswerErrorOut(**_error(e)) for e in evaluation.errors],
        outcomes=_evaluation_outcomes(evaluation),
    )


def _error(error: Any) -> dict[str, str]:
    return {
        "key": error.key,
        "link_id": error.link_id,
        "code": error.code,
        "message_ja": error.message_ja,
        "message_en": error.message_en,
    }


@api.endpoint(
    "POST",
    "/appointments/{appointment_id}/questionnaire/submit",
    summary="Send the answers: the server re-evaluates, drops what no longer applies, validates",
    body=AnswersIn,
    response=SentOut,
    tags=("questionnaires",),
    problems=(401, 404, 409, 422),
)
async def submit_answers(request: Request, body: AnswersIn) -> SentOut:
    principal, appointment, response = await _draft(request, body)
    now = clock(request)
    questionnaire = responses.definition_of(response.questionnaire)
    result = await responses.send(response, questionnaire, body.answers, now=now)
    if not result.ok:
        raise Problem(
            VALIDATION,
            Text("回答を確認してください", "Please check the answers"),
            extensions={"answer_errors": [_error(e) for e in result.errors]},
        )
    await record(
        request,
        principal,
        "form.response.complete",
        response_resource(appointment, response),
    )
    blocked, released = await questionnaire_gate.release_if_ruled_out(appointment, response, now)
    if released:
        await record(request, principal, "appointment.release", appointment_resource(appointment))
    return SentOut(
        status=response.status.value,
        response=response.response or {},
        outcomes=_outcomes(response.outcomes),
        online_blocked=blocked,
    )


# --- the clinic's side ---------------------------------------------------------------------------


class FlagOut(BaseModel):
    action: str
    message_ja: str
    message_en: str
    keys: list[str]


class AnswersForClinic(BaseModel):
    questionnaire: str = Field(description="The canonical url|version the patient answered")
    completed_at: str
    summary_ja: str = Field(description="Japanese text for the subjective (S) part of a SOAP note")
    summary_en: str
    red_flags: list[FlagOut]
    response: dict[str, Any] = Field(description="The FHIR R4 QuestionnaireResponse")
    photos: list[str] = Field(description="Where the clinic's staff fetch the attached photos")


@api.endpoint(
    "GET",
    "/staff/appointments/{appointment_id}/questionnaire",
    summary="A patient's answers for an appointment, with the S-note summary (for the karte)",
    response=AnswersForClinic,
    tags=("questionnaires",),
    problems=(401, 403, 404),
)
async def get_answers_for_clinic(request: Request) -> AnswersForClinic:
    """For doctors, nurses and the administrator of the appointment's clinic; every read is
    recorded in the audit log. 404 when the appointment has no completed answers."""
    principal, appointment, resource = await clinician_appointment(request)
    appointment_id = str(appointment.id)
    found = await versions.appointment_responses(principal.clinic_id, appointment_id)
    if found is None:
        raise Problem(NOT_FOUND, Text("回答はまだありません", "No answers yet"))
    response, previous = found
    questionnaire, answers = versions.answers_of(response)
    summary = summaries.summarize(
        questionnaire,
        answers,
        previous=versions.answers_of(previous) if previous else None,
    )
    await record(request, principal, Action.FORM_RESPONSE_READ.value, resource)
    return AnswersForClinic(
        questionnaire=str((response.response or {}).get("questionnaire", "")),
        completed_at=(response.completed_at or response.updated_at).isoformat(),
        summary_ja=summary.text_ja,
        summary_en=summary.text_en,
        red_flags=[
            FlagOut(
                action=f.action, message_ja=f.message_ja, message_en=f.message_en, keys=list(f.keys)
            )
            for f in summary.flags
        ],
        response=response.response or {},
        photos=[f"/staff/attachments/{key}" for key in referenced(response.structured)],
    )
