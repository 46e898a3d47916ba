"""Encryption at rest: AES-GCM field encryption with rotatable keys, and keyed blind indexes."""

from patient_portal.crypto.fields import EncryptedDateField, EncryptedTextField, encrypted_fields
from patient_portal.crypto.keyring import (
    Keyring,
    KeyringError,
    current_keyring,
    load_keyring,
    use_keyring,
)

__all__ = [
    "EncryptedDateField",
    "EncryptedTextField",
    "Keyring",
    "KeyringError",
    "current_keyring",
    "encrypted_fields",
    "load_keyring",
    "use_keyring",
]
