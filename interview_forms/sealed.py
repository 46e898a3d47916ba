"""Answers at rest are encrypted: a JSON model field sealed by the portal's keyring.

The package cannot import the portal, so the portal provides the sealer at start-up
(:func:`provide_sealer`); its keyring encrypts with AES-GCM under the authenticated context
``table.column``, exactly like the portal's own encrypted fields, so key rotation re-encrypts
these columns too (it finds every field marked ``encrypted_at_rest``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any, Final, Protocol

from tortoise import fields
from tortoise.models import Model

# The shape of the keyring's ciphertext: ``v1.<key id>.<base64url>``.
CIPHERTEXT: Final = re.compile(r"^v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{38,}$")


class Sealer(Protocol):
    def encrypt(self, plaintext: str, context: str) -> str: ...

    def decrypt(self, token: str, context: str) -> str: ...


_provider: Callable[[], Sealer] | None = None


def provide_sealer(provider: Callable[[], Sealer]) -> None:
    """Called once by the composition root: where the current keyring comes from."""
    global _provider
    _provider = provider


def _sealer() -> Sealer:
    if _provider is None:
        raise RuntimeError("no sealer: the portal must call provide_sealer() before using forms")
    return _provider()


class SealedJSONField(fields.TextField):
    """A JSON value (dict, list, str …) stored encrypted; ``None`` stays NULL."""

    encrypted_at_rest = True

    def _context(self) -> str:
        return f"{self.model._meta.db_table}.{self.model_field_name}"

    def to_db_value(self, value: Any, instance: type[Model] | Model) -> Any:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return _sealer().encrypt(text, self._context())

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, str) and CIPHERTEXT.match(value):
            return json.loads(_sealer().decrypt(value, self._context()))
        return value


class SealedBytesField(fields.TextField):
    """Bytes (an attachment) stored encrypted, as base64 text inside the ciphertext."""

    encrypted_at_rest = True

    def _context(self) -> str:
        return f"{self.model._meta.db_table}.{self.model_field_name}"

    def to_db_value(self, value: Any, instance: type[Model] | Model) -> Any:
        if value is None:
            return None
        return _sealer().encrypt(base64.b64encode(bytes(value)).decode("ascii"), self._context())

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, str) and CIPHERTEXT.match(value):
            return base64.b64decode(_sealer().decrypt(value, self._context()))
        return value
