"""Sign-in use cases for patients (SMS code) and staff (password + second factor).

Every outcome is audited; every failure looks the same from outside (no "unknown account"), and
every attempt counts against rate limits per account and per IP address before any work is done.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from patient_portal.accounts.models import (
    PasswordHistory,
    Patient,
    PatientAccount,
    RecoveryCode,
    StaffInvitation,
    StaffMember,
)
from patient_portal.accounts.service import parse_id
from patient_portal.audit.models import Outcome
from patient_portal.audit.service import AuditEvent, AuditLog
from patient_portal.auth import passwords, totp
from patient_portal.auth.middleware import AuthContext
from patient_portal.auth.models import PasskeyCredential, PrincipalKind
from patient_portal.auth.phone import normalise_mobile
from patient_portal.auth.policy import Principal, Role
from patient_portal.auth.ratelimit import (
    CODE_CHECK_PER_IP,
    CODE_CHECK_PER_PHONE,
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_IP,
    SMS_SEND_PER_IP,
    SMS_SEND_PER_PHONE,
    SMS_SEND_PER_PHONE_DAILY,
    Limit,
    RateLimiter,
)
from patient_portal.auth.sessions import SessionData, Sessions
from patient_portal.auth.tokens import TokenPair, Tokens
from patient_portal.auth.verifier import Verifier
from patient_portal.crypto.keyring import current_keyring
from patient_portal.problems import Text

logger = logging.getLogger(__name__)

PHONE_PURPOSE: Final = "phone"
INVITATION_LIFETIME: Final = timedelta(days=3)


class AuthError(Exception):
    """A sign-in step failed. ``text`` is safe to show; it never says whether an account exists."""

    status = 400

    def __init__(self, text: Text, *, retry_after: int | None = None) -> None:
        super().__init__(text.en)
        self.text = text
        self.retry_after = retry_after


class RateLimited(AuthError):
    status = 429


class InvalidCredentials(AuthError):
    status = 401


WRONG_CODE = Text(
    "確認コードが正しくないか、有効期限が切れています。もう一度お試しください",
    "The code is wrong or has expired. Please try again.",
)
WRONG_CREDENTIALS = Text(
    "ログインIDまたはパスワード、確認コードが正しくありません",
    "The login ID, password or code is not correct.",
)
TOO_MANY = Text(
    "試行回数が多すぎます。しばらく待ってからお試しください",
    "Too many attempts. Please wait a while and try again.",
)
WRONG_PATIENT_PASSWORD = Text(
    "携帯電話番号またはパスワードが正しくありません",
    "The mobile number or the password is not correct.",
)
PASSWORD_REUSED = Text(
    "以前に使ったパスワードは使えません",
    "You cannot reuse a password you have used before.",
)
INVITATION_INVALID = Text(
    "招待リンクが無効か、有効期限が切れています。管理者に再発行を依頼してください",
    "This invitation link is invalid or has expired. Ask your administrator for a new one.",
)


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request comes from, for rate limits and the audit log."""

    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class SignedIn:
    session_token: str | None = None
    tokens: TokenPair | None = None
    principal_id: str = ""
    needs_profile: bool = False
    needs_totp_enrolment: bool = False


