"""Passkeys (WebAuthn, through py_webauthn): register one, sign in with one, or use one as staff's
second factor.

Every ceremony has two steps. The server makes options with a fresh challenge; the browser asks
the authenticator; the server verifies the answer against that challenge, the relying party id
and the page's origin. A challenge is kept on the server, bound to one browser (its session, or
before sign-in the hash of its CSRF cookie) and one purpose, used at most once, and only within
:data:`CHALLENGE_LIFETIME`. Taking a challenge removes it, so a failed or replayed answer never
gets a second try.

A credential's signature counter must go up at each use (or stay zero, as synced passkeys
report); the stored counter moves by a conditional update, so two concurrent uses of one answer
cannot both win. Every outcome is audited; nothing here logs who signed in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import unicodedata
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from patient_portal.accounts.models import PatientAccount, StaffMember
from patient_portal.audit.models import Outcome
from patient_portal.audit.service import AuditEvent
from patient_portal.auth.models import PasskeyCredential, PrincipalKind
from patient_portal.auth.phone import mask
from patient_portal.auth.policy import Principal
from patient_portal.auth.ratelimit import SIGN_IN_PER_ACCOUNT, Limit
from patient_portal.auth.service import AuthError, Client, Identity, SignedIn
from patient_portal.auth.sessions import SessionData
from patient_portal.problems import Text

logger = logging.getLogger(__name__)

CHALLENGE_LIFETIME: Final = timedelta(minutes=5)
CREDENTIAL_ID_MAX: Final = 400  # the column's length
CEREMONY_TIMEOUT_MS: Final = 120_000  # what the browser is told; well inside the lifetime
NAME_MAX: Final = 80
RP_NAME: Final = "Tsunagu"
REDIS_TIMEOUT: Final = 2.0

# Per IP address: asking for options costs server memory, answering costs a signature check.
PASSKEY_OPTIONS_PER_IP: Final = Limit("passkey-options:ip", 60, timedelta(minutes=15))
PASSKEY_SIGN_IN_PER_IP: Final = Limit("passkey-sign-in:ip", 30, timedelta(minutes=15))


class Purpose:
    """What a challenge was issued for; one cannot be answered for another."""

    REGISTER: Final = "register"
    SIGN_IN: Final = "sign-in"
    SECOND_FACTOR: Final = "second-factor"


PASSKEY_REFUSED = Text(
    "パスキーを確認できませんでした。もう一度お試しいただくか、ほかの方法でログインしてください",
    "The passkey could not be verified. Try again, or sign in another way.",
)
CHALLENGE_GONE = Text(
    "時間が経ちすぎたか、すでに使われた手続きです。もう一度お試しください",
    "This request has expired or was already used. Please try again.",
)
NAME_MISSING = Text("パスキーの名前を入力してください", "Give the passkey a name.")
ALREADY_REGISTERED = Text(
    "このパスキーはすでに登録されています", "This passkey is already registered."
)
NO_PASSKEYS = Text(
    "登録されたパスキーがありません。認証アプリのコードを入力してください",
    "You have no passkey registered. Enter the code from your authenticator app.",
)


class PasskeyError(AuthError):
    """A passkey step failed; ``text`` is safe to show and never says whether an account exists."""


class PasskeyRefused(PasskeyError):
    status = 401


# -- pure helpers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the browser is talking to: ``id`` is a host name, ``origin`` the page's origin."""

    id: str
    origin: str
    name: str = RP_NAME


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` as a browser writes an origin (no default port)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def relying_party(public_url: str, request_url: str, *, production: bool) -> RelyingParty:
    """In production the relying party is ``public_url``, whatever the request says. Elsewhere it
    is the page the browser is on, so a developer (or a test) may open the portal as
    ``http://localhost:<port>`` — WebAuthn refuses IP addresses as relying party ids."""
    source = public_url if production else request_url
    return RelyingParty(id=(urlsplit(source).hostname or "").lower(), origin=origin_of(source))


def binding_of(session_id: str | None, csrf_cookie: str | None) -> str | None:
    """What a challenge is bound to: the session, else the browser's CSRF cookie (hashed)."""
    if session_id:
        return "session:" + session_id
    if csrf_cookie:
        return "browser:" + hashlib.sha256(csrf_cookie.encode("utf-8")).hexdigest()
    return None


def clean_name(raw: str) -> str:
    """A passkey's name as typed, without control characters, at most :data:`NAME_MAX` long."""
    kept = "".join(c for c in raw if unicodedata.category(c)[0] != "C")
    name = " ".join(kept.split())[:NAME_MAX]
    if not name:
        raise PasskeyError(NAME_MISSING)
    return name


def user_handle(principal_id: str) -> bytes:
    """The WebAuthn user id of a principal: its UUID's 16 bytes (opaque, no personal data)."""
    return uuid.UUID(principal_id).bytes


def transports_of(values: list[str]) -> list[AuthenticatorTransport]:
    known = {t.value for t in AuthenticatorTransport}
    return [AuthenticatorTransport(v) for v in values if v in known]


def descriptor(credential_id: str, transports: list[str]) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(credential_id), transports=transports_of(transports) or None
    )


# -- challenges --------------------------------------------------------------------------------


class ChallengeStore(Protocol):
    async def put(self, key: str, challenge: bytes, expires_at: datetime) -> None:
        """Keep ``challenge`` for ``key`` until ``expires_at``, replacing any earlier one."""
        ...

    async def take(self, key: str, now: datetime) -> bytes | None:
        """Remove and return the live challenge of ``key`` (None if absent or expired)."""
        ...


class InMemoryChallengeStore:
    """Challenges of one process (the embedded default). At most ``max_entries`` are kept: the
    oldest are dropped first, so a flood of option requests cannot grow memory."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bytes, datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, key: str, challenge: bytes, expires_at: datetime) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (challenge, expires_at)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def take(self, key: str, now: datetime) -> bytes | None:
        entry = self._entries.pop(key, None)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]


class RedisChallengeStore:
    """Challenges in Redis (when configured), shared by every worker; ``GETDEL`` takes a
    challenge atomically, so it is used once even across workers."""

    def __init__(self, redis: Any, *, prefix: str = "tsunagu:webauthn:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def put(self, key: str, challenge: bytes, expires_at: datetime) -> None:
        value = f"{expires_at.timestamp():.3f}:{bytes_to_base64url(challenge)}"
        ttl = max(1, int(CHALLENGE_LIFETIME.total_seconds()) + 5)
        async with asyncio.timeout(REDIS_TIMEOUT):
            await self._redis.set(self._prefix + key, value, ex=ttl)

    async def take(self, key: str, now: datetime) -> bytes | None:
        async with asyncio.timeout(REDIS_TIMEOUT):
            raw = await self._redis.getdel(self._prefix + key)
        if raw is None:
            return None
        text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
        expires, _, encoded = text.partition(":")
        if float(expires) <= now.timestamp():
            return None
        return base64url_to_bytes(encoded)


# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PasskeyView:
    """A passkey as the management page shows it."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _view(row: PasskeyCredential) -> PasskeyView:
    return PasskeyView(str(row.id), row.name, row.created_at, row.last_used_at)


class Passkeys:
    """The passkey use cases. ``clock`` gives aware UTC; sessions, limiter and audit log are
    Identity's own, so a passkey sign-in is indistinguishable from any other afterwards."""

    def __init__(self, *, identity: Identity, challenges: ChallengeStore) -> None:
        self.identity = identity
        self.challenges = challenges

    def now(self) -> datetime:
        return self.identity.now()

    async def _limit(self, limit: Limit, subject: str) -> None:
        await self.identity.limit(limit, subject)

    async def _audit(self, event: AuditEvent) -> None:
        await self.identity.audit.record(event, now=self.now())

    async def _issue(self, purpose: str, binding: str) -> bytes:
        challenge = secrets.token_bytes(32)
        await self.challenges.put(
            f"{purpose}:{binding}", challenge, self.now() + CHALLENGE_LIFETIME
        )
        return challenge

    async def _take(self, purpose: str, binding: str) -> bytes:
        challenge = await self.challenges.take(f"{purpose}:{binding}", self.now())
        if challenge is None:
            raise PasskeyRefused(CHALLENGE_GONE)
        return challenge

    async def _rows(self, kind: PrincipalKind, principal_id: str) -> list[PasskeyCredential]:
        return await PasskeyCredential.filter(
            principal_kind=kind, principal_id=principal_id
        ).order_by("created_at")

    # -- managing one's own passkeys -----------------------------------------------------------

    async def list_for(self, principal: Principal) -> list[PasskeyView]:
        return [_view(row) for row in await self._rows(PrincipalKind(principal.kind), principal.id)]

    async def registration_options(
        self, principal: Principal, binding: str, rp: RelyingParty
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.create`` (JSON-ready), excluding the principal's
        existing passkeys so an authenticator is not registered twice."""
        kind = PrincipalKind(principal.kind)
        user_name, display_name = await self._user_names(kind, principal.id)
        existing = await self._rows(kind, principal.id)
        options = generate_registration_options(
            rp_id=rp.id,
            rp_name=rp.name,
            user_id=user_handle(principal.id),
            user_name=user_name,
            user_display_name=display_name,
            challenge=await self._issue(Purpose.REGISTER, binding),
            timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[descriptor(r.credential_id, r.transports) for r in existing],
        )
        return options_to_json_dict(options)

    async def _user_names(self, kind: PrincipalKind, principal_id: str) -> tuple[str, str]:
        """How the authenticator labels the account: a staff login, or a patient's masked phone
        (enough to tell accounts apart on a shared phone, without the number itself)."""
        if kind is PrincipalKind.STAFF:
            staff = await StaffMember.get(id=principal_id)
            return staff.login_id, staff.display_name
        account = await PatientAccount.get(id=principal_id)
        label = f"{RP_NAME} {mask(account.phone)}"
        return label, label

    async def register(
        self,
        principal: Principal,
        binding: str,
        rp: RelyingParty,
        credential: object,
        name: str,
        client: Client,
    ) -> PasskeyView:
        """Verify the authenticator's answer and keep the new credential under ``name``."""
        name = clean_name(name)
        challenge = await self._take(Purpose.REGISTER, binding)
        kind = PrincipalKind(principal.kind)
        try:
            parsed = parse_registration_credential_json(_as_json_object(credential))
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            logger.info("passkey registration refused: %s", type(error).__name__)
            await self._principal_event(principal, "auth.passkey_added", Outcome.FAILURE, client)
            raise PasskeyRefused(PASSKEY_REFUSED) from None
        transports = [t.value for t in parsed.response.transports or []]
        try:
            row = await PasskeyCredential.create(
                principal_kind=kind,
                principal_id=principal.id,
                credential_id=bytes_to_base64url(verified.credential_id),
                public_key=bytes_to_base64url(verified.credential_public_key),
                sign_count=verified.sign_count,
                transports=transports,
                name=name,
                created_at=self.now(),
            )
        except IntegrityError:
            await self._principal_event(principal, "auth.passkey_added", Outcome.FAILURE, client)
            raise PasskeyError(ALREADY_REGISTERED) from None
        await self._principal_event(
            principal, "auth.passkey_added", Outcome.SUCCESS, client, target=str(row.id)
        )
        return _view(row)

    async def remove(self, principal: Principal, passkey_id: str, client: Client) -> bool:
        """Forget one of the principal's own passkeys; False if it has no such passkey."""
        try:
            key = uuid.UUID(passkey_id)
        except ValueError:
            return False
        deleted = await PasskeyCredential.filter(
            id=key, principal_kind=PrincipalKind(principal.kind), principal_id=principal.id
        ).delete()
        if deleted:
            await self._principal_event(
                principal, "auth.passkey_removed", Outcome.SUCCESS, client, target=str(key)
            )
        return bool(deleted)

    async def _principal_event(
        self,
        principal: Principal,
        action: str,
        outcome: Outcome,
        client: Client,
        *,
        target: str = "",
    ) -> None:
        await self._audit(
            AuditEvent(
                action=action,
                outcome=outcome,
                actor_kind=principal.kind,
                actor_id=principal.id,
                actor_role=principal.role.value,
                clinic_id=principal.clinic_id,
                target_kind="passkey" if target else "",
                target_id=target,
                ip=client.ip,
                user_agent=client.user_agent,
            )
        )

    # -- patients: sign in with a passkey alone ------------------------------------------------

    async def sign_in_options(
        self, binding: str, rp: RelyingParty, client: Client
    ) -> dict[str, Any]:
        """Options for a usernameless sign-in: any passkey of this site the device holds."""
        await self._limit(PASSKEY_OPTIONS_PER_IP, client.ip)
        options = generate_authentication_options(
            rp_id=rp.id,
            challenge=await self._issue(Purpose.SIGN_IN, binding),
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json_dict(options)

    async def sign_in_patient(
        self,
        binding: str,
        rp: RelyingParty,
        credential: object,
        client: Client,
        *,
        replacing: str | None = None,
    ) -> SignedIn:
        """Verify the answer; on success start a NEW patient session, as the SMS path does."""
        await self._limit(PASSKEY_SIGN_IN_PER_IP, client.ip)
        try:
            row = await self._verify(
                Purpose.SIGN_IN, binding, rp, credential, PrincipalKind.PATIENT
            )
            account = await PatientAccount.get_or_none(id=row.principal_id, is_active=True)
            if account is None:
                raise PasskeyRefused(PASSKEY_REFUSED)
        except PasskeyError as error:
            await self._audit(
                AuditEvent(
                    action="auth.sign_in",
                    outcome=Outcome.FAILURE,
                    actor_kind="anonymous",
                    ip=client.ip,
                    user_agent=client.user_agent,
                    detail={"method": "passkey"},
                )
            )
            raise error from None
        return await self.identity.finish_patient_sign_in(
            account, client, method="passkey", replacing=replacing
        )

    # -- staff: a passkey as the second factor -------------------------------------------------

    async def _pending_staff(self, pending: SessionData) -> StaffMember:
        staff = await StaffMember.get_or_none(id=pending.principal_id, is_active=True)
        # A member whose second factor was reset enrols TOTP again before passkeys count.
        if (
            staff is None
            or not pending.mfa_pending
            or pending.kind is not PrincipalKind.STAFF
            or staff.totp_secret is None
        ):
            raise PasskeyRefused(PASSKEY_REFUSED)
        return staff

    async def second_factor_options(
        self, pending: SessionData, binding: str, rp: RelyingParty, client: Client
    ) -> dict[str, Any]:
        """Options listing the member's own passkeys (none: a refusal pointing at TOTP)."""
        await self._limit(PASSKEY_OPTIONS_PER_IP, client.ip)
        staff = await self._pending_staff(pending)
        rows = await self._rows(PrincipalKind.STAFF, str(staff.id))
        if not rows:
            raise PasskeyError(NO_PASSKEYS)
        options = generate_authentication_options(
            rp_id=rp.id,
            challenge=await self._issue(Purpose.SECOND_FACTOR, binding),
            timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=[descriptor(r.credential_id, r.transports) for r in rows],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json_dict(options)

    async def staff_second_factor(
        self,
        pending: SessionData,
        pending_token: str,
        binding: str,
        rp: RelyingParty,
        credential: object,
        client: Client,
    ) -> SignedIn:
        """Verify the answer with one of the member's passkeys; success finishes sign-in in a NEW
        session that replaces the pending one, exactly like a TOTP code."""
        await self._limit(PASSKEY_SIGN_IN_PER_IP, client.ip)
        staff = await self._pending_staff(pending)
        await self._limit(SIGN_IN_PER_ACCOUNT, staff.login_id)
        try:
            await self._verify(
                Purpose.SECOND_FACTOR, binding, rp, credential, PrincipalKind.STAFF, str(staff.id)
            )
        except PasskeyError as error:
            await self.identity.record_staff_failure(staff, client, "passkey")
            raise error from None
        return await self.identity.finish_staff_sign_in(staff, client, "passkey", pending_token)

    # -- the shared half of both sign-in ceremonies --------------------------------------------

    async def _verify(
        self,
        purpose: str,
        binding: str,
        rp: RelyingParty,
        credential: object,
        kind: PrincipalKind,
        owner: str | None = None,
    ) -> PasskeyCredential:
        """The stored credential (of ``owner``, if given) that signed this challenge, its
        counter moved forward."""
        challenge = await self._take(purpose, binding)
        try:
            parsed = parse_authentication_credential_json(_as_json_object(credential))
        except (WebAuthnException, ValueError, TypeError, KeyError):
            raise PasskeyRefused(PASSKEY_REFUSED) from None
        if not parsed.id or len(parsed.id) > CREDENTIAL_ID_MAX:  # longer than any we store
            raise PasskeyRefused(PASSKEY_REFUSED)
        row = await PasskeyCredential.get_or_none(credential_id=parsed.id, principal_kind=kind)
        if row is None or (owner is not None and str(row.principal_id) != owner):
            raise PasskeyRefused(PASSKEY_REFUSED)
        handle = parsed.response.user_handle
        if handle is not None and handle != user_handle(str(row.principal_id)):
            raise PasskeyRefused(PASSKEY_REFUSED)
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=challenge,
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                credential_public_key=base64url_to_bytes(row.public_key),
                credential_current_sign_count=row.sign_count,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as error:
            logger.info("passkey assertion refused: %s", type(error).__name__)
            raise PasskeyRefused(PASSKEY_REFUSED) from None
        moved = await PasskeyCredential.filter(id=row.id, sign_count=row.sign_count).update(
            sign_count=verified.new_sign_count, last_used_at=self.now()
        )
        if not moved:  # a concurrent use of the same answer won
            raise PasskeyRefused(PASSKEY_REFUSED)
        return row


def _as_json_object(credential: object) -> dict[str, Any]:
    if not isinstance(credential, dict):
        raise TypeError("a credential is a JSON object")
    return credential
