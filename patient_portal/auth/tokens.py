"""Bearer tokens for the mobile API: short-lived access tokens and single-use refresh tokens.

Both are opaque random strings stored as SHA-256 hashes, so revoking one is a row update and a
database dump holds nothing usable. A refresh token works once; presenting it a second time
means it was copied, and the whole family (every token descended from that sign-in) is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tortoise.transactions import in_transaction

from patient_portal.auth.models import ApiToken, PrincipalKind, TokenKind

ACCESS_LIFETIME: Final = timedelta(minutes=15)
REFRESH_LIFETIME: Final = {
    PrincipalKind.PATIENT: timedelta(days=30),
    PrincipalKind.STAFF: timedelta(hours=12),
}


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenOwner:
    kind: PrincipalKind
    principal_id: str
    family: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Tokens:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def issue(
        self, kind: PrincipalKind, principal_id: str, *, family: str | None = None
    ) -> TokenPair:
        now = self._now()
        family_id = uuid.UUID(family) if family else uuid.uuid4()
        access = "at_" + secrets.token_urlsafe(32)
        refresh = "rt_" + secrets.token_urlsafe(32)
        for token, token_kind, lifetime in (
            (access, TokenKind.ACCESS, ACCESS_LIFETIME),
            (refresh, TokenKind.REFRESH, REFRESH_LIFETIME[kind]),
        ):
            await ApiToken.create(
                id=_digest(token),
                kind=token_kind,
                family=family_id,
                principal_kind=kind,
                principal_id=principal_id,
                created_at=now,
                expires_at=now + lifetime,
            )
        return TokenPair(access, refresh, int(ACCESS_LIFETIME.total_seconds()))

    async def authenticate(self, access_token: str) -> TokenOwner | None:
        """The owner of a live access token, or None."""
        row = await ApiToken.get_or_none(
            id=_digest(access_token), kind=TokenKind.ACCESS, revoked_at=None
        )
        if row is None or row.expires_at <= self._now():
            return None
        return TokenOwner(row.principal_kind, str(row.principal_id), str(row.family))

    async def refresh(self, refresh_token: str) -> tuple[TokenOwner, TokenPair] | None:
        """Trade a refresh token for a new pair. A reused token revokes its family: None."""
        now = self._now()
        async with in_transaction():
            row = await ApiToken.get_or_none(id=_digest(refresh_token), kind=TokenKind.REFRESH)
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            claimed = await ApiToken.filter(id=row.id, used_at=None).update(used_at=now)
            if not claimed:
                await self.revoke_family(str(row.family))
                return None
        owner = TokenOwner(row.principal_kind, str(row.principal_id), str(row.family))
        return owner, await self.issue(owner.kind, owner.principal_id, family=owner.family)

    async def revoke_family(self, family: str) -> int:
        return await ApiToken.filter(family=family, revoked_at=None).update(revoked_at=self._now())

    async def revoke_all(self, kind: PrincipalKind, principal_id: str) -> int:
        return await ApiToken.filter(
            principal_kind=kind, principal_id=principal_id, revoked_at=None
        ).update(revoked_at=self._now())
