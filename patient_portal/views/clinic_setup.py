"""Staff pages where the clinic administrator sets up the clinic: profile, practitioners,
menus, weekly hours and date exceptions.

Only the clinic_admin of the clinic reaches them (other staff: 403); an id that is not one of
the clinic's answers 404, whoever's it is. Handlers read the form, hand it to
:mod:`booking.setup` and either redirect (saved, audited) or show the form again with a message
per field (422).
"""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from booking import setup
from booking.models import Clinic, Practitioner, VisitKind, VisitMode
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.problems import Text
from patient_portal.views.booking import clock
from patient_portal.views.common import (
    authorize,
    identity,
    message,
    page,
    record,
    redirect,
    require,
)

WEEKDAYS = range(7)


async def clinic_admin(request: Request) -> tuple[Principal, Clinic]:
    """The clinic admin and their clinic; other staff 403, patients and nobody to sign-in."""
    principal = require(request, "staff")
    await authorize(
        request,
        principal,
        Action.CLINIC_MANAGE,
        Resource("clinic", clinic_ids=frozenset({principal.clinic_id})),
    )
    return principal, await Clinic.get(id=principal.clinic_id)


async def not_found(request: Request, principal: Principal, kind: str, key: str) -> NoReturn:
    """Not one of this clinic's: audited as refused, answered 404 like a missing record."""
    await authorize(request, principal, Action.CLINIC_MANAGE, Resource(kind, key or "-"))
    raise HTTPException(404)


def setup_resource(clinic: Clinic, kind: str, key: object) -> Resource:
    return Resource(kind, str(key), clinic_ids=frozenset({str(clinic.id)}))


async def _form(request: Request) -> FormData:
    return await request.form()


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name, "")
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def _texts(form: FormData, name: str, limit: int = 64) -> list[str]:
    return [v.replace("\x00", "")[:limit] for v in form.getlist(name) if isinstance(v, str)][:50]


def _checked(form: FormData, name: str) -> bool:
    return _text(form, name) in ("1", "on", "true")


def _errors(request: Request, error: setup.SetupInvalid) -> dict[str, str]:
    return {
        field: message(request, Text(p.message_ja, p.message_en))
        for field, p in error.by_field().items()
    }


def _invalid(request: Request, error: setup.SetupInvalid) -> str:
    return message(request, Text(error.message_ja, error.message_en))


# --- profile --------------------------------------------------------------------------------


