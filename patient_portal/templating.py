"""Jinja2 templates with the request's language and cache-busted static URLs in every context."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from patient_portal.i18n import SUPPORTED, Catalogues, language_name
from patient_portal.static import StaticAssets

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"


def request_locale(request: Request) -> str:
    """The language ``LocaleMiddleware`` chose for this request."""
    locale = getattr(request.state, "locale", None)
    return locale if isinstance(locale, str) else "ja"


def build_templates(catalogues: Catalogues, assets: StaticAssets) -> Jinja2Templates:
    languages = [(code, language_name(code)) for code in SUPPORTED]

    def context(request: Request) -> dict[str, Any]:
        locale = request_locale(request)
        translations = catalogues.get(locale)
        return {
            "locale": locale,
            "languages": languages,
            "_": translations.ugettext,
            "gettext": translations.ugettext,
            "ngettext": translations.ungettext,
            "static_url": assets.url,
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
