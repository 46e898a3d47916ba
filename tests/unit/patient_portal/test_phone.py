"""Mobile numbers: the ways people type them, the numbers refused, masking, and Hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from patient_portal.auth.phone import PhoneError, mask, normalise_mobile


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("090-1234-5678", "+819012345678"),
        ("09012345678", "+819012345678"),
        ("090 1234 5678", "+819012345678"),
        (" 090-1234-5678 ", "+819012345678"),
        ("(090) 1234-5678", "+819012345678"),
        ("+81 90 1234 5678", "+819012345678"),
        ("+81-90-1234-5678", "+819012345678"),
        ("+819012345678", "+819012345678"),
        ("０９０－１２３４－５６７８", "+819012345678"),
        ("０９０１２３４５６７８", "+819012345678"),
        ("090ー1234ー5678", "+819012345678"),  # katakana long-vowel mark typed as a dash
        ("090−1234−5678", "+819012345678"),  # minus sign
        ("＋８１ ９０ １２３４ ５６７８", "+819012345678"),
        ("080-9876-5432", "+818098765432"),
        ("070-1234-5678", "+817012345678"),
        ("+1 415 555 2671", "+14155552671"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_accepted(raw: str, e164: str) -> None:
    assert normalise_mobile(raw) == e164


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("03-1234-5678", "phone-not-mobile"),  # Tokyo landline
        ("06-1234-5678", "phone-not-mobile"),  # Osaka landline
        ("050-1234-5678", "phone-not-mobile"),  # IP phone
        ("0120-123-456", "phone-not-mobile"),  # toll-free
        ("+44 20 7946 0958", "phone-not-mobile"),  # London landline
        ("090-1234-567", "phone-invalid"),
        ("090-1234-56789", "phone-invalid"),
        ("", "phone-invalid"),
        ("   ", "phone-invalid"),
        ("phone", "phone-invalid"),
        ("090-1234-5678 内線12", "phone-invalid"),
        ("090-1234-5678 ext. 12", "phone-invalid"),
        ("1-800-FLOWERS", "phone-invalid"),
        ("+81 90 1234 5678 +81", "phone-invalid"),
        ("0" * 200, "phone-invalid"),
        ("+999 1234 5678", "phone-invalid"),
    ],
)
def test_refused(raw: str, code: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalise_mobile(raw)
    assert caught.value.code == code
    assert caught.value.text.ja
    assert caught.value.text.en
    assert caught.value.status == 400
    assert str(caught.value) == code  # the input is never echoed


@pytest.mark.parametrize(
    ("e164", "masked"),
    [("+819012345678", "***5678"), ("+14155552671", "***2671"), ("+81", "***"), ("", "***")],
)
def test_mask_shows_only_the_last_four_digits(e164: str, masked: str) -> None:
    assert mask(e164) == masked


PHONE_CHARACTERS = st.sampled_from(list("0123456789０１２３４５６７８９+-ー－ () .\t"))


@given(st.one_of(st.text(max_size=60), st.text(PHONE_CHARACTERS, max_size=25)))
@example("090-1234-5678")
@example("+81 90 1234 5678")
@example("\ufdfa")  # one character that NFKC expands to eighteen
def test_never_raises_anything_but_phone_error(raw: str) -> None:
    try:
        e164 = normalise_mobile(raw)
    except PhoneError:
        return
    assert e164.startswith("+")
    assert e164[1:].isdigit()
    assert e164.isascii()
    assert 8 <= len(e164) <= 16
    assert normalise_mobile(e164) == e164


@given(
    st.sampled_from(["70", "80", "90"]),
    st.integers(min_value=1000, max_value=9999),
    st.integers(min_value=0, max_value=9999),
    st.sampled_from(["-", " ", "", "－", "ー"]),
    st.booleans(),
)
def test_every_japanese_mobile_layout_normalises_the_same(
    prefix: str, middle: int, last: int, separator: str, international: bool
) -> None:
    national = f"{prefix}{separator}{middle:04d}{separator}{last:04d}"
    raw = f"+81 {national}" if international else f"0{national}"
    e164 = normalise_mobile(raw)
    assert e164 == f"+81{prefix}{middle:04d}{last:04d}"
    assert normalise_mobile(e164) == e164
    assert mask(e164) == f"***{last:04d}"
