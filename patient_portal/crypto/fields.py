"""Model fields that are encrypted on their way into the database and decrypted on the way out.

The database holds only ``v1.<key id>.<ciphertext>``; the model attribute holds the plain value.
Encrypted columns cannot be searched: look a value up through a blind-index column
(:meth:`Keyring.blind_index`) kept beside it. The authenticated context is ``table.column``, so a
ciphertext moved to another column or table fails to decrypt instead of showing the wrong data.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Final

from tortoise import fields
from tortoise.models import Model

from patient_portal.crypto.keyring import current_keyring

# Only a string of exactly this shape is taken for a ciphertext (Tortoise also passes plain
# values assigned in Python through ``to_python_value``).
CIPHERTEXT: Final = re.compile(r"^v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{38,}$")


class _Encrypted(fields.TextField):
    """Base: subclasses say how their Python value becomes text and back."""

    encrypted_at_rest = True  # what key rotation looks for (other packages' sealed fields too)

    def _context(self) -> str:
        return f"{self.model._meta.db_table}.{self.model_field_name}"

    def _to_text(self, value: Any) -> str:
        return str(value)

    def _from_text(self, text: str) -> Any:
        return text

    def to_db_value(self, value: Any, instance: type[Model] | Model) -> Any:
        if value is None:
            return None
        return current_keyring().encrypt(self._to_text(value), self._context())

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, str) and CIPHERTEXT.match(value):
            return self._from_text(current_keyring().decrypt(value, self._context()))
        if isinstance(value, str):
            return self._from_text(value)
        return value


class EncryptedTextField(_Encrypted):
    """Text (names, phone numbers, e-mail, free text), encrypted at rest."""


class EncryptedDateField(_Encrypted):
    """A date (date of birth), encrypted at rest as ISO text."""

    field_type = date

    def _to_text(self, value: Any) -> str:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
        return day.isoformat()

    def _from_text(self, text: str) -> Any:
        return date.fromisoformat(text)

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, date):
            return value
        return super().to_python_value(value)


def encrypted_fields(models: list[type[Model]]) -> list[tuple[type[Model], str, str]]:
    """(model, attribute, column) for every encrypted field of ``models``."""
    found: list[tuple[type[Model], str, str]] = []
    for model in models:
        for name, field in model._meta.fields_map.items():
            if getattr(field, "encrypted_at_rest", False):
                found.append((model, name, field.source_field or name))
    return found
