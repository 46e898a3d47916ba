"""Staff pages of questionnaires: authoring (drafts, validation, preview, test cases, publish,
import/export) and the doctor's view of a patient's answers.

Authoring is for the clinic's doctors and administrator (``form.manage``; others 403); a
version or key that is not the clinic's answers 404. Every change is audited
(``questionnaire.*``; refusals as ``form.manage``); a refused change (invalid definition,
failing test case, a published version) shows the page again with the problems (422, or 409
for an immutable version) and writes nothing. The doctor's view (``form.response.read``:
doctors, nurses, the administrator — not reception) is audited as a read of patient data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

import yaml
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from booking import setup
from booking.models import Clinic
from interview_forms import summary as summaries
from interview_forms import versions
from interview_forms.definition import EnableWhen, Item, Questionnaire
from interview_forms.errors import Problem
from interview_forms.models import QuestionnaireVersion, VersionStatus
from interview_forms.values import Coding, TypedValue
from interview_forms.versions import CaseResult, VersionRefused
from patient_portal.accounts import service as accounts
from patient_portal.audit.models import Outcome
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.problems import Text
from patient_portal.templating import request_locale
from patient_portal.views.booking import (
    clinician_appointment,
    clock,
    menu_title,
)
from patient_portal.views.common import (
    authorize,
    form_of,
    message,
    page,
    record,
    redirect,
    require,
)
from patient_portal.views.form_attachments import referenced

MAX_DOCUMENT: Final = 900_000  # characters; the form body limit is 1 MiB
NOTICES: Final = frozenset({"created", "saved", "tests", "published", "draft", "discarded"})


# --- who may do what -----------------------------------------------------------------------------


async def _manager(request: Request) -> Principal:
    """A doctor or the administrator of a clinic (others 403; nobody → sign-in)."""
    principal = require(request, "staff")
    clinic = frozenset({principal.clinic_id}) if principal.clinic_id else frozenset()
    await authorize(
        request, principal, Action.FORM_MANAGE, Resource("questionnaire", clinic_ids=clinic)
    )
    return principal


def _resource(principal: Principal, version: QuestionnaireVersion) -> Resource:
    return Resource("questionnaire", str(version.id), clinic_ids=frozenset({principal.clinic_id}))


async def _version(request: Request, principal: Principal) -> QuestionnaireVersion:
    version_id = str(request.path_params["version_id"])
    version = await versions.clinic_version(principal.clinic_id, version_id)
    if version is None:  # refused and audited like any foreign id, answered 404
        await authorize(
            request, principal, Action.FORM_MANAGE, Resource("questionnaire", version_id)
        )
        raise HTTPException(404)
    return version


async def _key(request: Request, principal: Principal) -> versions.KeySummary:
    key = str(request.path_params["key"])[:64]
    found = await versions.key_versions(principal.clinic_id, key)
    if found is None:
        await authorize(request, principal, Action.FORM_MANAGE, Resource("questionnaire", key))
        raise HTTPException(404)
    return found


async def _audit(
    request: Request,
    principal: Principal,
    action: str,
    version: QuestionnaireVersion,
    outcome: Outcome = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    await record(
        request,
        principal,
        action,
        _resource(principal, version),
        outcome,
        detail={"key": version.key, "version": version.version, **detail},
    )


# --- view models ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProblemView:
    link_id: str
    code: str
    message: str
    warning: bool


@dataclass(frozen=True, slots=True)
class CaseView:
    number: int
    name: str
    passed: bool
    failures: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    question: str  # the question's label
    operator: str
    answer: str


@dataclass(slots=True)
class Row:
    """One item of the structured view and the preview."""

    link_id: str
    type: str
    text: str  # as shown (summary label or text)
    raw_text: str  # the item's text as written
    depth: int
    required: bool
    repeats: bool
    hidden: bool
    read_only: bool
    calculated: bool
    behavior: str
    conditions: list[Condition]
    options: list[str]
    unit: str
    control: str
    children: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutcomeView:
    id: str
    action: str
    message: str
    behavior: str
    conditions: tuple[Condition, ...]
    menu: str


def _problems(request: Request, problems: tuple[Problem, ...] | list[Problem]) -> list[ProblemView]:
    return [
        ProblemView(
            p.link_id or "",
            p.code,
            message(request, Text(p.message_ja, p.message_en)),
            p.severity == "warning",
        )
        for p in problems
    ]


def _cases(request: Request, results: tuple[CaseResult, ...]) -> list[CaseView]:
    return [
        CaseView(
            r.index + 1,
            r.name,
            r.passed,
            tuple(message(request, Text(f.message_ja, f.message_en)) for f in r.failures),
        )
        for r in results
    ]


def _answer_text(value: TypedValue | None) -> str:
    if value is None:
        return "?"
    raw = value.value
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, Coding):
        return raw.display or raw.code
    return (
        json.dumps(value.to_json(), ensure_ascii=False)
        if not isinstance(raw, str | int | float)
        else str(raw)
    )


def _condition(q: Questionnaire, condition: EnableWhen, locale: str) -> Condition:
    source = q.item(condition.question)
    label = summaries.label_of(source, locale) if source else condition.question
    return Condition(label, condition.operator, _answer_text(condition.answer))


def _rows(q: Questionnaire, items: tuple[Item, ...], depth: int, locale: str) -> list[Row]:
    out = []
    for item in items:
        unit = (item.unit.display or item.unit.code) if item.unit else ""
        out.append(
            Row(
                link_id=item.link_id,
                type=item.type,
                text=summaries.label_of(item, locale) if item.text else "",
                raw_text=item.text or "",
                depth=depth,
                required=item.required,
                repeats=item.repeats,
                hidden=item.hidden,
                read_only=item.read_only,
                calculated=item.calculated_expression is not None,
                behavior=item.enable_behavior or "all",
                conditions=[_condition(q, c, locale) for c in item.enable_when],
                options=[_answer_text(o.value) for o in item.answer_options],
                unit=unit,
                control=item.item_control or "",
                children=_rows(q, item.items, depth + 1, locale),
            )
        )
    return out


def _flat(rows: list[Row]) -> list[Row]:
    out = []
    for row in rows:
        out.append(row)
        out += _flat(row.children)
    return out


def _outcomes(q: Questionnaire, request: Request) -> list[OutcomeView]:
    locale = request_locale(request)
    return [
        OutcomeView(
            o.id,
            o.action,
            message(request, Text(o.message_ja, o.message_en or o.message_ja)),
            o.behavior,
            tuple(_condition(q, c, locale) for c in o.conditions),
            o.menu or "",
        )
        for o in q.outcomes
    ]


class _YamlDumper(yaml.SafeDumper):
    """No anchors or aliases: :func:`interview_forms.versions.parse` refuses them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _document_text(data: dict[str, Any], fmt: str) -> str:
    data = versions.fhir_order(data)
    if fmt == "yaml":
        return yaml.dump(data, Dumper=_YamlDumper, allow_unicode=True, sort_keys=False, width=100)
    return json.dumps(data, ensure_ascii=False, indent=2)


