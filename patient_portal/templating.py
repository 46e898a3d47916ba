"""Jinja2 templates with the request's language and cache-busted static URLs in every context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from patient_portal.auth.middleware import auth_of, csrf_token_for
from patient_portal.i18n import N_, SUPPORTED, Catalogues, language_name
from patient_portal.static import StaticAssets

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"


def request_locale(request: Request) -> str:
    """The language ``LocaleMiddleware`` chose for this request."""
    locale = getattr(request.state, "locale", None)
    return locale if isinstance(locale, str) else "ja"


ROLE_NAMES: Final = {
    "receptionist": N_("Receptionist"),
    "nurse": N_("Nurse"),
    "doctor": N_("Doctor"),
    "clinic_admin": N_("Clinic administrator"),
    "platform_operator": N_("Platform operator"),
}


STATUS_NAMES: Final = {
    "held": N_("Held"),
    "booked": N_("Booked"),
    "checked_in": N_("Checked in"),
    "in_consult": N_("In consultation"),
    "done": N_("Done"),
    "cancelled": N_("Cancelled"),
    "no_show": N_("No-show"),
    "expired": N_("Expired"),
}


def build_templates(
    catalogues: Catalogues, assets: StaticAssets, secret_key: str
) -> Jinja2Templates:
    languages = [(code, language_name(code)) for code in SUPPORTED]

    def context(request: Request) -> dict[str, Any]:
        locale = request_locale(request)
        translations = catalogues.get(locale)

        def gettext(message: str, **variables: Any) -> str:
            text = translations.ugettext(message)
            return text % variables if variables else text

        def role_name(role: str) -> str:
            return translations.ugettext(ROLE_NAMES.get(role, role))

        def status_name(status: str) -> str:
            return translations.ugettext(STATUS_NAMES.get(status, status))

        auth = auth_of(request)
        return {
            "locale": locale,
            "languages": languages,
            "_": gettext,
            "gettext": gettext,
            "ngettext": translations.ungettext,
            "static_url": assets.url,
            "csrf_token": csrf_token_for(secret_key, auth),
            "principal": auth.principal,
            "role_name": role_name,
            "status_name": status_name,
        }

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=environment, context_processors=[context])
