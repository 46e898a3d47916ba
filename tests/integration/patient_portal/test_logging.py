"""Even at DEBUG, the log never carries what is stored in the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from booking.models import Clinic
from patient_portal.cli import QUIET_LOGGERS, configure_logging
from patient_portal.settings import Settings


@pytest.fixture
def debug_logging() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    configure_logging("DEBUG")
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("debug_logging")
async def test_sql_parameters_stay_out_of_a_debug_log(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "見本マーカー090-0000-4242"
    await Clinic.create(
        slug="log-test",
        name=marker,
        name_kana="ミホン",
        postal_code="100-0000",
        address=marker,
        phone="03-0000-0000",
    )
    assert (await Clinic.get(slug="log-test")).name == marker
    assert marker not in caplog.text