def _design(request: Request, q: Questionnaire | None) -> dict[str, Any]:
    """The structured view, outcomes and preview of a definition (empty when unreadable)."""
    if q is None:
        return {"rows": [], "flat_rows": [], "outcome_views": [], "title": ""}
    rows = _rows(q, q.items, 0, request_locale(request))
    return {
        "rows": rows,
        "flat_rows": _flat(rows),
        "outcome_views": _outcomes(q, request),
        "title": q.title or "",
    }


# --- the list, and creating a questionnaire ------------------------------------------------------


async def _menus_by_key(clinic_id: str, locale: str) -> dict[str, list[str]]:
    """Menu titles by the questionnaire key they name (Menu.questionnaire_id)."""
    out: dict[str, list[str]] = {}
    for menu in await setup.menus(await Clinic.get(id=clinic_id)):
        if menu.questionnaire_id:
            out.setdefault(menu.questionnaire_id, []).append(menu_title(menu, locale))
    return out


async def _list_page(
    request: Request, principal: Principal, status: int = 200, **context: Any
) -> Response:
    values = {
        "key": "",
        "template": "",
        "document": "",
        "source": "template",
        **context.pop("values", {}),
    }
    keys = await versions.clinic_versions(principal.clinic_id)
    menus = await _menus_by_key(principal.clinic_id, request_locale(request))
    published = {k.key for k in keys if k.published is not None}
    return page(
        request,
        "forms_staff/list.html",
        {
            "keys": keys,
            "menus": menus,
            "unanswerable": sorted(
                (title, key)
                for key, titles in menus.items()
                if key not in published
                for title in titles
            ),
            "templates": versions.templates(),
            "values": values,
            "problems": context.pop("problems", []),
            "error": context.pop("error", None),
        },
        status,
    )


