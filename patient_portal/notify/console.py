"""Console channels for the embedded default and demos: messages go to the log, not to patients.

Production refuses the console providers (see :mod:`patient_portal.settings`). The log line at
INFO names the recipient masked and the size only — ``SMS to ***5678 (42 chars)``,
``e-mail to ***@example.jp (120 chars)`` — never the text. With ``show_bodies=True`` (the demo
sets it, so a visitor can follow the link in a confirmation) the text is also printed to standard
output, still with the recipient masked; it never goes through ``logging``, so log shipping and
log files do not receive it. Leave it off anywhere real patient data could pass.
"""

from __future__ import annotations

import logging
import secrets
import sys
from typing import TextIO

from patient_portal.auth.phone import mask as mask_phone
from patient_portal.notify.port import mask_email

logger = logging.getLogger(__name__)


def _console_id() -> str:
    return "console-" + secrets.token_hex(8)


class ConsoleSms:
    """An :class:`~patient_portal.notify.port.SmsSender` that logs instead of sending."""

    def __init__(self, *, show_bodies: bool = False, stream: TextIO | None = None) -> None:
        self._show_bodies = show_bodies
        self._stream = stream

    async def send_sms(self, to: str, body: str, *, key: str) -> str:
        logger.info("SMS to %s (%d chars)", mask_phone(to), len(body))
        if self._show_bodies:
            print(f"--- SMS to {mask_phone(to)} ---\n{body}\n---", file=self._stream or sys.stdout)
        return _console_id()

    async def aclose(self) -> None:
        return None


class ConsoleEmail:
    """An :class:`~patient_portal.notify.port.EmailSender` that logs instead of sending."""

    def __init__(self, *, show_bodies: bool = False, stream: TextIO | None = None) -> None:
        self._show_bodies = show_bodies
        self._stream = stream

    async def send_email(self, to: str, subject: str, body: str, *, key: str) -> str:
        logger.info("e-mail to %s (%d chars)", mask_email(to), len(body))
        if self._show_bodies:
            print(
                f"--- e-mail to {mask_email(to)} ---\nSubject: {subject}\n\n{body}\n---",
                file=self._stream or sys.stdout,
            )
        return _console_id()

    async def aclose(self) -> None:
        return None
