"""Server-side sessions: an opaque random token in a cookie, everything else on the server.

The store keeps only the SHA-256 of the token, so a leaked database or Redis dump cannot be
replayed as a cookie. A session ends at the first of: its idle timeout (staff much shorter than
patients), its absolute lifetime, sign-out, or "sign out everywhere". Signing in always starts a
new session (the id rotates); so does finishing the second factor.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from patient_portal.auth.models import PrincipalKind, Session

COOKIE: Final = "tsunagu_session"
TOUCH_EVERY: Final = timedelta(seconds=60)  # write last_seen at most this often


@dataclass(frozen=True, slots=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta


LIFETIMES: Final = {
    # Staff work on shared clinic PCs: short idle time, one working day at most.
    PrincipalKind.STAFF: Lifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=12)),
    # Patients on their own phones: stay signed in for a while, never beyond a month.
    PrincipalKind.PATIENT: Lifetime(idle=timedelta(days=7), absolute=timedelta(days=30)),
}
MFA_PENDING_LIFETIME: Final = Lifetime(idle=timedelta(minutes=5), absolute=timedelta(minutes=10))


@dataclass(frozen=True, slots=True)
class SessionData:
    id: str
    kind: PrincipalKind
    principal_id: str
    mfa_pending: bool
    csrf_secret: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str = ""
    user_agent: str = ""


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class SessionStore(Protocol):
    async def save(self, data: SessionData) -> None: ...
    async def get(self, sid: str) -> SessionData | None: ...
    async def delete(self, sid: str) -> None: ...
    async def list_for(self, kind: PrincipalKind, principal_id: str) -> list[SessionData]: ...


class DatabaseSessionStore:
    """Sessions as rows of ``portal_session`` (the embedded default)."""

    async def save(self, data: SessionData) -> None:
        values = asdict(data)
        sid = values.pop("id")
        await Session.update_or_create(id=sid, defaults=values)

    async def get(self, sid: str) -> SessionData | None:
        row = await Session.get_or_none(id=sid)
        if row is None:
            return None
        return SessionData(
            id=row.id,
            kind=row.kind,
            principal_id=str(row.principal_id),
            mfa_pending=row.mfa_pending,
            csrf_secret=row.csrf_secret,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            ip=row.ip,
            user_agent=row.user_agent,
        )

    async def delete(self, sid: str) -> None:
        await Session.filter(id=sid).delete()

    async def list_for(self, kind: PrincipalKind, principal_id: str) -> list[SessionData]:
        rows = await Session.filter(kind=kind, principal_id=principal_id)
        found = [await self.get(row.id) for row in rows]
        return [s for s in found if s is not None]


class RedisSessionStore:
    """Sessions in Redis (when configured): shared by every ``serve`` worker, expiring by TTL."""

    def __init__(self, redis: Any, *, prefix: str = "tsunagu:session:") -> None:
        self._redis = redis
        self._prefix = prefix

    def _index(self, kind: PrincipalKind, principal_id: str) -> str:
        return f"{self._prefix}by:{kind.value}:{principal_id}"

    async def save(self, data: SessionData) -> None:
        document = asdict(data)
        for name in ("created_at", "last_seen_at", "expires_at"):
            document[name] = document[name].isoformat()
        document["kind"] = data.kind.value
        ttl = max(1, int((data.expires_at - data.last_seen_at).total_seconds()) + 60)
        index = self._index(data.kind, data.principal_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._prefix + data.id, json.dumps(document), ex=ttl)
            pipe.sadd(index, data.id)
            pipe.expire(index, int(LIFETIMES[data.kind].absolute.total_seconds()) + 60)
            await pipe.execute()

    async def get(self, sid: str) -> SessionData | None:
        raw = await self._redis.get(self._prefix + sid)
        if raw is None:
            return None
        document = json.loads(raw)
        return SessionData(
            id=document["id"],
            kind=PrincipalKind(document["kind"]),
            principal_id=document["principal_id"],
            mfa_pending=document["mfa_pending"],
            csrf_secret=document["csrf_secret"],
            created_at=datetime.fromisoformat(document["created_at"]),
            last_seen_at=datetime.fromisoformat(document["last_seen_at"]),
            expires_at=datetime.fromisoformat(document["expires_at"]),
            ip=document["ip"],
            user_agent=document["user_agent"],
        )

    async def delete(self, sid: str) -> None:
        data = await self.get(sid)
        await self._redis.delete(self._prefix + sid)
        if data is not None:
            await self._redis.srem(self._index(data.kind, data.principal_id), sid)

    async def list_for(self, kind: PrincipalKind, principal_id: str) -> list[SessionData]:
        index = self._index(kind, principal_id)
        found: list[SessionData] = []
        for member in await self._redis.smembers(index):
            sid = member.decode() if isinstance(member, bytes) else str(member)
            data = await self.get(sid)
            if data is None:
                await self._redis.srem(index, sid)
            else:
                found.append(data)
        return found


class Sessions:
    """Start, load, list and end sessions under the timeouts above. ``clock`` gives aware UTC."""

    def __init__(self, store: SessionStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self._clock = clock

    def _lifetime(self, kind: PrincipalKind, mfa_pending: bool) -> Lifetime:
        return MFA_PENDING_LIFETIME if mfa_pending else LIFETIMES[kind]

    async def start(
        self,
        kind: PrincipalKind,
        principal_id: str,
        *,
        mfa_pending: bool = False,
        ip: str = "",
        user_agent: str = "",
        replacing: str | None = None,
    ) -> tuple[str, SessionData]:
        """A new session; returns the cookie token (shown once) and the stored data.
        ``replacing``: the token of a session this one supersedes (ended now)."""
        if replacing:
            await self.store.delete(session_id(replacing))
        now = self._clock().astimezone(UTC)
        token = secrets.token_urlsafe(32)
        lifetime = self._lifetime(kind, mfa_pending)
        data = SessionData(
            id=session_id(token),
            kind=kind,
            principal_id=principal_id,
            mfa_pending=mfa_pending,
            csrf_secret=secrets.token_hex(16),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime.absolute,
            ip=ip[:45],
            user_agent=user_agent[:200],
        )
        await self.store.save(data)
        return token, data

    async def load(self, token: str) -> SessionData | None:
        """The live session for ``token``; an idle or expired one is ended and ``None`` given."""
        data = await self.store.get(session_id(token))
        if data is None:
            return None
        now = self._clock().astimezone(UTC)
        lifetime = self._lifetime(data.kind, data.mfa_pending)
        if now >= data.expires_at or now - data.last_seen_at >= lifetime.idle:
            await self.store.delete(data.id)
            return None
        if now - data.last_seen_at >= TOUCH_EVERY:
            data = replace(data, last_seen_at=now)
            await self.store.save(data)
        return data

    async def end(self, token: str) -> None:
        await self.store.delete(session_id(token))

    async def end_all(
        self, kind: PrincipalKind, principal_id: str, *, keep_token: str | None = None
    ) -> int:
        """Sign out everywhere (but the session of ``keep_token``); returns how many ended."""
        keep = session_id(keep_token) if keep_token else None
        ended = 0
        for data in await self.store.list_for(kind, principal_id):
            if data.id != keep:
                await self.store.delete(data.id)
                ended += 1
        return ended

    async def active(self, kind: PrincipalKind, principal_id: str) -> list[SessionData]:
        now = self._clock().astimezone(UTC)
        live = []
        for data in await self.store.list_for(kind, principal_id):
            lifetime = self._lifetime(data.kind, data.mfa_pending)
            if now < data.expires_at and now - data.last_seen_at < lifetime.idle:
                live.append(data)
        return sorted(live, key=lambda d: d.last_seen_at, reverse=True)