async def questionnaire_list(request: Request) -> Response:
    principal = await _manager(request)
    if request.method == "GET":
        return await _list_page(request, principal)
    form = await form_of(request)
    source = form.get("source", "template")
    key = form.get("key", "").strip().lower()[:64]
    values = {"key": key, "source": source, "template": form.get("template", "")}
    if source == "template":
        chosen = versions.template(form.get("template", ""))
        if chosen is None:
            return await _list_page(
                request, principal, 422, values=values, error=message(request, CHOOSE_TEMPLATE)
            )
        document = chosen.text
    else:
        document = form.get("document", "")[:MAX_DOCUMENT]
        values["document"] = document
        if not key:
            key = versions.key_from(versions.parse(document).data) or ""
            values["key"] = key
    try:
        version, _ = await versions.create_draft(
            principal.clinic_id, key, document, created_by=principal.id, now=clock(request)
        )
    except VersionRefused as refused:
        await record(
            request,
            principal,
            "questionnaire.create",
            Resource("questionnaire", key, clinic_ids=frozenset({principal.clinic_id})),
            Outcome.FAILURE,
            detail={"key": key, "reason": refused.code},
        )
        return await _list_page(
            request,
            principal,
            422,
            values=values,
            error=message(request, Text(refused.message_ja, refused.message_en)),
            problems=_problems(request, refused.problems),
        )
    await _audit(request, principal, "questionnaire.create", version, source=source)
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=created")


async def key_page(request: Request) -> Response:
    principal = await _manager(request)
    found = await _key(request, principal)
    menus = await _menus_by_key(principal.clinic_id, request_locale(request))
    context = {"found": found, "menus": menus.get(found.key, []), "problems": [], "error": None}
    return page(request, "forms_staff/key.html", {**context, "document": ""})


async def new_draft(request: Request) -> Response:
    principal = await _manager(request)
    found = await _key(request, principal)
    if found.draft is not None:
        return redirect(f"/staff/questionnaires/versions/{found.draft.id}")
    source = found.published or found.versions[0]
    try:
        version = await versions.new_draft_from(source, created_by=principal.id, now=clock(request))
    except VersionRefused:  # a colleague made one a moment ago
        return redirect(f"/staff/questionnaires/keys/{found.key}")
    await _audit(request, principal, "questionnaire.draft", version, copied_from=source.version)
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=draft")


async def import_into_key(request: Request) -> Response:
    principal = await _manager(request)
    found = await _key(request, principal)
    document = (await form_of(request)).get("document", "")[:MAX_DOCUMENT]
    try:
        version, _ = await versions.create_draft(
            principal.clinic_id,
            found.key,
            document,
            created_by=principal.id,
            now=clock(request),
            new_key=False,
        )
    except VersionRefused as refused:
        return page(
            request,
            "forms_staff/key.html",
            {
                "found": found,
                "menus": [],
                "document": document,
                "error": message(request, Text(refused.message_ja, refused.message_en)),
                "problems": _problems(request, refused.problems),
            },
            422,
        )
    await _audit(request, principal, "questionnaire.import", version)
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=created")


# --- the editor ----------------------------------------------------------------------------------


async def _editor_page(
    request: Request,
    version: QuestionnaireVersion,
    *,
    status: int = 200,
    document: str | None = None,
    tests: str | None = None,
    problems: list[ProblemView] | None = None,
    error: str | None = None,
    results: tuple[CaseResult, ...] | None = None,
) -> Response:
    fmt = "yaml" if request.query_params.get("format") == "yaml" else "json"
    validation, stored_results = versions.results_of(version)
    parsed_q = validation.questionnaire
    if document is not None:
        parsed = versions.parse(document)
        parsed_q = parsed.questionnaire or parsed_q
    siblings = await versions.key_versions(str(version.clinic_id), version.key)
    done = request.query_params.get("done", "")
    return page(
        request,
        "forms_staff/editor.html",
        {
            "version": version,
            "editable": version.status is VersionStatus.DRAFT,
            "siblings": siblings,
            "format": fmt,
            "document": document if document is not None else _document_text(version.body, fmt),
            "tests_text": tests
            if tests is not None
            else json.dumps(version.tests, ensure_ascii=False, indent=2),
            "problems": problems
            if problems is not None
            else _problems(request, validation.problems),
            "cases": _cases(request, results if results is not None else stored_results),
            "error": error,
            "notice": done if done in NOTICES else "",
            **_design(request, parsed_q),
        },
        status,
    )


