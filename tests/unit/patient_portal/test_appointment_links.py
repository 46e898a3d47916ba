"""Signed appointment links: they round-trip, and nothing else reads as one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from patient_portal.appointment_links import SALT, make_token, read_token

SECRET = "s" * 48
WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_token_names_its_appointment_and_expiry() -> None:
    appointment_id = str(uuid.uuid4())
    target = read_token(SECRET, make_token(SECRET, appointment_id, WHEN))
    assert target is not None
    assert target.appointment_id == appointment_id
    assert target.expires_at == WHEN
    assert not target.expired(WHEN - timedelta(seconds=1))
    assert target.expired(WHEN)


def test_another_key_or_an_edit_reads_as_nothing() -> None:
    token = make_token(SECRET, str(uuid.uuid4()), WHEN)
    assert read_token("t" * 48, token) is None
    payload, _, signature = token.rpartition(".")
    assert read_token(SECRET, payload + "." + signature[::-1]) is None
    assert read_token(SECRET, "") is None


@pytest.mark.parametrize(
    "payload", [["not-a-uuid", 1], [str(uuid.uuid4())], {"a": 1}, [str(uuid.uuid4()), "soon"]]
)
def test_a_genuinely_signed_but_odd_payload_reads_as_nothing(payload: object) -> None:
    token = str(URLSafeSerializer(SECRET, salt=SALT).dumps(payload))
    assert read_token(SECRET, token) is None


def test_no_key_no_links() -> None:
    with pytest.raises(ValueError, match="secret key"):
        make_token("", str(uuid.uuid4()), WHEN)


@given(st.text(max_size=300))
def test_any_text_is_read_without_error(text: str) -> None:
    assert read_token(SECRET, text) is None
