"""Builds the identity services from settings (the composition root's part for sign-in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from patient_portal.audit.service import AuditLog
from patient_portal.auth.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from patient_portal.auth.service import Identity
from patient_portal.auth.sessions import (
    DatabaseSessionStore,
    RedisSessionStore,
    Sessions,
    SessionStore,
)
from patient_portal.auth.tokens import Tokens
from patient_portal.auth.verifier import ConsoleVerifier, TwilioVerifier, Verifier
from patient_portal.settings import Settings, SmsProvider

DEMO_SMS_CODE = "123456"


def build_verifier(settings: Settings, clock: Callable[[], datetime], *, demo: bool) -> Verifier:
    if settings.sms_provider is SmsProvider.TWILIO:
        return TwilioVerifier(
            settings.twilio_account_sid,
            settings.twilio_auth_token.reveal(),
            settings.twilio_verify_service_sid,
        )
    return ConsoleVerifier(clock, fixed_code=DEMO_SMS_CODE if demo else None)


def build_identity(
    settings: Settings,
    *,
    redis: Any,
    clock: Callable[[], datetime],
    verifier: Verifier,
) -> Identity:
    store: SessionStore = RedisSessionStore(redis) if redis is not None else DatabaseSessionStore()
    limiter: RateLimiter = (
        RedisRateLimiter(redis, clock=clock) if redis is not None else InMemoryRateLimiter(clock)
    )
    return Identity(
        sessions=Sessions(store, clock),
        tokens=Tokens(clock),
        verifier=verifier,
        limiter=limiter,
        audit=AuditLog(),
        clock=clock,
    )
