"""The keyring: AES-GCM field encryption with key ids, and the keyed blind index."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.crypto.fields import CIPHERTEXT
from patient_portal.crypto.keyring import (
    KEY_BYTES,
    Keyring,
    KeyringError,
    dump_keyring,
    key_id_of,
    load_keyring,
    new_key,
    parse_keyring,
    with_new_active_key,
)

CONTEXT = "portal_patient.family_name"


def make_keyring(active: str = "k1", *others: str) -> Keyring:
    keys = {key_id: base64.b64decode(new_key()) for key_id in (active, *others)}
    return Keyring(active=active, keys=keys, index_key=base64.b64decode(new_key()))


KEYRING = make_keyring("k1", "k0")


@given(st.text())
def test_any_text_round_trips(plaintext: str) -> None:
    token = KEYRING.encrypt(plaintext, CONTEXT)
    assert KEYRING.decrypt(token, CONTEXT) == plaintext
    assert key_id_of(token) == "k1"
    assert CIPHERTEXT.match(token)
    assert not KEYRING.needs_rotation(token)


def test_the_same_value_encrypts_differently_each_time() -> None:
    assert KEYRING.encrypt("見本 桜", CONTEXT) != KEYRING.encrypt("見本 桜", CONTEXT)


def test_a_ciphertext_does_not_contain_the_plaintext() -> None:
    token = KEYRING.encrypt("+819000000001", CONTEXT)
    assert "819000000001" not in token
    assert "819000000001" not in base64.urlsafe_b64decode(token.split(".")[2] + "==").hex()


def _flip(token: str, position: int) -> str:
    prefix, payload = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[position] ^= 0x01
    return f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


@pytest.mark.parametrize("position", [0, 11, 12, -1])  # nonce, first byte of body, tag
def test_a_flipped_byte_fails_authentication(position: int) -> None:
    token = KEYRING.encrypt("デモ 太郎", CONTEXT)
    with pytest.raises(KeyringError, match="failed authentication"):
        KEYRING.decrypt(_flip(token, position), CONTEXT)


def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    token = KEYRING.encrypt("デモ", "portal_patient.family_name")
    with pytest.raises(KeyringError):
        KEYRING.decrypt(token, "portal_patient.given_name")
    with pytest.raises(KeyringError):
        KEYRING.decrypt(token, "portal_patient_account.family_name")


def test_an_error_never_carries_the_plaintext() -> None:
    token = KEYRING.encrypt("秘密の名前", CONTEXT)
    with pytest.raises(KeyringError) as caught:
        KEYRING.decrypt(_flip(token, 20), CONTEXT)
    assert "秘密" not in str(caught.value)


def test_an_unknown_key_id_fails() -> None:
    token = make_keyring("k9").encrypt("x", CONTEXT)
    with pytest.raises(KeyringError, match="no key 'k9'"):
        KEYRING.decrypt(token, CONTEXT)


def test_the_same_key_id_with_other_key_material_fails() -> None:
    token = make_keyring("k1").encrypt("x", CONTEXT)
    with pytest.raises(KeyringError, match="failed authentication"):
        KEYRING.decrypt(token, CONTEXT)


@pytest.mark.parametrize("token", ["plain text", "v2.k1.AAAA", "v1.k1", ""])
def test_a_value_that_is_not_a_ciphertext_is_refused(token: str) -> None:
    with pytest.raises(KeyringError):
        KEYRING.decrypt(token, CONTEXT)


@pytest.mark.parametrize("key_id", ["", "has space", "dot.ted", "x" * 33, "鍵"])
def test_key_ids_are_validated(key_id: str) -> None:
    with pytest.raises(KeyringError, match="key id"):
        Keyring(active=key_id, keys={key_id: b"\0" * KEY_BYTES}, index_key=b"\0" * KEY_BYTES)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_key_lengths_are_validated(length: int) -> None:
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring(active="k1", keys={"k1": b"\0" * length}, index_key=b"\0" * KEY_BYTES)
    with pytest.raises(KeyringError, match="index key"):
        Keyring(active="k1", keys={"k1": b"\0" * KEY_BYTES}, index_key=b"\0" * length)


def test_the_active_key_must_be_in_the_keyring() -> None:
    with pytest.raises(KeyringError, match="active key"):
        Keyring(active="k2", keys={"k1": b"\0" * KEY_BYTES}, index_key=b"\0" * KEY_BYTES)


def test_the_blind_index_is_deterministic_keyed_and_purpose_separated() -> None:
    phone = "+819000000001"
    assert KEYRING.blind_index(phone, "phone") == KEYRING.blind_index(phone, "phone")
    assert KEYRING.blind_index(phone, "phone") != KEYRING.blind_index(phone, "email")
    assert KEYRING.blind_index(phone, "phone") != KEYRING.blind_index("+819000000002", "phone")
    assert KEYRING.blind_index(phone, "phone") != make_keyring().blind_index(phone, "phone")
    assert len(KEYRING.blind_index(phone, "phone")) == 64
    assert "9000000001" not in KEYRING.blind_index(phone, "phone")


def test_a_new_active_key_keeps_the_old_ones_for_reading() -> None:
    token = KEYRING.encrypt("デモ", CONTEXT)
    rotated = with_new_active_key(KEYRING, "k2")
    assert rotated.active == "k2"
    assert set(rotated.keys) == {"k0", "k1", "k2"}
    assert rotated.index_key == KEYRING.index_key
    assert rotated.needs_rotation(token)
    assert rotated.decrypt(token, CONTEXT) == "デモ"
    assert key_id_of(rotated.encrypt("デモ", CONTEXT)) == "k2"
    with pytest.raises(KeyringError, match="already exists"):
        with_new_active_key(rotated, "k1")


def test_parse_and_dump_round_trip() -> None:
    parsed = parse_keyring(dump_keyring(KEYRING))
    assert parsed == KEYRING
    token = KEYRING.encrypt("x", CONTEXT)
    assert parsed.decrypt(token, CONTEXT) == "x"


def test_the_keyring_repr_shows_no_key_material() -> None:
    text = repr(KEYRING)
    for key in (*KEYRING.keys.values(), KEYRING.index_key):
        assert base64.b64encode(key).decode() not in text
        assert repr(key) not in text


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"active": "k1", "keys": {}}),
        json.dumps({"active": "k1", "keys": {"k1": "!!"}, "index_key": new_key()}),
        json.dumps({"active": "k1", "keys": {"k1": new_key()}, "index_key": "short"}),
    ],
)
def test_a_malformed_keyring_is_refused(document: str) -> None:
    with pytest.raises(KeyringError):
        parse_keyring(document)


def test_load_creates_a_private_file_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keys.json"
    with pytest.raises(KeyringError, match="no keyring file"):
        load_keyring(path, create=False)
    created = load_keyring(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_keyring(path, create=False) == created
