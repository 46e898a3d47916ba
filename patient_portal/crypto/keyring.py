"""The keyring: which keys encrypt patient fields, which one is active, and the blind-index key.

A keyring file is JSON, kept outside the database (and outside database backups)::

    {"active": "2026-11", "keys": {"2026-11": "<base64 32 bytes>", "2025-04": "..."},
     "index_key": "<base64 32 bytes>"}

Every ciphertext names the key that made it (``v1.<key id>.<base64url nonce+ciphertext>``), so
adding a key and making it active rotates new writes at once, and ``tsunagu keys rotate``
re-encrypts the rest. The index key makes equality lookups (a phone number) possible through an
HMAC column without storing the value; it is not rotated by ``keys rotate``.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyringError(ValueError):
    """The keyring is missing, malformed, or cannot decrypt a value. Never carries plaintext."""


@dataclass(frozen=True, slots=True)
class Keyring:
    active: str
    keys: Mapping[str, bytes] = field(repr=False)
    index_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise KeyringError(f"the active key {self.active!r} is not among the keys")
        for key_id, key in self.keys.items():
            if not KEY_ID.match(key_id):
                raise KeyringError(f"key id {key_id!r} must be 1-32 letters, digits, - or _")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} must be {KEY_BYTES} bytes")
        if len(self.index_key) != KEY_BYTES:
            raise KeyringError(f"the index key must be {KEY_BYTES} bytes")

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt with the active key; ``context`` (e.g. ``table.column``) is authenticated, so a
        ciphertext copied into another column does not decrypt."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active]).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{VERSION}.{self.active}.{payload}"

    def decrypt(self, token: str, context: str) -> str:
        key_id = key_id_of(token)
        key = self.keys.get(key_id)
        if key is None:
            raise KeyringError(f"no key {key_id!r} in the keyring")
        payload = token.split(".", 2)[2]
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")
            )
        except (InvalidTag, ValueError, binascii.Error):
            raise KeyringError(f"a value in {context} failed authentication") from None
        return plain.decode("utf-8")

    def blind_index(self, value: str, purpose: str) -> str:
        """A keyed hash for equality lookups; ``purpose`` separates e.g. phones from e-mails."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()

    def needs_rotation(self, token: str) -> bool:
        return key_id_of(token) != self.active


def key_id_of(token: str) -> str:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise KeyringError("not an encrypted value")
    return parts[1]


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_keyring(document: str) -> Keyring:
    try:
        data: Any = json.loads(document)
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
        return Keyring(
            active=str(data["active"]),
            keys=keys,
            index_key=base64.b64decode(data["index_key"], validate=True),
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        if isinstance(error, KeyringError):
            raise
        raise KeyringError("the keyring must be JSON with active, keys and index_key") from None


def dump_keyring(keyring: Keyring) -> str:
    return json.dumps(
        {
            "active": keyring.active,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in keyring.keys.items()},
            "index_key": base64.b64encode(keyring.index_key).decode("ascii"),
        },
        indent=2,
    )


def load_keyring(path: Path, *, create: bool) -> Keyring:
    """Read the keyring file; with ``create`` (development only) make one if it is missing."""
    try:
        return parse_keyring(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not create:
            raise KeyringError(f"no keyring file at {path}") from None
    keyring = parse_keyring(
        json.dumps({"active": "k1", "keys": {"k1": new_key()}, "index_key": new_key()})
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(dump_keyring(keyring) + "\n")
    return keyring


def with_new_active_key(keyring: Keyring, key_id: str) -> Keyring:
    """A keyring with a fresh key ``key_id`` made active; the old keys stay for decryption."""
    if key_id in keyring.keys:
        raise KeyringError(f"key id {key_id!r} already exists")
    keys = dict(keyring.keys)
    keys[key_id] = base64.b64decode(new_key())
    return Keyring(active=key_id, keys=keys, index_key=keyring.index_key)


# The keyring in force. Model fields read it when they cross the database boundary, so it is
# process state like the database connection, set once by the composition root.
_current: contextvars.ContextVar[Keyring | None] = contextvars.ContextVar(
    "tsunagu_keyring", default=None
)
_global: Keyring | None = None


def current_keyring() -> Keyring:
    keyring = _current.get() or _global
    if keyring is None:
        raise KeyringError("no keyring is in use (the app or command did not load one)")
    return keyring


@contextmanager
def use_keyring(keyring: Keyring, *, process_wide: bool = True) -> Iterator[Keyring]:
    """Make ``keyring`` current for the block (and, with ``process_wide``, for other tasks)."""
    global _global
    token = _current.set(keyring)
    previous = _global
    if process_wide:
        _global = keyring
    try:
        yield keyring
    finally:
        _current.reset(token)
        if process_wide:
            _global = previous


def keyring_for(key_file: Path, *, production: bool) -> Keyring:
    """The deployment's keyring: in production the file must exist; in development it is made."""
    return load_keyring(key_file, create=not production)
