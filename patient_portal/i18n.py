"""Languages: Japanese by default, English selectable, chosen per request.

Messages are written in English in the source (``_("...")`` and ``{% trans %}``) and translated to
Japanese in ``locale/ja/LC_MESSAGES/*.po`` (``messages.po`` for the portal, one file per feature
area beside it). The catalogues are read from the ``.po`` files at start-up, merged and compiled in
memory, so there is no build step and no binary file in the repo.

The choice is remembered in a cookie; without one, the browser's ``Accept-Language`` decides,
and failing that the clinic's default (Japanese).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from babel import Locale, negotiate_locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED: Final = ("ja", "en")
COOKIE: Final = "tsunagu_lang"
COOKIE_MAX_AGE: Final = 400 * 24 * 3600  # the longest lifetime browsers honour
LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "messages"


@dataclass(frozen=True, slots=True)
class Catalogues:
    """Translations for every supported locale. English is the source language."""

    by_locale: Mapping[str, NullTranslations]

    def get(self, locale: str) -> NullTranslations:
        return self.by_locale.get(locale) or self.by_locale["en"]

    def gettext(self, locale: str, message: str) -> str:
        return self.get(locale).ugettext(message)


def catalogue_files(locale: str, locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """The ``.po`` files of ``locale``: ``messages.po`` first, then the others by name."""
    folder = locale_dir / locale / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda path: (path.stem != DOMAIN, path.name))


def read_catalogue(locale: str, locale_dir: Path = LOCALE_DIR) -> Catalog:
    """All of ``locale``'s ``.po`` files merged into one catalogue (a later file wins a clash)."""
    merged = Catalog(locale=locale, domain=DOMAIN)
    for po_path in catalogue_files(locale, locale_dir):
        with po_path.open("rb") as po_file:
            part = read_po(po_file, locale=locale, domain=DOMAIN)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


def load_catalogues(locale_dir: Path = LOCALE_DIR) -> Catalogues:
    """Read and compile every locale's ``.po`` files; English needs none."""
    by_locale: dict[str, NullTranslations] = {"en": NullTranslations()}
    for locale in SUPPORTED:
        if not catalogue_files(locale, locale_dir):
            continue
        catalog = read_catalogue(locale, locale_dir)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        by_locale[locale] = Translations(fp=buffer, domain=DOMAIN)
    return Catalogues(by_locale)


def choose_locale(cookie: str | None, accept_language: str | None, default: str) -> str:
    """The locale for a request: a valid cookie wins, then ``Accept-Language``, then ``default``."""
    if cookie in SUPPORTED:
        return cookie
    if accept_language:
        preferred = _parse_accept_language(accept_language)
        match = negotiate_locale(preferred, list(SUPPORTED), sep="-")
        if match:
            return match.split("-")[0]
    return default


def _parse_accept_language(header: str) -> list[str]:
    """Language tags in the order of their q-values (highest first; invalid q counts as 0)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag))
    weighted.sort()
    tags = [tag for _, _, tag in weighted]
    # negotiate_locale matches whole tags; let "en-us" also offer "en".
    return tags + [tag.split("-")[0] for tag in tags]


def language_name(locale: str) -> str:
    """The language's own name (日本語, English) for the language switch."""
    return str(Locale.parse(locale).get_display_name(locale)).capitalize()


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; translate it where it is shown."""
    return message
