"""Plain pages: the home page and the language switch. They work without JavaScript."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from booking import service as booking
from patient_portal.i18n import COOKIE, COOKIE_MAX_AGE, SUPPORTED


async def home(request: Request) -> Response:
    templates = request.app.state.templates
    context = {"clinics": await booking.clinics()}
    return templates.TemplateResponse(request, "home.html", context)  # type: ignore[no-any-return]


async def switch_language(request: Request) -> Response:
    """Remember the chosen language and go back to the page the switch was on."""
    form = await request.form()
    locale = str(form.get("locale", ""))  # compared with fixed values only
    target = _local_path(str(form.get("next", "/")))
    response = RedirectResponse(target, status_code=303)
    if locale in SUPPORTED:
        response.set_cookie(
            COOKIE,
            locale,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def _local_path(candidate: str) -> str:
    """Only paths on this site: an absolute URL or ``//host`` would make an open redirect."""
    if candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return "/"


routes = [
    Route("/", home, methods=["GET"]),
    Route("/language", switch_language, methods=["POST"]),
]
