"""Builds services from settings: sign-in (identity) and messages (notifier)."""

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
from patient_portal.notify import Composite, ConsoleEmail, ConsoleSms, SmtpEmail, TwilioSms
from patient_portal.settings import EmailProvider, Settings, SmsProvider
from patient_portal.twilio_client import TwilioConnection
from video.turn import TurnProvider, build_turn_provider

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


def build_notifier(settings: Settings, *, demo: bool = False) -> Composite:
    """SMS and e-mail as configured; the console providers print bodies only in the demo."""
    sms: Any
    if settings.sms_provider is SmsProvider.TWILIO:
        sms = TwilioSms(
            settings.twilio_account_sid,
            settings.twilio_auth_token.reveal(),
            from_number=settings.twilio_from_number or None,
            messaging_service_sid=settings.twilio_messaging_service_sid or None,
        )
    else:
        sms = ConsoleSms(show_bodies=demo)
    email: Any
    if settings.email_provider is EmailProvider.SMTP:
        email = SmtpEmail(settings.smtp_url.reveal(), settings.email_from)
    else:
        email = ConsoleEmail(show_bodies=demo)
    return Composite(sms=sms, email=email)


def build_turn(settings: Settings) -> tuple[TurnProvider, TwilioConnection | None]:
    """The TURN provider the settings describe, and the Twilio connection to close with the
    process (when the provider is Twilio's Network Traversal Service)."""
    twilio = None
    if settings.turn_provider == "twilio":
        twilio = TwilioConnection(
            settings.twilio_account_sid, settings.twilio_auth_token.reveal(), timeout=10
        )
    provider = build_turn_provider(
        settings.turn_provider,
        hosts=settings.turn_hosts,
        secret=settings.turn_secret.reveal(),
        port=settings.turn_port,
        tls_port=settings.turn_tls_port,
        transports=settings.turn_transports,
        stun_urls=settings.turn_stun_urls,
        ttl_seconds=settings.turn_ttl_seconds,
        twilio_client=twilio.client if twilio else None,
    )
    return provider, twilio
