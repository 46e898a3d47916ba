"""Server-side sessions, API tokens and one-time SMS codes. Secrets are stored only as hashes."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PrincipalKind(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"


class Session(Model):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie's value, never the value.

    A staff session is ``mfa_pending`` between the password and the second factor: it can do
    nothing but finish signing in.
    """

    id = fields.CharField(max_length=64, primary_key=True)
    kind = fields.CharEnumField(PrincipalKind, max_length=8)
    principal_id = fields.UUIDField(db_index=True)
    mfa_pending = fields.BooleanField(default=False)
    csrf_secret = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    ip = fields.CharField(max_length=45, default="")
    user_agent = fields.CharField(max_length=200, default="")

    class Meta:
        table = "portal_session"


class TokenKind(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class ApiToken(Model):
    """A bearer token of the mobile API, stored as its SHA-256.

    A refresh token is used once: using it again revokes its whole family (a stolen token
    replayed).
    """

    id = fields.CharField(max_length=64, primary_key=True)
    kind = fields.CharEnumField(TokenKind, max_length=8)
    family = fields.UUIDField(db_index=True)
    principal_kind = fields.CharEnumField(PrincipalKind, max_length=8)
    principal_id = fields.UUIDField(db_index=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "portal_api_token"


class OtpChallenge(Model):
    """A one-time code sent by the console verifier (the Twilio adapter keeps codes at Twilio)."""

    id = fields.UUIDField(primary_key=True)
    phone_index = fields.CharField(max_length=64, db_index=True)
    code_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    consumed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "portal_otp_challenge"


class PasskeyCredential(Model):
    """A WebAuthn credential (passkey) of a patient account or a staff member.

    ``public_key`` and ``credential_id`` are not secrets; ``sign_count`` catches a cloned
    authenticator that reports a counter going backwards.
    """

    id = fields.UUIDField(primary_key=True)
    principal_kind = fields.CharEnumField(PrincipalKind, max_length=8)
    principal_id = fields.UUIDField(db_index=True)
    credential_id = fields.CharField(max_length=400, unique=True)
    public_key = fields.TextField()
    sign_count = fields.BigIntField(default=0)
    transports: fields.JSONField[list[str]] = fields.JSONField(default=list)
    name = fields.CharField(max_length=80, default="")
    created_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "portal_passkey_credential"
