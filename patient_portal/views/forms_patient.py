"""The patient's questionnaire: one section per screen, saved as a draft as they go.

The questionnaire of an appointment is the published version of its menu's questionnaire when the
patient starts; the response keeps pointing at that exact version. Every post saves the section's
answers (valid or not) before anything else, so nothing typed is lost; "send" runs the engine on
the server, which decides. Without JavaScript each section is a round trip (and a section is shown
again when an answer in it made more questions apply); with JavaScript the browser evaluator
shows and hides questions at once.

Outcomes: when the answers fire an outcome that rules out an online visit (an emergency, "come in
person", "no online first visit") and the appointment is online, the hold is let go and the
patient is told what to do instead; booking never confirms such an appointment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking import service as booking
from booking.errors import AppointmentNotFound
from booking.models import Appointment, AppointmentStatus, VisitMode
from interview_forms import form_view, responses
from interview_forms.definition import OutcomeAction, Questionnaire
from interview_forms.engine import evaluate
from interview_forms.errors import AnswerError
from interview_forms.models import FormResponse, ResponseStatus
from patient_portal import questionnaire_gate
from patient_portal.accounts import service as accounts
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.questionnaire_gate import online_blocked, response_resource
from patient_portal.templating import request_locale
from patient_portal.views.booking import appointment_resource, clock, menu_title
from patient_portal.views.common import authorize, page, record, redirect, require
from patient_portal.waitlist_jobs import watch_hold

MAX_FIELDS: Final = 2000


# --- pages ---------------------------------------------------------------------------------------


async def _context(request: Request) -> tuple[Principal, Appointment, FormResponse]:
    principal = require(request, "patient")
    appointment_id = str(request.path_params["appointment_id"])
    try:
        appointment = await booking.account_appointment(appointment_id, principal.id)
    except AppointmentNotFound:
        await authorize(
            request, principal, Action.FORM_ANSWER, Resource("appointment", appointment_id)
        )
        raise HTTPException(404) from None
    response = await responses.for_appointment(str(appointment.id))
    resource = Resource(
        "form_response",
        str(response.id) if response else "",
        clinic_ids=frozenset({str(appointment.clinic_id)}),  # type: ignore[attr-defined]
        patient_id=str(response.patient_id) if response else "",
        account_id=str(appointment.account_id),
    )
    await authorize(request, principal, Action.FORM_ANSWER, resource)
    if response is None:
        raise HTTPException(404)  # the confirm step starts it, for the patient chosen there
    if str(response.patient_id) not in principal.patient_ids:
        raise HTTPException(404)
    return principal, appointment, response


def _error_text(errors: Sequence[AnswerError], locale: str) -> dict[str, list[str]]:
    """Each item's messages; the linkId the messages start with means nothing to a patient."""
    out: dict[str, list[str]] = {}
    for error in errors:
        text = error.message_ja if locale == "ja" else error.message_en
        out.setdefault(error.key, []).append(text.removeprefix(f"{error.link_id}: "))
    return out


async def _render(
    request: Request,
    appointment: Appointment,
    response: FormResponse,
    section_index: int,
    *,
    errors: Sequence[AnswerError] = (),
    notice: str = "",
    status: int = 200,
) -> Response:
    version = response.questionnaire
    questionnaire = responses.definition_of(version)
    sections = form_view.sections(questionnaire)
    if not sections:
        raise HTTPException(404)
    index = max(0, min(section_index, len(sections) - 1))
    answers = form_view.padded(questionnaire, response.answers or {})
    evaluation = evaluate(questionnaire, answers)
    locale = request_locale(request)
    fields = form_view.build_fields(
        questionnaire, sections[index], answers, evaluation, locale, _error_text(errors, locale)
    )
    clinic = await appointment.clinic
    menu = await appointment.menu
    return page(
        request,
        "forms/section.html",
        {
            "appointment": appointment,
            "clinic": clinic,
            "title": menu_title(menu, locale),
            "questionnaire_title": form_view.translated(
                questionnaire.title, questionnaire.extra, "title", locale
            ),
            "section": sections[index],
            "section_title": _section_title(questionnaire, sections[index], locale),
            "count": len(sections),
            "fields": fields,
            "shown": [f.key for f in form_view.walk_fields(fields) if f.enabled],
            "last": index == len(sections) - 1,
            "notice": notice,
            "has_errors": bool(errors),
            "definition": _script_json(version.body),
            "answers": _script_json(answers),
            "offset": _offset(ZoneInfo(clinic.time_zone), clock(request)),
            "action": f"/appointments/{appointment.id}/questionnaire",
        },
        status=status,
    )


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no way to close it early)."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _section_title(questionnaire: Questionnaire, section: form_view.Section, locale: str) -> str:
    if section.link_id is None:
        return ""
    item = questionnaire.item(section.link_id)
    return form_view.item_text(item, locale) if item else ""


