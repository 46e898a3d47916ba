"""TOTP: codes within the window, replay refused, enrolment URI and QR code, recovery codes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.auth.totp import (
    CROCKFORD,
    hash_recovery_code,
    new_recovery_codes,
    new_secret,
    normalise_recovery_code,
    provisioning_uri,
    qr_data_uri,
    qr_svg,
    time_step,
    verify,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2030, 4, 1, 9, 0, 10, tzinfo=UTC)
STEP = int(NOW.timestamp()) // 30


def code_at(moment: datetime) -> str:
    return pyotp.TOTP(SECRET).at(moment)


def test_new_secrets_are_random_base32_of_160_bits() -> None:
    secret = new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert secret != new_secret()


def test_the_current_code_matches_its_step() -> None:
    assert verify(SECRET, code_at(NOW), now=NOW, last_step=None) == STEP
    assert time_step(NOW) == STEP


@pytest.mark.parametrize(("offset", "matched"), [(-30, STEP - 1), (30, STEP + 1)])
def test_one_step_of_drift_is_forgiven(offset: int, matched: int) -> None:
    code = code_at(NOW + timedelta(seconds=offset))
    assert verify(SECRET, code, now=NOW, last_step=None) == matched


@pytest.mark.parametrize("offset", [-90, -60, 60, 90])
def test_codes_outside_the_window_are_refused(offset: int) -> None:
    assert verify(SECRET, code_at(NOW + timedelta(seconds=offset)), now=NOW, last_step=None) is None


def test_a_wider_window_can_be_asked_for() -> None:
    code = code_at(NOW - timedelta(seconds=60))
    assert verify(SECRET, code, now=NOW, last_step=None, window=2) == STEP - 2


def test_a_used_code_is_refused_the_second_time() -> None:
    code = code_at(NOW)
    step = verify(SECRET, code, now=NOW, last_step=None)
    assert step == STEP
    assert verify(SECRET, code, now=NOW, last_step=step) is None
    assert verify(SECRET, code, now=NOW + timedelta(seconds=15), last_step=step) is None


def test_an_older_code_after_a_newer_one_is_refused() -> None:
    newer = verify(SECRET, code_at(NOW + timedelta(seconds=30)), now=NOW, last_step=None)
    assert newer == STEP + 1
    assert verify(SECRET, code_at(NOW), now=NOW, last_step=newer) is None


def test_the_next_code_after_a_used_one_works() -> None:
    later = NOW + timedelta(seconds=30)
    assert verify(SECRET, code_at(later), now=later, last_step=STEP) == STEP + 1


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5x", "١٢٣٤٥٦"])
def test_malformed_codes_are_refused(typed: str) -> None:
    assert verify(SECRET, typed, now=NOW, last_step=None) is None


def test_spaces_and_full_width_digits_are_forgiven() -> None:
    code = code_at(NOW)
    spaced = f" {code[:3]} {code[3:]} "
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert verify(SECRET, spaced, now=NOW, last_step=None) == STEP
    assert verify(SECRET, full_width, now=NOW, last_step=None) == STEP


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify(SECRET, "123456", now=datetime(2030, 1, 1), last_step=None)  # noqa: DTZ001


def test_provisioning_uri_names_the_issuer_and_account() -> None:
    uri = provisioning_uri(SECRET, "yamada@clinic-a")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert parts.path == "/Tsunagu:yamada%40clinic-a"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["Tsunagu"]
    assert "issuer=Demo" in provisioning_uri(SECRET, "a", issuer="Demo")


def test_qr_code_is_standalone_svg_and_a_base64_data_uri() -> None:
    uri = provisioning_uri(SECRET, "yamada@clinic-a")
    svg = qr_svg(uri)
    assert svg.startswith("<svg")
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert "<title>" in svg
    assert SECRET not in svg  # the secret is only in the modules, not in readable text
    data = qr_data_uri(uri)
    prefix = "data:image/svg+xml;base64,"
    assert data.startswith(prefix)
    assert base64.b64decode(data[len(prefix) :]).decode() == svg


def test_recovery_codes_are_unique_grouped_crockford() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert all(c in CROCKFORD for c in "".join(groups))
        assert normalise_recovery_code(code) == code
    assert len(new_recovery_codes(3)) == 3


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("7k3m-q9tx-2wrd", "7K3M-Q9TX-2WRD"),
        ("7K3M Q9TX 2WRD", "7K3M-Q9TX-2WRD"),
        ("7K3MQ9TX2WRD", "7K3M-Q9TX-2WRD"),
        ("７Ｋ３Ｍ－Ｑ９ＴＸ－２ＷＲＤ", "7K3M-Q9TX-2WRD"),
        ("OIL0-0000-0000", "0110-0000-0000"),
        ("7K3M-Q9TX-2WR", None),
        ("7K3M-Q9TX-2WRDX", None),
        ("7K3M-Q9TX-2WRU", None),  # U is not in Crockford's alphabet
        ("123456", None),
        ("", None),
    ],
)
def test_normalising_recovery_codes(typed: str, canonical: str | None) -> None:
    assert normalise_recovery_code(typed) == canonical


def test_recovery_code_hash_is_sha256_of_the_canonical_form() -> None:
    expected = hashlib.sha256(b"7K3M-Q9TX-2WRD").hexdigest()
    assert hash_recovery_code("7k3m q9tx 2wrd") == expected
    assert hash_recovery_code("7K3M-Q9TX-2WRD") == expected
    # Anything else still hashes (to something no stored code has), so lookups need no guard.
    assert hash_recovery_code("123456") != expected
    assert len(hash_recovery_code("123456")) == 64


@given(st.text(max_size=40))
def test_normalise_recovery_code_is_total_and_idempotent(raw: str) -> None:
    canonical = normalise_recovery_code(raw)
    if canonical is not None:
        assert normalise_recovery_code(canonical) == canonical
        assert len(canonical) == 14


@given(st.text(max_size=20))
def test_verify_never_raises_on_typed_input(typed: str) -> None:
    step = verify(SECRET, typed, now=NOW, last_step=None)
    assert step is None or abs(step - STEP) <= 1