async def editor(request: Request) -> Response:
    principal = await _manager(request)
    version = await _version(request, principal)
    if request.method == "GET":
        return await _editor_page(request, version)
    document = (await form_of(request)).get("document", "")[:MAX_DOCUMENT]
    try:
        results = await versions.update_draft(version, document=document, now=clock(request))
    except VersionRefused as refused:
        return await _refused(
            request, principal, version, refused, "questionnaire.update", document=document
        )
    await _audit(request, principal, "questionnaire.update", version)
    failing = sum(not r.passed for r in results)
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=saved&failing={failing}")


async def _refused(
    request: Request,
    principal: Principal,
    version: QuestionnaireVersion,
    refused: VersionRefused,
    action: str,
    **shown: Any,
) -> Response:
    await _audit(request, principal, action, version, Outcome.FAILURE, reason=refused.code)
    return await _editor_page(
        request,
        version,
        status=409 if refused.code == "not-a-draft" else 422,
        error=message(request, Text(refused.message_ja, refused.message_en)),
        problems=_problems(request, refused.problems) if refused.problems else None,
        results=refused.results or None,
        **shown,
    )


async def save_items(request: Request) -> Response:
    """The structured view's edits: question texts and which questions are required."""
    principal = await _manager(request)
    version = await _version(request, principal)
    form = await request.form()
    texts = {
        key[len("text:") :]: value.replace("\x00", "")[:2000]
        for key, value in form.multi_items()
        if key.startswith("text:") and isinstance(value, str)
    }
    required = {v for v in form.getlist("required") if isinstance(v, str)}
    body = versions.with_item_edits(version.body, texts, required)
    try:
        await versions.update_draft(version, document=versions.parse_data(body), now=clock(request))
    except VersionRefused as refused:
        return await _refused(request, principal, version, refused, "questionnaire.update")
    await _audit(request, principal, "questionnaire.update", version, via="items")
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=saved#structure")


async def save_tests(request: Request) -> Response:
    principal = await _manager(request)
    version = await _version(request, principal)
    text = (await form_of(request)).get("tests", "")[:MAX_DOCUMENT]
    try:
        tests = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as error:
        refused = VersionRefused(
            "invalid",
            (versions.tests_problem(f"JSON: {error.msg} ({error.lineno}:{error.colno})"),),
        )
        return await _refused(
            request, principal, version, refused, "questionnaire.tests", tests=text
        )
    try:
        await versions.update_draft(version, tests=tests, now=clock(request))
    except VersionRefused as refused:
        return await _refused(
            request, principal, version, refused, "questionnaire.tests", tests=text
        )
    await _audit(request, principal, "questionnaire.tests", version, cases=len(tests))
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=tests#tests")


async def publish(request: Request) -> Response:
    principal = await _manager(request)
    version = await _version(request, principal)
    try:
        retired = await versions.publish(version, now=clock(request))
    except VersionRefused as refused:
        return await _refused(request, principal, version, refused, "questionnaire.publish")
    await _audit(
        request,
        principal,
        "questionnaire.publish",
        version,
        retired=retired.version if retired else None,
    )
    return redirect(f"/staff/questionnaires/versions/{version.id}?done=published")


async def discard(request: Request) -> Response:
    principal = await _manager(request)
    version = await _version(request, principal)
    try:
        await versions.discard_draft(version)
    except VersionRefused as refused:
        return await _refused(request, principal, version, refused, "questionnaire.discard")
    await _audit(request, principal, "questionnaire.discard", version)
    remaining = await versions.key_versions(principal.clinic_id, version.key)
    if remaining is None:
        return redirect("/staff/questionnaires?done=discarded")
    return redirect(f"/staff/questionnaires/keys/{version.key}")