def _profile_form(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what to validate, what to show again)."""
    chosen = _texts(form, "reminder")
    other = setup.split_list(_text(form, "reminder_other", 200))
    data: dict[str, Any] = {
        name: _text(form, name, 400)
        for name in ("name", "name_kana", "postal_code", "address", "phone", "time_zone", "slug")
    }
    data["departments"] = setup.split_list(_text(form, "departments"))
    data["open_on_holidays"] = _checked(form, "open_on_holidays")
    data["reminder_offsets_minutes"] = chosen + other
    shown = {
        **data,
        "departments": _text(form, "departments"),
        "reminder": chosen,
        "reminder_other": _text(form, "reminder_other", 200),
    }
    return data, shown


def _profile_shown(clinic: Clinic) -> dict[str, Any]:
    values = setup.profile_of(clinic)
    offsets = values["reminder_offsets_minutes"]
    values["departments"] = "\n".join(values["departments"])
    values["reminder"] = [str(m) for m in offsets if m in setup.REMINDER_PRESETS]
    values["reminder_other"] = ", ".join(str(m) for m in offsets if m not in setup.REMINDER_PRESETS)
    return values


async def profile(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    context: dict[str, Any] = {
        "clinic": clinic,
        "values": _profile_shown(clinic),
        "errors": {},
        "error": None,
        "presets": setup.REMINDER_PRESETS,
        "saved": request.query_params.get("saved") == "1",
    }
    if request.method == "GET":
        return page(request, "clinic/profile.html", context)
    data, context["values"] = _profile_form(await _form(request))
    try:
        changed = await setup.update_clinic(clinic, setup.parse(setup.ClinicProfile, data))
    except setup.SetupInvalid as error:
        context.update(errors=_errors(request, error), error=_invalid(request, error))
        return page(request, "clinic/profile.html", context, 422)
    if changed:
        await record(
            request,
            principal,
            "clinic.update",
            setup_resource(clinic, "clinic", clinic.id),
            detail={"fields": changed},
        )
    return redirect("/staff/clinic?saved=1")


# --- practitioners --------------------------------------------------------------------------


async def practitioner_list(request: Request) -> Response:
    _, clinic = await clinic_admin(request)
    return page(
        request,
        "clinic/practitioners.html",
        {"clinic": clinic, "practitioners": await setup.practitioners(clinic)},
    )


async def _practitioner_page(
    request: Request,
    clinic: Clinic,
    practitioner: Practitioner | None,
    values: dict[str, Any],
    error: setup.SetupInvalid | None = None,
) -> Response:
    staff = [m for m in await identity(request).clinic_staff(str(clinic.id)) if m.is_active]
    return page(
        request,
        "clinic/practitioner.html",
        {
            "clinic": clinic,
            "practitioner": practitioner,
            "values": values,
            "staff": staff,
            "menus": await setup.menus(clinic),
            "errors": _errors(request, error) if error else {},
            "error": _invalid(request, error) if error else None,
        },
        422 if error else 200,
    )


def _practitioner_form(form: FormData) -> dict[str, Any]:
    return {
        "display_name": _text(form, "display_name", 400),
        "display_name_kana": _text(form, "display_name_kana", 400),
        "staff_id": _text(form, "staff_id", 64),
        "menu_ids": _texts(form, "menu_ids"),
    }


async def clinic_staff_ids(request: Request, clinic: Clinic) -> set[str]:
    return {str(m.id) for m in await identity(request).clinic_staff(str(clinic.id))}


async def practitioner_new(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    if request.method == "GET":
        empty = {"display_name": "", "display_name_kana": "", "staff_id": "", "menu_ids": []}
        return await _practitioner_page(request, clinic, None, empty)
    values = _practitioner_form(await _form(request))
    try:
        created = await setup.create_practitioner(
            clinic,
            setup.parse(setup.PractitionerInput, values),
            staff_ids=await clinic_staff_ids(request, clinic),
        )
    except setup.SetupInvalid as error:
        return await _practitioner_page(request, clinic, None, values, error)
    await record(
        request,
        principal,
        "practitioner.create",
        setup_resource(clinic, "practitioner", created.id),
    )
    return redirect("/staff/clinic/practitioners")


async def _practitioner(request: Request) -> tuple[Principal, Clinic, Practitioner]:
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["practitioner_id"])
    practitioner = await setup.practitioner_of(clinic, key)
    if practitioner is None:
        await not_found(request, principal, "practitioner", key)
    return principal, clinic, practitioner


async def practitioner_edit(request: Request) -> Response:
    principal, clinic, practitioner = await _practitioner(request)
    if request.method == "GET":
        values = {
            "display_name": practitioner.display_name,
            "display_name_kana": practitioner.display_name_kana,
            "staff_id": str(practitioner.staff_id or ""),
            "menu_ids": [str(m.id) for m in await setup.menus(clinic) if _offers(m, practitioner)],
        }
        return await _practitioner_page(request, clinic, practitioner, values)
    values = _practitioner_form(await _form(request))
    try:
        await setup.update_practitioner(
            clinic,
            practitioner,
            setup.parse(setup.PractitionerInput, values),
            staff_ids=await clinic_staff_ids(request, clinic),
        )
    except setup.SetupInvalid as error:
        return await _practitioner_page(request, clinic, practitioner, values, error)
    await record(
        request,
        principal,
        "practitioner.update",
        setup_resource(clinic, "practitioner", practitioner.id),
    )
    return redirect("/staff/clinic/practitioners")


def _offers(menu: Any, practitioner: Practitioner) -> bool:
    return any(p.id == practitioner.id for p in menu.practitioners)


async def practitioner_active(request: Request) -> Response:
    """Deactivate (no new bookings; appointments stay) or reactivate."""
    principal, clinic, practitioner = await _practitioner(request)
    active = _checked(await _form(request), "active")
    await setup.set_practitioner_active(practitioner, active)
    action = "practitioner.reactivate" if active else "practitioner.deactivate"
    await record(
        request, principal, action, setup_resource(clinic, "practitioner", practitioner.id)
    )
    return redirect("/staff/clinic/practitioners")


# --- weekly hours ---------------------------------------------------------------------------


def _hours_form(form: FormData) -> dict[str, Any]:
    return {
        "weekdays": _texts(form, "weekdays", 2),
        "start": _text(form, "start", 10),
        "end": _text(form, "end", 10),
        "menu_id": _text(form, "menu_id", 64),
    }


async def hours(request: Request) -> Response:
    principal, clinic, practitioner = await _practitioner(request)
    values: dict[str, Any] = {"weekdays": [], "start": "09:00", "end": "12:30", "menu_id": ""}
    error: setup.SetupInvalid | None = None
    if request.method == "POST":
        values = _hours_form(await _form(request))
        try:
            added = await setup.add_hours(
                clinic, practitioner, setup.parse(setup.HoursInput, values)
            )
        except setup.SetupInvalid as refused:
            error = refused
        else:
            await record(
                request,
                principal,
                "hours.create",
                setup_resource(clinic, "practitioner", practitioner.id),
                detail={"ranges": len(added)},
            )
            return redirect(f"/staff/clinic/practitioners/{practitioner.id}/hours")
    return page(
        request,
        "clinic/hours.html",
        {
            "clinic": clinic,
            "practitioner": practitioner,
            "rows": await setup.hours_of_practitioner(practitioner),
            "menus": [m for m in await setup.menus(clinic) if _offers(m, practitioner)],
            "weekdays": WEEKDAYS,
            "clock_text": setup.clock_text,
            "values": values,
            "errors": _errors(request, error) if error else {},
            "error": _invalid(request, error) if error else None,
        },
        422 if error else 200,
    )


async def hours_delete(request: Request) -> Response:
    principal, clinic, practitioner = await _practitioner(request)
    key = str(request.path_params["hours_id"])
    row = await setup.hours_row(practitioner, key)
    if row is None:
        await not_found(request, principal, "hours", key)
    await setup.delete_hours(row)
    await record(
        request, principal, "hours.delete", setup_resource(clinic, "practitioner", practitioner.id)
    )
    return redirect(f"/staff/clinic/practitioners/{practitioner.id}/hours")


# --- menus ----------------------------------------------------------------------------------

MENU_TEXT_FIELDS = (
    "title_ja",
    "title_en",
    "description_ja",
    "description_en",
    "mode",
    "visit_kind",
    "duration_minutes",
    "capacity",
    "fee_yen",
    "booking_fee_yen",
    "questionnaire_id",
    "min_notice_minutes",
    "max_days_ahead",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "cancel_deadline_minutes",
    "sort_order",
)
MENU_FLAGS = ("visible_to_patients", "pre_consultation")


def _menu_form(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: _text(form, name) for name in MENU_TEXT_FIELDS}
    values.update({name: _checked(form, name) for name in MENU_FLAGS})
    values["online_rules"] = _texts(form, "online_rules")
    values["practitioner_ids"] = _texts(form, "practitioner_ids")
    return values


def _menu_defaults() -> dict[str, Any]:
    fields = setup.MenuInput.model_fields
    values: dict[str, Any] = {
        name: "" if field.is_required() else field.default for name, field in fields.items()
    }
    values.update(mode=VisitMode.IN_PERSON.value, visit_kind=VisitKind.EITHER.value)
    values["duration_minutes"] = 15
    values["questionnaire_id"] = ""
    return values


async def _menu_page(
    request: Request,
    clinic: Clinic,
    menu: Any,
    values: dict[str, Any],
    error: setup.SetupInvalid | None = None,
) -> Response:
    return page(
        request,
        "clinic/menu.html",
        {
            "clinic": clinic,
            "menu": menu,
            "values": values,
            "modes": list(VisitMode),
            "kinds": list(VisitKind),
            "online_rules": setup.ONLINE_RULE_CODES,
            "practitioners": await setup.practitioners(clinic),
            "errors": _errors(request, error) if error else {},
            "error": _invalid(request, error) if error else None,
        },
        422 if error else 200,
    )


async def menu_list(request: Request) -> Response:
    _, clinic = await clinic_admin(request)
    return page(
        request, "clinic/menus.html", {"clinic": clinic, "menus": await setup.menus(clinic)}
    )


async def menu_new(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    if request.method == "GET":
        return await _menu_page(request, clinic, None, _menu_defaults())
    values = _menu_form(await _form(request))
    try:
        created = await setup.create_menu(clinic, setup.parse(setup.MenuInput, values))
    except setup.SetupInvalid as error:
        return await _menu_page(request, clinic, None, values, error)
    await record(request, principal, "menu.create", setup_resource(clinic, "menu", created.id))
    return redirect("/staff/clinic/menus")


async def menu_edit(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["menu_id"])
    menu = await setup.menu_of(clinic, key)
    if menu is None:
        await not_found(request, principal, "menu", key)
    if request.method == "GET":
        values = setup.menu_values(menu)
        values["questionnaire_id"] = menu.questionnaire_id or ""
        values["practitioner_ids"] = [str(p.id) for p in await menu.practitioners.all()]
        return await _menu_page(request, clinic, menu, values)
    values = _menu_form(await _form(request))
    try:
        changed = await setup.update_menu(clinic, menu, setup.parse(setup.MenuInput, values))
    except setup.SetupInvalid as error:
        return await _menu_page(request, clinic, menu, values, error)
    if changed:
        await record(
            request,
            principal,
            "menu.update",
            setup_resource(clinic, "menu", menu.id),
            detail={"fields": changed},
        )
    return redirect("/staff/clinic/menus")


# --- date exceptions ------------------------------------------------------------------------


def _today(request: Request, clinic: Clinic) -> date:
    return clock(request).astimezone(ZoneInfo(clinic.time_zone)).date()


async def exceptions(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    today = _today(request, clinic)
    values: dict[str, Any] = {
        "day": "",
        "kind": "closed_day",
        "practitioner_id": "",
        "start": "",
        "end": "",
        "note": "",
    }
    error: setup.SetupInvalid | None = None
    if request.method == "POST":
        form = await _form(request)
        values = {name: _text(form, name, 400) for name in values}
        try:
            added = await setup.add_exception(
                clinic, setup.parse(setup.ExceptionInput, values), today=today
            )
        except setup.SetupInvalid as refused:
            error = refused
        else:
            await record(
                request,
                principal,
                "exception.create",
                setup_resource(clinic, "exception", added.id),
            )
            return redirect("/staff/clinic/exceptions")
    rows = await setup.upcoming_exceptions(clinic, today)
    holidays = setup.upcoming_holidays(
        today,
        open_on_holidays=clinic.open_on_holidays,
        extra_days={r.day for r in rows if not r.closed and r.practitioner_id is None},  # type: ignore[attr-defined]
        within=setup.HOLIDAYS_SHOWN,
    )
    return page(
        request,
        "clinic/exceptions.html",
        {
            "clinic": clinic,
            "rows": rows,
            "holidays": holidays,
            "practitioners": await setup.practitioners(clinic),
            "clock_text": setup.clock_text,
            "today": today,
            "values": values,
            "errors": _errors(request, error) if error else {},
            "error": _invalid(request, error) if error else None,
        },
        422 if error else 200,
    )


async def exception_delete(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["exception_id"])
    row = await setup.exception_of(clinic, key)
    if row is None:
        await not_found(request, principal, "exception", key)
    await setup.delete_exception(row)
    await record(request, principal, "exception.delete", setup_resource(clinic, "exception", key))
    return redirect("/staff/clinic/exceptions")


routes: list[BaseRoute] = [
    Route("/staff/clinic", profile, methods=["GET", "POST"]),
    Route("/staff/clinic/practitioners", practitioner_list, methods=["GET"]),
    Route("/staff/clinic/practitioners/new", practitioner_new, methods=["GET", "POST"]),
    Route(
        "/staff/clinic/practitioners/{practitioner_id}",
        practitioner_edit,
        methods=["GET", "POST"],
    ),
    Route(
        "/staff/clinic/practitioners/{practitioner_id}/active",
        practitioner_active,
        methods=["POST"],
    ),
    Route("/staff/clinic/practitioners/{practitioner_id}/hours", hours, methods=["GET", "POST"]),
    Route(
        "/staff/clinic/practitioners/{practitioner_id}/hours/{hours_id}/delete",
        hours_delete,
        methods=["POST"],
    ),
    Route("/staff/clinic/menus", menu_list, methods=["GET"]),
    Route("/staff/clinic/menus/new", menu_new, methods=["GET", "POST"]),
    Route("/staff/clinic/menus/{menu_id}", menu_edit, methods=["GET", "POST"]),
    Route("/staff/clinic/exceptions", exceptions, methods=["GET", "POST"]),
    Route("/staff/clinic/exceptions/{exception_id}/delete", exception_delete, methods=["POST"]),
]