async def show(request: Request) -> Response:
    principal, appointment, response = await _context(request)
    await record(
        request,
        principal,
        "form.response.read",
        response_resource(appointment, response),
    )
    if response.status is ResponseStatus.COMPLETED:
        return redirect(f"/appointments/{appointment.id}/questionnaire/done")
    raw = request.query_params.get("section")
    index = int(raw) if raw and raw.isdigit() and len(raw) < 4 else response.section
    return await _render(request, appointment, response, index)


async def save(request: Request) -> Response:
    principal, appointment, response = await _context(request)
    if response.status is ResponseStatus.COMPLETED:
        return redirect(f"/appointments/{appointment.id}/questionnaire/done")
    now = clock(request)
    strings: dict[str, list[str]] = {}
    uploads: dict[str, tuple[str, bytes]] = {}  # key → (file name, content)
    async with request.form(max_fields=MAX_FIELDS, max_files=20) as form:
        for name, value in form.multi_items():
            if isinstance(value, str):
                strings.setdefault(name, []).append(value.replace("\x00", ""))
            elif _is_upload(value) and value.filename and name.startswith(form_view.PREFIX):
                content = await value.read(responses.MAX_ATTACHMENT_BYTES + 1)
                uploads[name[len(form_view.PREFIX) :]] = (value.filename, content)
    action = (strings.get("action") or ["next"])[0]
    questionnaire = responses.definition_of(response.questionnaire)
    sections = form_view.sections(questionnaire)
    raw_index = (strings.get("section") or ["0"])[0]
    index = int(raw_index) if raw_index.isdigit() and len(raw_index) < 4 else 0
    index = max(0, min(index, len(sections) - 1))
    section = sections[index]

    attachments: dict[str, Any] = {}
    upload_errors: list[AnswerError] = []
    for key, (file_name, data) in uploads.items():
        try:
            attachments[key] = await responses.add_attachment(
                response, form_view.link_id_of(key), data, title=file_name, now=now
            )
        except responses.AttachmentRefused as refused:
            upload_errors.append(
                AnswerError(
                    key,
                    form_view.link_id_of(key),
                    refused.reason,
                    refused.message_ja,
                    refused.message_en,
                )
            )
    zone = ZoneInfo((await appointment.clinic).time_zone)
    offset = _offset(zone, now)
    add = action.removeprefix("add:") if action.startswith("add:") else None
    remove = action.removeprefix("remove:") if action.startswith("remove:") else None
    answers = form_view.merge_section(
        questionnaire,
        section,
        response.answers or {},
        strings,
        zone_offset=offset,
        attachments=attachments,
        add_instance=add,
        remove_instance=remove,
    )
    await responses.save_draft(response, answers, index, now=now)
    await record(
        request,
        principal,
        "form.response.save",
        response_resource(appointment, response),
    )
    if await booking.extend_hold(appointment, now=now):
        await watch_hold(request.app.state.jobs, appointment)
    if upload_errors:
        return await _render(
            request, appointment, response, index, errors=upload_errors, status=422
        )
    if add is not None or remove is not None:
        return await _render(request, appointment, response, index)
    if action == "back":
        return redirect(f"/appointments/{appointment.id}/questionnaire?section={max(0, index - 1)}")

    padded = form_view.padded(questionnaire, answers)
    evaluation = evaluate(questionnaire, padded)
    where = form_view.section_of(questionnaire, sections)
    here = [e for e in evaluation.errors if where.get(form_view.link_id_of(e.key)) == index] + [
        AnswerError.of("required", key, form_view.link_id_of(key))
        for key in evaluation.missing_required
        if where.get(form_view.link_id_of(key)) == index
    ]
    shown = set(strings.get("shown", []))
    appeared = [
        key
        for key in evaluation.enabled
        if where.get(form_view.link_id_of(key)) == index
        and key not in shown
        and form_view.answerable(questionnaire, key)
    ]
    # Questions that only now apply are not the patient's mistake: show them, without errors.
    seen = [error for error in here if error.key not in appeared]
    if seen or appeared:
        status = 422 if seen else 200
        notice = "more" if appeared else ""
        return await _render(
            request, appointment, response, index, errors=seen, notice=notice, status=status
        )
    if action != "send" and index < len(sections) - 1:
        following = form_view.next_section(evaluation, sections, where, index)
        if following is not None:
            await responses.save_draft(response, answers, following, now=now)
            return redirect(f"/appointments/{appointment.id}/questionnaire?section={following}")
    return await _send(request, principal, appointment, response, questionnaire, answers)