async def export(request: Request) -> Response:
    principal = await _manager(request)
    version = await _version(request, principal)
    await _audit(request, principal, "questionnaire.export", version)
    body = json.dumps(versions.export(version), ensure_ascii=False, indent=2)
    filename = f"{version.key}-v{version.version}.json"
    return Response(
        body,
        media_type="application/fhir+json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def validate_document(request: Request) -> Response:
    """Live validation for the editor's script: {document} → problems and the preview's HTML."""
    await _manager(request)
    try:
        payload = await request.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("document"), str):
        return JSONResponse({"ok": False, "problems": []}, status_code=422)
    parsed = versions.parse(payload["document"][:MAX_DOCUMENT])
    problems = list(parsed.validation.problems)
    questionnaire = parsed.questionnaire
    preview = page(request, "forms_staff/_preview.html", _design(request, questionnaire))
    return JSONResponse(
        {
            "ok": parsed.ok,
            "problems": [
                {"link_id": p.link_id, "code": p.code, "message": p.message, "warning": p.warning}
                for p in _problems(request, problems)
            ],
            "preview": bytes(preview.body).decode("utf-8") if questionnaire is not None else None,
        }
    )


# --- the doctor's view ---------------------------------------------------------------------------


async def doctor_view(request: Request) -> Response:
    """A patient's answers for an appointment, readable at a glance, with the S-note text."""
    principal, appointment, resource = await clinician_appointment(request)
    appointment_id = str(appointment.id)
    locale = request_locale(request)
    found = await versions.appointment_responses(principal.clinic_id, appointment_id)
    patient = (
        await accounts.find_patient(str(appointment.patient_id)) if appointment.patient_id else None
    )
    context: dict[str, Any] = {
        "appointment": appointment,
        "patient": accounts.view_of(patient) if patient else None,
        "summary": None,
        "response": None,
        "previous": None,
        "photos": [],
        "zone": ZoneInfo((await appointment.clinic).time_zone),
    }
    if found is not None:
        response, previous = found
        questionnaire, answers = versions.answers_of(response)
        zone = context["zone"]
        answered = (response.completed_at or response.updated_at).astimezone(zone)
        heading = (
            f"問診票「{response.questionnaire.title}」（{answered:%Y-%m-%d %H:%M} 回答）"
            if locale == "ja"
            else f"Questionnaire '{response.questionnaire.title}' "
            f"(answered {answered:%Y-%m-%d %H:%M})"
        )
        context.update(
            summary=summaries.summarize(
                questionnaire,
                answers,
                previous=versions.answers_of(previous) if previous else None,
                locale=locale,
                heading=heading,
            ),
            response=response,
            previous=previous,
            photos=[f"/staff/attachments/{key}" for key in referenced(response.structured)],
        )
    await record(
        request,
        principal,
        Action.FORM_RESPONSE_READ.value,
        resource,
        detail={
            "response": str(found[0].id) if found else None,
            "version": found[0].questionnaire.version if found else None,
        },
    )
    response_page = page(request, "forms_staff/answers.html", context)
    response_page.headers["Cache-Control"] = "no-store"
    return response_page


CHOOSE_TEMPLATE = Text("テンプレートを選んでください。", "Choose a template.")


routes: list[BaseRoute] = [
    Route("/staff/questionnaires", questionnaire_list, methods=["GET", "POST"]),
    Route("/staff/questionnaires/validate", validate_document, methods=["POST"]),
    Route("/staff/questionnaires/keys/{key}", key_page, methods=["GET"]),
    Route("/staff/questionnaires/keys/{key}/draft", new_draft, methods=["POST"]),
    Route("/staff/questionnaires/keys/{key}/import", import_into_key, methods=["POST"]),
    Route("/staff/questionnaires/versions/{version_id}", editor, methods=["GET", "POST"]),
    Route("/staff/questionnaires/versions/{version_id}/items", save_items, methods=["POST"]),
    Route("/staff/questionnaires/versions/{version_id}/tests", save_tests, methods=["POST"]),
    Route("/staff/questionnaires/versions/{version_id}/publish", publish, methods=["POST"]),
    Route("/staff/questionnaires/versions/{version_id}/discard", discard, methods=["POST"]),
    Route("/staff/questionnaires/versions/{version_id}/export", export, methods=["GET"]),
    Route("/staff/appointments/{appointment_id}/questionnaire", doctor_view, methods=["GET"]),
]