class Identity:
    def __init__(
        self,
        *,
        sessions: Sessions,
        tokens: Tokens,
        verifier: Verifier,
        limiter: RateLimiter,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.tokens = tokens
        self.verifier = verifier
        self.limiter = limiter
        self.audit = audit
        self._clock = clock

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- who is asking ------------------------------------------------------------------------

    async def resolve(self, session_token: str | None, bearer: str | None) -> AuthContext:
        if bearer:
            owner = await self.tokens.authenticate(bearer)
            if owner is None:
                return AuthContext(via_bearer=True)
            principal = await self.principal(owner.kind, owner.principal_id)
            return AuthContext(principal=principal, via_bearer=True)
        if not session_token:
            return AuthContext()
        session = await self.sessions.load(session_token)
        if session is None:
            return AuthContext()
        principal = None
        if not session.mfa_pending:
            principal = await self.principal(session.kind, session.principal_id)
        return AuthContext(principal=principal, session=session, session_token=session_token)

    async def principal(self, kind: PrincipalKind, principal_id: str) -> Principal | None:
        if kind is PrincipalKind.STAFF:
            staff = await StaffMember.get_or_none(id=principal_id, is_active=True)
            if staff is None:
                return None
            return Principal(
                kind="staff",
                id=str(staff.id),
                role=Role(staff.role.value),
                clinic_id=str(staff.clinic_id) if staff.clinic_id else "",  # type: ignore[attr-defined]
            )
        account = await PatientAccount.get_or_none(id=principal_id, is_active=True)
        if account is None:
            return None
        ids = await Patient.filter(account=account).values_list("id", flat=True)
        return Principal(
            kind="patient",
            id=str(account.id),
            role=Role.PATIENT,
            patient_ids=frozenset(str(i) for i in ids),
        )

    async def principal_staff(self, staff_id: str) -> StaffMember | None:
        return await StaffMember.get_or_none(id=staff_id, is_active=True)

    async def limit(self, limit: Limit, subject: str) -> None:
        decision = await limit.hit(self.limiter, subject)
        if not decision.allowed:
            raise RateLimited(TOO_MANY, retry_after=int(decision.retry_after) or 1)

    async def _audit(self, event: AuditEvent) -> None:
        await self.audit.record(event, now=self.now())

    # -- patients: SMS code -------------------------------------------------------------------

    async def send_code(self, raw_phone: str, client: Client, *, locale: str) -> str:
        """Normalise the number and send a code; returns the E.164 number. Raises PhoneError,
        RateLimited or a VerifierError. Says the same whether or not an account exists."""
        phone = normalise_mobile(raw_phone)
        await self.limit(SMS_SEND_PER_IP, client.ip)
        await self.limit(SMS_SEND_PER_PHONE, phone)
        await self.limit(SMS_SEND_PER_PHONE_DAILY, phone)
        await self.verifier.start(phone, locale=locale)
        await self._audit(
            AuditEvent(
                action="auth.sms_sent",
                outcome=Outcome.SUCCESS,
                actor_kind="anonymous",
                target_kind="phone",
                target_id=current_keyring().blind_index(phone, PHONE_PURPOSE)[:16],
                ip=client.ip,
                user_agent=client.user_agent,
            )
        )
        return phone

    async def verify_code(
        self, phone: str, code: str, client: Client, *, want_tokens: bool = False
    ) -> SignedIn:
        """Check the code; on success sign in (creating the account on first use)."""
        phone = normalise_mobile(phone)
        await self.limit(CODE_CHECK_PER_IP, client.ip)
        await self.limit(CODE_CHECK_PER_PHONE, phone)
        index = current_keyring().blind_index(phone, PHONE_PURPOSE)
        if not await self.verifier.check(phone, code.strip()):
            await self._audit(
                AuditEvent(
                    action="auth.sign_in",
                    outcome=Outcome.FAILURE,
                    actor_kind="anonymous",
                    target_kind="phone",
                    target_id=index[:16],
                    ip=client.ip,
                    user_agent=client.user_agent,
                    detail={"method": "sms"},
                )
            )
            raise InvalidCredentials(WRONG_CODE)
        account, created = await PatientAccount.get_or_create(
            phone_index=index, defaults={"phone": phone}
        )
        if not account.is_active:
            raise InvalidCredentials(WRONG_CODE)
        await self.limiter.reset(CODE_CHECK_PER_PHONE.key(phone))
        return await self.finish_patient_sign_in(
            account, client, method="sms", created=created, want_tokens=want_tokens
        )

    async def finish_patient_sign_in(
        self,
        account: PatientAccount,
        client: Client,
        *,
        method: str,
        created: bool = False,
        want_tokens: bool = False,
        replacing: str | None = None,
    ) -> SignedIn:
        """After any successful patient check (SMS code, password, passkey): record it, audit
        it, and start a NEW session (or issue tokens)."""
        account.last_sign_in_at = self.now()
        await account.save(update_fields=["last_sign_in_at", "updated_at"])
        await self._audit(
            AuditEvent(
                action="auth.sign_up" if created else "auth.sign_in",
                outcome=Outcome.SUCCESS,
                actor_kind="patient",
                actor_id=str(account.id),
                actor_role="patient",
                ip=client.ip,
                user_agent=client.user_agent,
                detail={"method": method},
            )
        )
        needs_profile = not await Patient.filter(account=account).exists()
        return await self._signed_in(
            PrincipalKind.PATIENT,
            str(account.id),
            client,
            want_tokens,
            needs_profile=needs_profile,
            replacing=replacing,
        )

    async def _signed_in(
        self,
        kind: PrincipalKind,
        principal_id: str,
        client: Client,
        want_tokens: bool,
        *,
        replacing: str | None = None,
        needs_profile: bool = False,
    ) -> SignedIn:
        if want_tokens:
            pair = await self.tokens.issue(kind, principal_id)
            return SignedIn(tokens=pair, principal_id=principal_id, needs_profile=needs_profile)
        token, _ = await self.sessions.start(
            kind, principal_id, ip=client.ip, user_agent=client.user_agent, replacing=replacing
        )
        return SignedIn(session_token=token, principal_id=principal_id, needs_profile=needs_profile)

    # -- staff: password, then a second factor ------------------------------------------------

    async def staff_password(
        self, login_id: str, password: str, client: Client
    ) -> tuple[str, bool]:
        """First step: returns a short-lived, MFA-pending session token and whether the member
        still has to enrol TOTP. Any failure is the same InvalidCredentials."""
        login = login_id.strip().lower()
        await self.limit(SIGN_IN_PER_IP, client.ip)
        await self.limit(SIGN_IN_PER_ACCOUNT, login)
        staff = await StaffMember.get_or_none(login_id=login)
        # An unknown account is checked against a dummy hash: the same time either way.
        matched = await passwords.verify_password_async(
            staff.password_hash if staff else None, password
        )
        if not matched or staff is None or not staff.is_active:
            await self.record_staff_failure(staff, client, "password")
            raise InvalidCredentials(WRONG_CREDENTIALS)
        token, _ = await self.sessions.start(
            PrincipalKind.STAFF,
            str(staff.id),
            mfa_pending=True,
            ip=client.ip,
            user_agent=client.user_agent,
        )
        return token, staff.totp_secret is None

    async def staff_second_factor(
        self, pending: SessionData, pending_token: str, code: str, client: Client
    ) -> SignedIn:
        """Second step: a TOTP code (or a recovery code) finishes sign-in in a NEW session."""
        staff = await StaffMember.get_or_none(id=pending.principal_id, is_active=True)
        if staff is None or not pending.mfa_pending or staff.totp_secret is None:
            raise InvalidCredentials(WRONG_CREDENTIALS)
        await self.limit(SIGN_IN_PER_ACCOUNT, staff.login_id)
        method = await self._check_second_factor(staff, code)
        if method is None:
            await self.record_staff_failure(staff, client, "totp")
            raise InvalidCredentials(WRONG_CREDENTIALS)
        return await self.finish_staff_sign_in(staff, client, method, pending_token)

    async def _check_second_factor(self, staff: StaffMember, code: str) -> str | None:
        assert staff.totp_secret is not None  # noqa: S101 - checked by the caller
        step = totp.verify(
            staff.totp_secret, code.strip(), now=self.now(), last_step=staff.totp_last_step
        )
        if step is not None:
            updated = await StaffMember.filter(
                id=staff.id, totp_last_step=staff.totp_last_step
            ).update(totp_last_step=step)
            return "totp" if updated else None  # a concurrent use of the same code loses
        digest = totp.hash_recovery_code(code)
        used = await RecoveryCode.filter(staff=staff, code_hash=digest, used_at=None).update(
            used_at=self.now()
        )
        return "recovery_code" if used else None

    async def finish_staff_sign_in(
        self, staff: StaffMember, client: Client, method: str, pending_token: str | None
    ) -> SignedIn:
        """After a successful second factor (TOTP, recovery code, passkey): reset the lockout
        counter, audit, and start a NEW session replacing the pending one."""
        await self.limiter.reset(SIGN_IN_PER_ACCOUNT.key(staff.login_id))
        staff.last_sign_in_at = self.now()
        await staff.save(update_fields=["last_sign_in_at", "updated_at"])
        await self._staff_event(staff, "auth.sign_in", Outcome.SUCCESS, client, method=method)
        return await self._signed_in(
            PrincipalKind.STAFF, str(staff.id), client, False, replacing=pending_token
        )

    async def record_staff_failure(
        self, staff: StaffMember | None, client: Client, step: str
    ) -> None:
        if staff is None:
            await self._audit(
                AuditEvent(
                    action="auth.sign_in",
                    outcome=Outcome.FAILURE,
                    actor_kind="anonymous",
                    ip=client.ip,
                    user_agent=client.user_agent,
                    detail={"step": step},
                )
            )
        else:
            await self._staff_event(staff, "auth.sign_in", Outcome.FAILURE, client, step=step)

    async def _staff_event(
        self, staff: StaffMember, action: str, outcome: Outcome, client: Client, **detail: str
    ) -> None:
        """Audit something a staff member did to their own account."""
        await self._audit(
            AuditEvent(
                action=action,
                outcome=outcome,
                actor_kind="staff",
                actor_id=str(staff.id),
                actor_role=staff.role.value,
                clinic_id=str(staff.clinic_id or ""),  # type: ignore[attr-defined]
                ip=client.ip,
                user_agent=client.user_agent,
                detail=detail,
            )
        )

    async def staff_api_sign_in(
        self, login_id: str, password: str, code: str, client: Client
    ) -> TokenPair:
        """The API's one-shot staff sign-in: password and TOTP together, tokens out."""
        pending_token, needs_enrolment = await self.staff_password(login_id, password, client)
        pending = await self.sessions.load(pending_token)
        await self.sessions.end(pending_token)
        if needs_enrolment or pending is None:
            raise InvalidCredentials(WRONG_CREDENTIALS)
        staff = await StaffMember.get(id=pending.principal_id)
        await self.limit(SIGN_IN_PER_ACCOUNT, staff.login_id)
        method = await self._check_second_factor(staff, code)
        if method is None:
            await self.record_staff_failure(staff, client, "totp")
            raise InvalidCredentials(WRONG_CREDENTIALS)
        await self.finish_staff_sign_in(staff, client, method, None)
        return await self.tokens.issue(PrincipalKind.STAFF, str(staff.id))

    # -- staff: enrolment, invitations --------------------------------------------------------

    async def begin_totp_enrolment(self, staff_id: str) -> str:
        """A fresh secret for the enrolment page (kept in the form until confirmed)."""
        return totp.new_secret()

    async def finish_totp_enrolment(
        self, pending: SessionData, pending_token: str, secret: str, code: str, client: Client
    ) -> tuple[SignedIn, list[str]]:
        """Confirm the new secret with a code; store it, issue recovery codes (shown once)."""
        staff = await StaffMember.get_or_none(id=pending.principal_id, is_active=True)
        if staff is None or not pending.mfa_pending or staff.totp_secret is not None:
            raise InvalidCredentials(WRONG_CREDENTIALS)
        await self.limit(SIGN_IN_PER_ACCOUNT, staff.login_id)
        step = totp.verify(secret, code.strip(), now=self.now(), last_step=None)
        if step is None:
            await self.record_staff_failure(staff, client, "totp_enrolment")
            raise InvalidCredentials(WRONG_CODE)
        staff.totp_secret = secret
        staff.totp_last_step = step
        staff.totp_enrolled_at = self.now()
        await staff.save(
            update_fields=["totp_secret", "totp_last_step", "totp_enrolled_at", "updated_at"]
        )
        codes = totp.new_recovery_codes()
        await RecoveryCode.filter(staff=staff).delete()
        for code_value in codes:
            await RecoveryCode.create(staff=staff, code_hash=totp.hash_recovery_code(code_value))
        await self._staff_event(staff, "auth.mfa_enrolled", Outcome.SUCCESS, client)
        signed_in = await self.finish_staff_sign_in(staff, client, "totp_enrolment", pending_token)
        return signed_in, codes

    async def invite(
        self,
        admin: Principal,
        *,
        login_id: str,
        display_name: str,
        display_name_kana: str,
        role: Role,
        client: Client,
    ) -> str:
        """Create a single-use invitation; returns the token for the link (shown once)."""
        token = secrets.token_urlsafe(32)
        await StaffInvitation.create(
            clinic_id=admin.clinic_id,
            login_id=login_id.strip().lower(),
            display_name=display_name.strip(),
            display_name_kana=display_name_kana.strip(),
            role=role.value,
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            invited_by_id=admin.id,
            expires_at=self.now() + INVITATION_LIFETIME,
        )
        await self._audit(
            AuditEvent(
                action="staff.invite",
                outcome=Outcome.SUCCESS,
                actor_kind="staff",
                actor_id=admin.id,
                actor_role=admin.role.value,
                clinic_id=admin.clinic_id,
                target_kind="staff_invitation",
                ip=client.ip,
                user_agent=client.user_agent,
                detail={"role": role.value},
            )
        )
        return token

    async def invitation(self, token: str) -> StaffInvitation:
        invitation = await StaffInvitation.get_or_none(
            token_hash=hashlib.sha256(token.encode()).hexdigest(), used_at=None
        )
        if invitation is None or invitation.expires_at <= self.now():
            raise AuthError(INVITATION_INVALID)
        return invitation

    async def accept_invitation(
        self, token: str, password: str, client: Client
    ) -> tuple[str, bool]:
        """Set the password of a new staff member; returns an MFA-pending session token."""
        invitation = await self.invitation(token)
        problems = passwords.check_policy(
            password,
            min_length=passwords.STAFF_MIN_LENGTH,
            personal=[invitation.login_id, invitation.display_name, invitation.display_name_kana],
        )
        if problems:
            raise AuthError(problems[0].message)
        claimed = await StaffInvitation.filter(id=invitation.id, used_at=None).update(
            used_at=self.now()
        )
        if not claimed:
            raise AuthError(INVITATION_INVALID)
        hashed = await passwords.hash_password_async(password)
        staff = await StaffMember.create(
            clinic_id=invitation.clinic_id,  # type: ignore[attr-defined]
            login_id=invitation.login_id,
            display_name=invitation.display_name,
            display_name_kana=invitation.display_name_kana,
            role=invitation.role,
            password_hash=hashed,
            password_changed_at=self.now(),
        )
        await PasswordHistory.create(staff=staff, password_hash=hashed)
        await self._staff_event(staff, "staff.joined", Outcome.SUCCESS, client)
        return await self.staff_password(invitation.login_id, password, client)

    async def _refuse_reuse(
        self, password: str, current_hash: str | None, **owner: StaffMember | PatientAccount
    ) -> None:
        """Refuse any password the owner has had; the current one joins the history first."""
        previous = [
            str(h)
            for h in await PasswordHistory.filter(**owner).values_list("password_hash", flat=True)
        ]
        if current_hash and current_hash not in previous:
            previous.append(current_hash)
            await PasswordHistory.create(password_hash=current_hash, **owner)  # type: ignore[arg-type]
        if passwords.is_reused(password, previous):
            raise AuthError(PASSWORD_REUSED)

    async def change_staff_password(
        self, principal: Principal, current: str, password: str, client: Client
    ) -> None:
        """Change one's own password, proving the current one first."""
        staff = await StaffMember.get(id=principal.id)
        await self.limit(SIGN_IN_PER_ACCOUNT, staff.login_id)
        if not await passwords.verify_password_async(staff.password_hash, current):
            await self.record_staff_failure(staff, client, "password_change")
            raise InvalidCredentials(WRONG_CREDENTIALS)
        await self.set_staff_password(staff, password)
        await self._staff_event(staff, "auth.password_changed", Outcome.SUCCESS, client)

    async def set_staff_password(self, staff: StaffMember, password: str) -> None:
        """Change a staff password under the policy; a password used before is refused.
        Every session and token of the member ends (the caller signs them in again)."""
        problems = passwords.check_policy(
            password,
            min_length=passwords.STAFF_MIN_LENGTH,
            personal=[staff.login_id, staff.display_name, staff.display_name_kana],
        )
        if problems:
            raise AuthError(problems[0].message)
        await self._refuse_reuse(password, staff.password_hash, staff=staff)
        hashed = await passwords.hash_password_async(password)
        staff.password_hash = hashed
        staff.password_changed_at = self.now()
        await staff.save(update_fields=["password_hash", "password_changed_at", "updated_at"])
        await PasswordHistory.create(staff=staff, password_hash=hashed)
        await self.sessions.end_all(PrincipalKind.STAFF, str(staff.id))
        await self.tokens.revoke_all(PrincipalKind.STAFF, str(staff.id))

    # -- clinic administration ----------------------------------------------------------------

    async def clinic_staff(self, clinic_id: str) -> list[StaffMember]:
        return await StaffMember.filter(clinic_id=clinic_id).order_by("display_name_kana")

    async def staff_in_clinic(self, clinic_id: str, staff_id: str) -> StaffMember | None:
        staff_key, clinic_key = parse_id(staff_id), parse_id(clinic_id)
        if staff_key is None or clinic_key is None:
            return None
        return await StaffMember.get_or_none(id=staff_key, clinic_id=clinic_key)

    async def disable_staff(self, admin: Principal, staff: StaffMember, client: Client) -> None:
        """Disable an account: its sessions and tokens end at once."""
        staff.is_active = False
        await staff.save(update_fields=["is_active", "updated_at"])
        await self.sessions.end_all(PrincipalKind.STAFF, str(staff.id))
        await self.tokens.revoke_all(PrincipalKind.STAFF, str(staff.id))
        await self._admin_event(admin, "staff.disable", staff, client)

    async def reset_second_factor(
        self, admin: Principal, staff: StaffMember, client: Client
    ) -> None:
        """Forget the member's TOTP, recovery codes and passkeys: they enrol again at their next
        sign-in (a lost phone may hold the passkey too)."""
        staff.totp_secret = None  # type: ignore[assignment]
        staff.totp_last_step = None
        staff.totp_enrolled_at = None
        await staff.save(
            update_fields=["totp_secret", "totp_last_step", "totp_enrolled_at", "updated_at"]
        )
        await RecoveryCode.filter(staff=staff).delete()
        await PasskeyCredential.filter(
            principal_kind=PrincipalKind.STAFF, principal_id=staff.id
        ).delete()
        await self.sessions.end_all(PrincipalKind.STAFF, str(staff.id))
        await self.tokens.revoke_all(PrincipalKind.STAFF, str(staff.id))
        await self._admin_event(admin, "auth.mfa_reset", staff, client)

    async def _admin_event(
        self, admin: Principal, action: str, staff: StaffMember, client: Client
    ) -> None:
        await self._audit(
            AuditEvent(
                action=action,
                outcome=Outcome.SUCCESS,
                actor_kind="staff",
                actor_id=admin.id,
                actor_role=admin.role.value,
                clinic_id=admin.clinic_id,
                target_kind="staff",
                target_id=str(staff.id),
                ip=client.ip,
                user_agent=client.user_agent,
            )
        )

    # -- patients: an optional password ------------------------------------------------------

    async def set_patient_password(
        self, principal: Principal, password: str, client: Client
    ) -> None:
        """Add or change a patient's password under the policy; a password used before is
        refused. Other sessions and tokens of the account end."""
        account = await PatientAccount.get(id=principal.id)
        names = await Patient.filter(account=account, relationship="self").first()
        personal = [account.phone]
        if names is not None:
            personal += [names.family_name, names.given_name]
            personal += [names.family_name_kana, names.given_name_kana]
        problems = passwords.check_policy(
            password, min_length=passwords.PATIENT_MIN_LENGTH, personal=personal
        )
        if problems:
            raise AuthError(problems[0].message)
        await self._refuse_reuse(password, account.password_hash, patient_account=account)
        hashed = await passwords.hash_password_async(password)
        account.password_hash = hashed
        await account.save(update_fields=["password_hash", "updated_at"])
        await PasswordHistory.create(patient_account=account, password_hash=hashed)
        await self.tokens.revoke_all(PrincipalKind.PATIENT, principal.id)
        await self._audit(
            AuditEvent(
                action="auth.password_set",
                outcome=Outcome.SUCCESS,
                actor_kind="patient",
                actor_id=principal.id,
                actor_role="patient",
                ip=client.ip,
                user_agent=client.user_agent,
            )
        )

    async def patient_password_sign_in(
        self, raw_phone: str, password: str, client: Client, *, want_tokens: bool = False
    ) -> SignedIn:
        """Sign in with the mobile number and the password; any failure looks the same."""
        phone = normalise_mobile(raw_phone)
        await self.limit(SIGN_IN_PER_IP, client.ip)
        await self.limit(SIGN_IN_PER_ACCOUNT, phone)
        index = current_keyring().blind_index(phone, PHONE_PURPOSE)
        account = await PatientAccount.get_or_none(phone_index=index)
        matched = await passwords.verify_password_async(
            account.password_hash if account else None, password
        )
        if not matched or account is None or not account.is_active:
            await self._audit(
                AuditEvent(
                    action="auth.sign_in",
                    outcome=Outcome.FAILURE,
                    actor_kind="patient" if account else "anonymous",
                    actor_id=str(account.id) if account else "",
                    actor_role="patient" if account else "",
                    ip=client.ip,
                    user_agent=client.user_agent,
                    detail={"method": "password"},
                )
            )
            raise InvalidCredentials(WRONG_PATIENT_PASSWORD)
        await self.limiter.reset(SIGN_IN_PER_ACCOUNT.key(phone))
        return await self.finish_patient_sign_in(
            account, client, method="password", want_tokens=want_tokens
        )
