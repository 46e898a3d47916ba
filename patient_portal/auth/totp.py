"""Staff second factor: TOTP (RFC 6238, 30-second steps, six digits) and recovery codes.

A code is accepted once: :func:`verify` returns the time step it matched, the caller stores it
(``StaffMember.totp_last_step``) and passes it back next time, and any step at or before it is
refused — a code seen over a shoulder or replayed from a log is worthless.

Recovery codes are shown once at enrolment and stored as SHA-256 hashes. An unsalted fast hash is
enough here because the codes are random, not chosen: each carries 60 bits (12 Crockford base32
characters, ``XXXX-XXXX-XXXX``), out of reach of offline guessing, which is also why the codes are
12 characters rather than 8 (40 bits could be searched on a GPU).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
import unicodedata
from datetime import datetime
from typing import Final

import pyotp
import segno

ISSUER: Final = "Tsunagu"
STEP_SECONDS: Final = 30
DIGITS: Final = 6
CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECOVERY_GROUPS: Final = 3
RECOVERY_GROUP_LENGTH: Final = 4
# Crockford's decoding: letters easily mistaken for digits mean those digits.
_CROCKFORD_ALIASES: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CODE_SEPARATORS = re.compile(r"[\s\-]+")


def new_secret() -> str:
    """A fresh shared secret: 160 random bits in base32 (what authenticator apps expect)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_name: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """SVG markup of a QR code for ``uri``, black on white (scannable in dark mode too)."""
    qr = segno.make(uri, error="m")
    buffer = io.BytesIO()
    qr.save(
        buffer,
        kind="svg",
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        svgns=True,
        title="TOTP QR code",
    )
    return buffer.getvalue().decode("utf-8")


def qr_data_uri(uri: str) -> str:
    """The QR code as ``data:image/svg+xml;base64,…``, for ``<img src>`` (no inline SVG in CSP)."""
    encoded = base64.b64encode(qr_svg(uri).encode("utf-8")).decode("ascii")
    return f"data:image/svg+xml;base64,{encoded}"


def time_step(now: datetime) -> int:
    """The RFC 6238 counter for ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return int(now.timestamp()) // STEP_SECONDS


def verify(
    secret: str, code: str, *, now: datetime, last_step: int | None, window: int = 1
) -> int | None:
    """The time step ``code`` is valid for, or ``None``.

    Steps within ``window`` of ``now`` either way are tried (clock drift, slow typing). A step at
    or before ``last_step`` is refused even when the code is right: it was used already.
    """
    typed = unicodedata.normalize("NFKC", code).strip().replace(" ", "")
    if len(typed) != DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    for step in range(current - window, current + window + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


def new_recovery_codes(count: int = 10) -> list[str]:
    """``count`` fresh codes like ``7K3M-Q9TX-2WRD``. Show them once; store only their hashes."""
    length = RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH
    return [
        _grouped("".join(secrets.choice(CROCKFORD) for _ in range(length))) for _ in range(count)
    ]


def normalise_recovery_code(raw: str) -> str | None:
    """The canonical form (``XXXX-XXXX-XXXX``) of a typed code, or ``None`` if it cannot be one.

    Case, spaces, hyphens, full-width characters and the look-alikes O/I/L are forgiven.
    """
    text = _CODE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    text = text.translate(_CROCKFORD_ALIASES)
    if len(text) != RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH or any(
        c not in CROCKFORD for c in text
    ):
        return None
    return _grouped(text)


def hash_recovery_code(code: str) -> str:
    """The hex SHA-256 of the normalised code (``RecoveryCode.code_hash``).

    Input that is not a recovery code at all (a mistyped TOTP code) is hashed as typed: that hash
    matches no stored code, so callers can look any input up without checking it first.
    """
    canonical = normalise_recovery_code(code) or code
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _grouped(text: str) -> str:
    size = RECOVERY_GROUP_LENGTH
    return "-".join(text[i : i + size] for i in range(0, len(text), size))
