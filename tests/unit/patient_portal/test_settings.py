"""Settings: defaults, every way a value can be wrong, and secrets that never show."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.settings import (
    DatabaseBackend,
    JobRunner,
    Mode,
    PaymentProvider,
    Secret,
    Settings,
    SettingsError,
    SmsProvider,
    load_settings,
)

STRONG_KEY = "k" * 40
PRODUCTION = {
    "TSUNAGU_MODE": "production",
    "TSUNAGU_SECRET_KEY": STRONG_KEY,
    "TSUNAGU_KEY_FILE": "/etc/tsunagu/keys.json",
    "TSUNAGU_PUBLIC_URL": "https://clinic.example.jp",
    "TSUNAGU_DATABASE_URL": "postgres://app:pw@db.internal:5432/tsunagu",
    "TSUNAGU_REDIS_URL": "redis://:cachepw@cache.internal:6379/0",
    "TSUNAGU_SMS_PROVIDER": "twilio",
    "TSUNAGU_TWILIO_ACCOUNT_SID": "AC123",
    "TSUNAGU_TWILIO_AUTH_TOKEN": "twilio-token-value",
    "TSUNAGU_TWILIO_VERIFY_SERVICE_SID": "VA123",
    "TSUNAGU_TWILIO_FROM_NUMBER": "+15005550006",
    "TSUNAGU_EMAIL_PROVIDER": "smtp",
    "TSUNAGU_SMTP_URL": "smtp://mailer:pw@mail.internal:587",
    "TSUNAGU_PAYMENT_PROVIDER": "stripe",
    "TSUNAGU_STRIPE_SECRET_KEY": "stripe-key-value",
    "TSUNAGU_STRIPE_WEBHOOK_SECRET": "stripe-webhook-value",
}


def load(tmp_path: Path, **env: str) -> object:
    return load_settings({"TSUNAGU_DATA_DIR": str(tmp_path), **env})


def test_embedded_default_needs_no_variables(tmp_path: Path) -> None:
    settings = load_settings({"TSUNAGU_DATA_DIR": str(tmp_path / "var")})
    assert settings.mode is Mode.DEVELOPMENT
    assert settings.database.backend is DatabaseBackend.SQLITE
    assert settings.database.sqlite_path == tmp_path / "var" / "tsunagu.sqlite3"
    assert settings.redis_url is None
    assert settings.job_runner is JobRunner.INPROCESS
    assert settings.sms_provider is SmsProvider.CONSOLE
    assert settings.payment_provider is PaymentProvider.CONSOLE
    assert settings.default_locale == "ja"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_development_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"TSUNAGU_DATA_DIR": str(tmp_path)})
    second = load_settings({"TSUNAGU_DATA_DIR": str(tmp_path)})
    assert len(first.secret_key.reveal()) >= 32
    assert first.secret_key.reveal() == second.secret_key.reveal()
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_scaled_deployment_uses_postgres_and_redis(tmp_path: Path) -> None:
    settings = load_settings(PRODUCTION)
    assert settings.is_production
    assert settings.database.backend is DatabaseBackend.POSTGRES
    assert settings.database.tortoise_url == "postgres://app:pw@db.internal:5432/tsunagu"
    assert settings.job_runner is JobRunner.REDIS


def test_postgresql_scheme_is_normalised_for_tortoise() -> None:
    settings = load_settings(
        {**PRODUCTION, "TSUNAGU_DATABASE_URL": "postgresql://app:pw@db:5432/tsunagu"}
    )
    assert settings.database.tortoise_url.startswith("postgres://")


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"TSUNAGU_DATABASE_URL": "mysql://u:hunter2@h/db"}, "TSUNAGU_DATABASE_URL", "sqlite://"),
        ({"TSUNAGU_DATABASE_URL": "postgres://u:p@host"}, "TSUNAGU_DATABASE_URL", "database name"),
        ({"TSUNAGU_DATABASE_URL": "sqlite://"}, "TSUNAGU_DATABASE_URL", "file path"),
        ({"TSUNAGU_DATABASE_URL": "postgres://h:notaport/db"}, "TSUNAGU_DATABASE_URL", "valid URL"),
        ({"TSUNAGU_REDIS_URL": "http://cache"}, "TSUNAGU_REDIS_URL", "redis://"),
        ({"TSUNAGU_JOB_RUNNER": "redis"}, "TSUNAGU_JOB_RUNNER", "TSUNAGU_REDIS_URL"),
        ({"TSUNAGU_JOB_RUNNER": "celery"}, "TSUNAGU_JOB_RUNNER", "inprocess, redis"),
        ({"TSUNAGU_SMS_PROVIDER": "carrier-pigeon"}, "TSUNAGU_SMS_PROVIDER", "console, twilio"),
        ({"TSUNAGU_PAYMENT_PROVIDER": "paypal"}, "TSUNAGU_PAYMENT_PROVIDER", "console, stripe"),
        ({"TSUNAGU_SMS_PROVIDER": "twilio"}, "TSUNAGU_TWILIO_ACCOUNT_SID", "required"),
        ({"TSUNAGU_PAYMENT_PROVIDER": "stripe"}, "TSUNAGU_STRIPE_SECRET_KEY", "required"),
        ({"TSUNAGU_EMAIL_PROVIDER": "smtp"}, "TSUNAGU_SMTP_URL", "required"),
        ({"TSUNAGU_PORT": "eighty"}, "TSUNAGU_PORT", "whole number"),
        ({"TSUNAGU_PORT": "70000"}, "TSUNAGU_PORT", "between 1 and 65535"),
        ({"TSUNAGU_WORKERS": "0"}, "TSUNAGU_WORKERS", "between 1 and 64"),
        ({"TSUNAGU_DEFAULT_LOCALE": "fr"}, "TSUNAGU_DEFAULT_LOCALE", "ja, en"),
        ({"TSUNAGU_TIME_ZONE": "Mars/Olympus"}, "TSUNAGU_TIME_ZONE", "unknown time zone"),
        ({"TSUNAGU_LOG_LEVEL": "chatty"}, "TSUNAGU_LOG_LEVEL", "DEBUG"),
        ({"TSUNAGU_SECRET_KEY": "short"}, "TSUNAGU_SECRET_KEY", "at least 32"),
        ({"TSUNAGU_PUBLIC_URL": "clinic.example.jp"}, "TSUNAGU_PUBLIC_URL", "http"),
        ({"TSUNAGU_DATABSE_URL": "sqlite://x"}, "TSUNAGU_DATABSE_URL", "unknown variable"),
        ({"TSUNAGU_MODE": "staging"}, "TSUNAGU_MODE", "development, production"),
    ],
)
def test_a_wrong_value_names_the_variable_and_the_reason(
    tmp_path: Path, env: dict[str, str], variable: str, words: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load(tmp_path, **env)
    assert raised.value.variable == variable
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("missing_or_changed", "variable"),
    [
        ({"TSUNAGU_SECRET_KEY": ""}, "TSUNAGU_SECRET_KEY"),
        ({"TSUNAGU_KEY_FILE": ""}, "TSUNAGU_KEY_FILE"),
        ({"TSUNAGU_PUBLIC_URL": "http://clinic.example.jp"}, "TSUNAGU_PUBLIC_URL"),
        ({"TSUNAGU_SMS_PROVIDER": "console"}, "TSUNAGU_SMS_PROVIDER"),
        ({"TSUNAGU_PAYMENT_PROVIDER": "console"}, "TSUNAGU_PAYMENT_PROVIDER"),
        ({"TSUNAGU_STRIPE_WEBHOOK_SECRET": ""}, "TSUNAGU_STRIPE_WEBHOOK_SECRET"),
        ({"TSUNAGU_TWILIO_AUTH_TOKEN": ""}, "TSUNAGU_TWILIO_AUTH_TOKEN"),
    ],
)
def test_production_refuses_missing_secrets_and_console_providers(
    missing_or_changed: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**PRODUCTION, **missing_or_changed})
    assert raised.value.variable == variable


def test_errors_never_echo_a_database_password(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load(tmp_path, TSUNAGU_DATABASE_URL="mysql://user:hunter2-secret@db/tsunagu")
    assert "hunter2-secret" not in str(raised.value)
    assert "********" in str(raised.value)


def test_described_settings_mask_every_secret() -> None:
    settings = load_settings(PRODUCTION)
    shown = "\n".join(f"{name}={value}" for name, value in settings.describe())
    for secret in (
        STRONG_KEY,
        "twilio-token-value",
        "stripe-key-value",
        "stripe-webhook-value",
        ":pw@",
    ):
        assert secret not in shown
    assert "TSUNAGU_DATABASE_URL=postgres://app:********@db.internal:5432/tsunagu" in shown
    assert "TSUNAGU_REDIS_URL=redis://:********@cache.internal:6379/0" in shown
    assert "TSUNAGU_TWILIO_ACCOUNT_SID=AC123" in shown


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings({"TSUNAGU_DATA_DIR": str(tmp_path)})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@given(st.text(min_size=1, max_size=60))
def test_secret_never_shows_in_str_or_repr(value: str) -> None:
    secret = Secret(value)
    assert value not in repr(secret) or value in "Secret('********')"
    assert str(secret) == "********"
    assert secret.reveal() == value


@given(st.text(max_size=200))
def test_any_database_url_either_loads_or_fails_with_one_line(url: str) -> None:
    environ = {"TSUNAGU_DATABASE_URL": url, "TSUNAGU_SECRET_KEY": STRONG_KEY}
    outcome: Settings | SettingsError
    try:
        outcome = load_settings(environ)
    except SettingsError as error:
        outcome = error
    if isinstance(outcome, SettingsError):
        assert outcome.variable == "TSUNAGU_DATABASE_URL"
        assert "\n" not in str(outcome)
    else:
        assert outcome.database.backend in (DatabaseBackend.SQLITE, DatabaseBackend.POSTGRES)


def test_turn_settings_build_a_working_provider(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from patient_portal.wiring import build_turn
    from video.turn import verify

    settings = load(
        tmp_path,
        TSUNAGU_TURN_PROVIDER="shared-secret",
        TSUNAGU_TURN_HOSTS="turn.clinic.example",
        TSUNAGU_TURN_SECRET="coturn-static-auth-secret",
        TSUNAGU_TURN_TRANSPORTS="tls,udp",
        TSUNAGU_TURN_TTL_SECONDS="600",
    )
    provider, twilio = build_turn(settings)  # type: ignore[arg-type]
    assert twilio is None
    now = datetime(2030, 1, 1, tzinfo=UTC)
    servers = asyncio.run(provider.credentials("patient-1", now))
    turn = [s for s in servers if s.username]
    assert turn[0].urls[0].startswith("turns:turn.clinic.example:443")  # tls first, as asked
    username, credential = turn[0].username, turn[0].credential
    assert username is not None
    assert credential is not None
    assert verify(username, credential, "coturn-static-auth-secret", now)
    assert turn[0].expires_at is not None
    assert (turn[0].expires_at - now).total_seconds() == 600


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TSUNAGU_TURN_PROVIDER": "coturn"}, "TSUNAGU_TURN_PROVIDER"),
        ({"TSUNAGU_TURN_PROVIDER": "shared-secret"}, "TSUNAGU_TURN_HOSTS"),
        (
            {"TSUNAGU_TURN_PROVIDER": "shared-secret", "TSUNAGU_TURN_HOSTS": "turn.example"},
            "TSUNAGU_TURN_SECRET",
        ),
        ({"TSUNAGU_TURN_PROVIDER": "twilio"}, "TSUNAGU_TWILIO_ACCOUNT_SID"),
        ({"TSUNAGU_TURN_TRANSPORTS": "udp,quic"}, "TSUNAGU_TURN_TRANSPORTS"),
        ({"TSUNAGU_TURN_TTL_SECONDS": "5"}, "TSUNAGU_TURN_TTL_SECONDS"),
        ({"TSUNAGU_CONSULT_JOIN_BEFORE_MINUTES": "-1"}, "TSUNAGU_CONSULT_JOIN_BEFORE_MINUTES"),
    ],
)
def test_wrong_turn_and_consult_settings_name_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load(tmp_path, **env)
    assert variable in str(error.value)