def _is_upload(value: object) -> bool:
    return isinstance(value, UploadFile)


def _offset(zone: ZoneInfo, now: datetime) -> str:
    offset = now.astimezone(zone).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


async def _send(
    request: Request,
    principal: Principal,
    appointment: Appointment,
    response: FormResponse,
    questionnaire: Questionnaire,
    answers: dict[str, Any],
) -> Response:
    now = clock(request)
    result = await responses.send(response, questionnaire, answers, now=now)
    if not result.ok:
        sections = form_view.sections(questionnaire)
        where = form_view.section_of(questionnaire, sections)
        first = min((where.get(form_view.link_id_of(e.key), 0) for e in result.errors), default=0)
        wanted = [e for e in result.errors if where.get(form_view.link_id_of(e.key), 0) == first]
        return await _render(request, appointment, response, first, errors=wanted, status=422)
    await record(
        request,
        principal,
        "form.response.complete",
        response_resource(appointment, response),
    )
    _, released = await questionnaire_gate.release_if_ruled_out(appointment, response, now)
    if released:
        await record(request, principal, "appointment.release", appointment_resource(appointment))
    return redirect(f"/appointments/{appointment.id}/questionnaire/done")


async def done(request: Request) -> Response:
    principal, appointment, response = await _context(request)
    if response.status is not ResponseStatus.COMPLETED:
        return redirect(f"/appointments/{appointment.id}/questionnaire")
    locale = request_locale(request)
    menu = await appointment.menu
    clinic = await appointment.clinic
    outcomes = response.outcomes if isinstance(response.outcomes, list) else []
    blocked = online_blocked(menu, response)
    menus = {str(m.id): m for m in await booking.patient_menus(clinic)}
    shown = []
    for outcome in outcomes:
        target = menus.get(str(outcome.get("menu") or ""))
        shown.append(
            {
                "action": outcome.get("action"),
                "text": outcome.get("message_ja" if locale == "ja" else "message_en") or "",
                "menu": target,
                "menu_title": menu_title(target, locale) if target else "",
            }
        )
    in_person = [m for m in menus.values() if m.mode is not VisitMode.ONLINE and m.id != menu.id]
    family = await accounts.patients_of_account(principal.id)
    patient = next((p for p in family if str(p.id) == str(response.patient_id)), None)
    return page(
        request,
        "forms/done.html",
        {
            "appointment": appointment,
            "clinic": clinic,
            "outcomes": shown,
            "emergency": any(o["action"] == OutcomeAction.CALL_AMBULANCE for o in shown),
            "blocked": bool(blocked),
            "in_person": in_person if blocked else [],
            "held": appointment.status is AppointmentStatus.HELD,
            "patient": patient,
        },
    )


routes = [
    Route("/appointments/{appointment_id}/questionnaire", show, methods=["GET"]),
    Route("/appointments/{appointment_id}/questionnaire", save, methods=["POST"]),
    Route("/appointments/{appointment_id}/questionnaire/done", done, methods=["GET"]),
]
