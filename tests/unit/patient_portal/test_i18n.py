"""Languages: how a request's language is chosen, and that the Japanese catalogue is complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.i18n import choose_locale, load_catalogues, read_catalogue

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("cookie", "accept_language", "expected"),
    [
        (None, None, "ja"),
        ("en", None, "en"),
        ("ja", "en-US,en;q=0.9", "ja"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "en-GB", "en"),
        (None, "ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        (None, "fr-FR,fr;q=0.9", "ja"),
        (None, "fr;q=0.9,en;q=0.5", "en"),
        (None, "en;q=0.1,ja;q=0.8", "ja"),
        (None, "en;q=0", "ja"),
        (None, "en;q=oops", "ja"),
        ("de", "en", "en"),
        ("<script>", None, "ja"),
    ],
)
def test_choose_locale(cookie: str | None, accept_language: str | None, expected: str) -> None:
    assert choose_locale(cookie, accept_language, default="ja") == expected


@given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=200)))
def test_choose_locale_always_gives_a_supported_locale(
    cookie: str | None, accept_language: str | None
) -> None:
    assert choose_locale(cookie, accept_language, default="ja") in ("ja", "en")


def test_every_message_in_the_source_has_a_japanese_translation(tmp_path: Path) -> None:
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "N_",
            "--no-location",
            "-o",
            str(template),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with template.open("rb") as handle:
        wanted = {message.id for message in read_po(handle) if message.id}
    catalogue = read_catalogue("ja")
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    assert len(wanted) > 10
    assert sorted(wanted - translated) == []


def test_catalogues_translate_at_runtime() -> None:
    catalogues = load_catalogues()
    assert catalogues.gettext("ja", "Page not found") == "ページが見つかりません"
    assert catalogues.gettext("en", "Page not found") == "Page not found"
    assert catalogues.gettext("xx", "Page not found") == "Page not found"
