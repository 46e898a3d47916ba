"""Settings: built once from the environment (prefix ``TSUNAGU_``) into a frozen value.

Nothing else in Tsunagu reads the environment. ``load_settings`` either returns a complete,
validated :class:`Settings` or raises :class:`SettingsError` whose message is one line naming the
variable and what is wrong with it — the CLI prints that line and exits, never a traceback.

With no variables set, the result is the *embedded default*: a SQLite file under ``var/``,
in-process jobs and pub/sub, and console providers for SMS, e-mail and payments.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "TSUNAGU_"
_E = TypeVar("_E", bound=StrEnum)


class SettingsError(ValueError):
    """A configuration value is missing or wrong. ``str(error)`` is one line for the operator."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must never be printed. ``str()`` and ``repr()`` mask it."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself: pass it to the library that needs it, never to a log or a page."""
        return self._value

    def __str__(self) -> str:
        return "********" if self._value else ""

    def __repr__(self) -> str:
        return "Secret('********')"

    def __bool__(self) -> bool:
        return bool(self._value)


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SmsProvider(StrEnum):
    CONSOLE = "console"
    TWILIO = "twilio"


class EmailProvider(StrEnum):
    CONSOLE = "console"
    SMTP = "smtp"


class PaymentProvider(StrEnum):
    CONSOLE = "console"
    STRIPE = "stripe"


class JobRunner(StrEnum):
    INPROCESS = "inprocess"
    REDIS = "redis"


class DatabaseBackend(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A database address. ``tortoise_url`` is what Tortoise needs; ``str()`` hides the password."""

    backend: DatabaseBackend
    _url: Secret

    @property
    def tortoise_url(self) -> str:
        return self._url.reveal()

    @property
    def sqlite_path(self) -> Path | None:
        if self.backend is not DatabaseBackend.SQLITE:
            return None
        return Path(self._url.reveal().removeprefix("sqlite://"))

    def __str__(self) -> str:
        return _mask_url_password(self._url.reveal())


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting Tsunagu has. Frozen: build a new one (``dataclasses.replace``) to change it."""

    mode: Mode = Mode.DEVELOPMENT
    data_dir: Path = Path("var")
    database: DatabaseUrl = field(
        default_factory=lambda: DatabaseUrl(
            DatabaseBackend.SQLITE, Secret("sqlite://var/tsunagu.sqlite3")
        )
    )
    redis_url: Secret | None = None
    job_runner: JobRunner = JobRunner.INPROCESS
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    key_file: Path = Path("var/keys.json")
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    default_locale: str = "ja"
    time_zone: str = "Asia/Tokyo"
    log_level: str = "INFO"
    audit_retention_days: int = 2557
    sms_provider: SmsProvider = SmsProvider.CONSOLE
    email_provider: EmailProvider = EmailProvider.CONSOLE
    payment_provider: PaymentProvider = PaymentProvider.CONSOLE
    twilio_account_sid: str = ""
    twilio_auth_token: Secret = field(default_factory=lambda: Secret(""))
    twilio_verify_service_sid: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    smtp_url: Secret = field(default_factory=lambda: Secret(""))
    email_from: str = "Tsunagu <no-reply@localhost>"
    stripe_secret_key: Secret = field(default_factory=lambda: Secret(""))
    stripe_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    turn_provider: str = "none"  # none | shared-secret | twilio (video.turn.TurnProviderKind)
    turn_hosts: tuple[str, ...] = ()
    turn_secret: Secret = field(default_factory=lambda: Secret(""))
    turn_port: int = 3478
    turn_tls_port: int = 443
    turn_transports: tuple[str, ...] = ("udp", "tcp", "tls")
    turn_stun_urls: tuple[str, ...] = ()
    turn_ttl_seconds: int = 3600
    hold_minutes: int = 10  # how long a chosen time is kept while the patient completes the steps
    ice_host_addresses: tuple[str, ...] = ()  # empty: discover the machine's own addresses
    consult_join_before_minutes: int = 15
    consult_join_after_minutes: int = 60
    recordings_dir: Path | None = None  # sealed consult recordings; None: <data dir>/recordings
    recording_max_minutes: int = 120  # one recording segment stops by itself after this

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def is_production(self) -> bool:
        return self.mode is Mode.PRODUCTION

    def describe(self) -> list[tuple[str, str]]:
        """(variable, value) pairs for ``tsunagu check-config``; secrets come out masked."""
        rows: list[tuple[str, str]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                shown = ""
            elif f.name == "redis_url":
                shown = _mask_url_password(value.reveal())
            else:
                shown = str(value)
            name = "DATABASE_URL" if f.name == "database" else f.name.upper()
            rows.append((PREFIX + name, shown))
        return rows


# One entry per variable: the documentation the README and ``check-config --help`` share.
VARIABLES: dict[str, str] = {
    "TSUNAGU_MODE": "development (default) or production; production refuses missing secrets",
    "TSUNAGU_DATA_DIR": "folder for the SQLite file, the development secret key and uploads (var)",
    "TSUNAGU_DATABASE_URL": "sqlite://PATH (default var/tsunagu.sqlite3) or postgres://USER:PASS@HOST:PORT/DB",
    "TSUNAGU_REDIS_URL": "redis://HOST:PORT/DB; when set, jobs, pub/sub and rate limits use Redis",
    "TSUNAGU_JOB_RUNNER": "inprocess or redis (default: redis when TSUNAGU_REDIS_URL is set)",
    "TSUNAGU_SECRET_KEY": "32+ characters; required in production (development: kept in DATA_DIR)",
    "TSUNAGU_KEY_FILE": "keyring file (encryption at rest); required in production",
    "TSUNAGU_PUBLIC_URL": "the address patients use, for links in messages; https in production",
    "TSUNAGU_HOST": "address `serve` listens on (127.0.0.1)",
    "TSUNAGU_PORT": "port `serve` listens on (8000)",
    "TSUNAGU_WORKERS": "number of `serve` worker processes (1)",
    "TSUNAGU_DEFAULT_LOCALE": "ja (default) or en",
    "TSUNAGU_TIME_ZONE": "IANA zone clinics are in by default (Asia/Tokyo)",
    "TSUNAGU_LOG_LEVEL": "DEBUG, INFO (default), WARNING or ERROR",
    "TSUNAGU_AUDIT_RETENTION_DAYS": "days the audit log keeps entries (2557, seven years)",
    "TSUNAGU_SMS_PROVIDER": "console (default) or twilio",
    "TSUNAGU_EMAIL_PROVIDER": "console (default) or smtp",
    "TSUNAGU_PAYMENT_PROVIDER": "console (default) or stripe",
    "TSUNAGU_TWILIO_ACCOUNT_SID": "required with the twilio SMS provider",
    "TSUNAGU_TWILIO_AUTH_TOKEN": "secret; required with the twilio SMS provider",
    "TSUNAGU_TWILIO_VERIFY_SERVICE_SID": "required with the twilio SMS provider",
    "TSUNAGU_TWILIO_FROM_NUMBER": "sender of booking SMS (or TSUNAGU_TWILIO_MESSAGING_SERVICE_SID)",
    "TSUNAGU_TWILIO_MESSAGING_SERVICE_SID": "Twilio Messaging Service that sends booking SMS",
    "TSUNAGU_SMTP_URL": "secret; smtp://USER:PASS@HOST:PORT, required with the smtp provider",
    "TSUNAGU_EMAIL_FROM": "sender address of e-mail",
    "TSUNAGU_STRIPE_SECRET_KEY": "secret; required with the stripe payment provider",
    "TSUNAGU_STRIPE_WEBHOOK_SECRET": "secret; required with the stripe payment provider",
    "TSUNAGU_TURN_PROVIDER": "none (default, direct connections), shared-secret (coturn) or twilio",
    "TSUNAGU_TURN_HOSTS": "coturn host names, comma-separated (required with shared-secret)",
    "TSUNAGU_TURN_SECRET": "secret; coturn's static-auth-secret (required with shared-secret)",
    "TSUNAGU_TURN_PORT": "TURN port over UDP and TCP (3478)",
    "TSUNAGU_TURN_TLS_PORT": "TURN-over-TLS port (443: what hospital networks let through)",
    "TSUNAGU_TURN_TRANSPORTS": "TURN transports in order (udp,tcp,tls; tls first for hospitals)",
    "TSUNAGU_TURN_STUN_URLS": "STUN URLs, comma-separated (shared-secret: coturn's own)",
    "TSUNAGU_TURN_TTL_SECONDS": "lifetime of each participant's TURN credentials (3600)",
    "TSUNAGU_HOLD_MINUTES": "how long a chosen time is kept while the patient books (10)",
    "TSUNAGU_ICE_HOST_ADDRESSES": "addresses the server's WebRTC peer uses (default: discovered)",
    "TSUNAGU_CONSULT_JOIN_BEFORE_MINUTES": "how early a consult room opens before the start (15)",
    "TSUNAGU_CONSULT_JOIN_AFTER_MINUTES": "how long after the start it can still be joined (60)",
}

LOCALES = ("ja", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_KEY_LENGTH = 32


def load_settings(environ: Mapping[str, str], *, create_dev_key: bool = True) -> Settings:
    """Build :class:`Settings` from ``environ`` (pass ``os.environ`` at the composition root).

    Raises :class:`SettingsError` for the first wrong value. Unknown ``TSUNAGU_`` variables are
    errors too: a typo must not silently fall back to a default. In development, a missing secret
    key is generated once and kept in ``DATA_DIR/secret_key`` unless ``create_dev_key`` is false.
    """
    env = {k: v for k, v in environ.items() if k.startswith(PREFIX)}
    for name in env:
        if name not in VARIABLES and not name.startswith("TSUNAGU_TEST_"):
            raise SettingsError(name, "unknown variable (see `tsunagu check-config --help`)")

    def get(name: str, default: str = "") -> str:
        return env.get(PREFIX + name, default).strip()

    mode = _choice("TSUNAGU_MODE", get("MODE", "development"), Mode)
    data_dir = Path(get("DATA_DIR", "var") or "var")
    database = _database_url(get("DATABASE_URL") or f"sqlite://{data_dir / 'tsunagu.sqlite3'}")

    redis_raw = get("REDIS_URL")
    redis_url = _redis_url(redis_raw) if redis_raw else None
    default_runner = JobRunner.REDIS if redis_url else JobRunner.INPROCESS
    job_runner = _choice("TSUNAGU_JOB_RUNNER", get("JOB_RUNNER", default_runner.value), JobRunner)
    if job_runner is JobRunner.REDIS and redis_url is None:
        raise SettingsError("TSUNAGU_JOB_RUNNER", "redis needs TSUNAGU_REDIS_URL to be set")

    is_production = mode is Mode.PRODUCTION
    secret_key = Secret(get("SECRET_KEY"))
    if secret_key and len(secret_key.reveal()) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError(
            "TSUNAGU_SECRET_KEY", f"must be at least {MIN_SECRET_KEY_LENGTH} characters long"
        )
    if not secret_key:
        if is_production:
            raise SettingsError("TSUNAGU_SECRET_KEY", "is required in production mode")
        if create_dev_key:
            secret_key = Secret(_development_secret_key(data_dir))

    key_file_raw = get("KEY_FILE")
    if is_production and not key_file_raw:
        raise SettingsError(
            "TSUNAGU_KEY_FILE", "is required in production mode (keep it outside the database)"
        )
    key_file = Path(key_file_raw) if key_file_raw else data_dir / "keys.json"

    public_url = _http_url("TSUNAGU_PUBLIC_URL", get("PUBLIC_URL", "http://127.0.0.1:8000"))
    if is_production and not public_url.startswith("https://"):
        raise SettingsError("TSUNAGU_PUBLIC_URL", "must be an https:// address in production mode")

    sms = _choice("TSUNAGU_SMS_PROVIDER", get("SMS_PROVIDER", "console"), SmsProvider)
    email = _choice("TSUNAGU_EMAIL_PROVIDER", get("EMAIL_PROVIDER", "console"), EmailProvider)
    payment = _choice(
        "TSUNAGU_PAYMENT_PROVIDER", get("PAYMENT_PROVIDER", "console"), PaymentProvider
    )
    if is_production:
        for variable, provider in (
            ("TSUNAGU_SMS_PROVIDER", sms.value),
            ("TSUNAGU_EMAIL_PROVIDER", email.value),
            ("TSUNAGU_PAYMENT_PROVIDER", payment.value),
        ):
            if provider == "console":
                raise SettingsError(variable, "the console provider is not allowed in production")
    required: list[str] = []
    if sms is SmsProvider.TWILIO:
        required += ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_VERIFY_SERVICE_SID"]
    if email is EmailProvider.SMTP:
        required += ["SMTP_URL"]
    if payment is PaymentProvider.STRIPE:
        required += ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]
    for name in required:
        if not get(name):
            raise SettingsError(PREFIX + name, "is required by the selected provider")
    if sms is SmsProvider.TWILIO and not (
        get("TWILIO_FROM_NUMBER") or get("TWILIO_MESSAGING_SERVICE_SID")
    ):
        raise SettingsError(
            "TSUNAGU_TWILIO_FROM_NUMBER",
            "twilio needs a sender: set it or TSUNAGU_TWILIO_MESSAGING_SERVICE_SID",
        )

    turn_provider = _one_of(
        "TSUNAGU_TURN_PROVIDER",
        get("TURN_PROVIDER", "none").lower(),
        ("none", "shared-secret", "twilio"),
    )
    turn_hosts = _list(get("TURN_HOSTS"))
    turn_transports = _list(get("TURN_TRANSPORTS", "udp,tcp,tls").lower())
    for transport in turn_transports:
        _one_of("TSUNAGU_TURN_TRANSPORTS", transport, ("udp", "tcp", "tls"))
    if turn_provider == "shared-secret":
        if not turn_hosts:
            raise SettingsError("TSUNAGU_TURN_HOSTS", "is required with the shared-secret TURN")
        if not get("TURN_SECRET"):
            raise SettingsError("TSUNAGU_TURN_SECRET", "is required with the shared-secret TURN")
    if turn_provider == "twilio":
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            if not get(name):
                raise SettingsError(PREFIX + name, "is required by the twilio TURN provider")

    return Settings(
        mode=mode,
        data_dir=data_dir,
        database=database,
        redis_url=redis_url,
        job_runner=job_runner,
        secret_key=secret_key,
        key_file=key_file,
        public_url=public_url,
        host=get("HOST", "127.0.0.1") or "127.0.0.1",
        port=_int("TSUNAGU_PORT", get("PORT", "8000"), 1, 65535),
        workers=_int("TSUNAGU_WORKERS", get("WORKERS", "1"), 1, 64),
        default_locale=_one_of("TSUNAGU_DEFAULT_LOCALE", get("DEFAULT_LOCALE", "ja"), LOCALES),
        time_zone=_time_zone(get("TIME_ZONE", "Asia/Tokyo")),
        log_level=_one_of("TSUNAGU_LOG_LEVEL", get("LOG_LEVEL", "INFO").upper(), LOG_LEVELS),
        audit_retention_days=_int(
            "TSUNAGU_AUDIT_RETENTION_DAYS", get("AUDIT_RETENTION_DAYS", "2557"), 365, 36500
        ),
        sms_provider=sms,
        email_provider=email,
        payment_provider=payment,
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=Secret(get("TWILIO_AUTH_TOKEN")),
        twilio_verify_service_sid=get("TWILIO_VERIFY_SERVICE_SID"),
        twilio_from_number=get("TWILIO_FROM_NUMBER"),
        twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID"),
        smtp_url=Secret(get("SMTP_URL")),
        email_from=get("EMAIL_FROM", "Tsunagu <no-reply@localhost>"),
        stripe_secret_key=Secret(get("STRIPE_SECRET_KEY")),
        stripe_webhook_secret=Secret(get("STRIPE_WEBHOOK_SECRET")),
        turn_provider=turn_provider,
        turn_hosts=turn_hosts,
        turn_secret=Secret(get("TURN_SECRET")),
        turn_port=_int("TSUNAGU_TURN_PORT", get("TURN_PORT", "3478"), 1, 65535),
        turn_tls_port=_int("TSUNAGU_TURN_TLS_PORT", get("TURN_TLS_PORT", "443"), 1, 65535),
        turn_transports=turn_transports or ("udp", "tcp", "tls"),
        turn_stun_urls=_list(get("TURN_STUN_URLS")),
        turn_ttl_seconds=_int(
            "TSUNAGU_TURN_TTL_SECONDS", get("TURN_TTL_SECONDS", "3600"), 60, 86400
        ),
        hold_minutes=_int("TSUNAGU_HOLD_MINUTES", get("HOLD_MINUTES", "10"), 2, 60),
        ice_host_addresses=_addresses(get("ICE_HOST_ADDRESSES")),
        consult_join_before_minutes=_int(
            "TSUNAGU_CONSULT_JOIN_BEFORE_MINUTES", get("CONSULT_JOIN_BEFORE_MINUTES", "15"), 0, 240
        ),
        consult_join_after_minutes=_int(
            "TSUNAGU_CONSULT_JOIN_AFTER_MINUTES", get("CONSULT_JOIN_AFTER_MINUTES", "60"), 0, 480
        ),
        recordings_dir=Path(raw_recordings) if (raw_recordings := get("RECORDINGS_DIR")) else None,
        recording_max_minutes=_int(
            "TSUNAGU_RECORDING_MAX_MINUTES", get("RECORDING_MAX_MINUTES", "120"), 1, 600
        ),
    )


def _choice(variable: str, raw: str, enum: type[_E]) -> _E:
    try:
        return enum(raw.lower())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise SettingsError(variable, f"must be one of {allowed} (got {raw!r})") from None


def _addresses(raw: str) -> tuple[str, ...]:
    import ipaddress

    found = _list(raw)
    for address in found:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SettingsError(
                "TSUNAGU_ICE_HOST_ADDRESSES", f"not an IP address: {address!r}"
            ) from None
    return found


def _list(raw: str) -> tuple[str, ...]:
    """A comma-separated value as its non-empty parts."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _one_of(variable: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise SettingsError(variable, f"must be one of {', '.join(allowed)} (got {raw!r})")
    return raw


def _int(variable: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(variable, f"must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise SettingsError(variable, f"must be between {low} and {high} (got {value})")
    return value


def _time_zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            "TSUNAGU_TIME_ZONE", f"unknown time zone {raw!r} (use e.g. Asia/Tokyo)"
        ) from None
    return raw


def _split(variable: str, raw: str) -> SplitResult:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingsError(variable, f"is not a valid URL ({_mask_url_password(raw)})") from None
    return parts


def _database_url(raw: str) -> DatabaseUrl:
    variable = "TSUNAGU_DATABASE_URL"
    parts = _split(variable, raw)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = raw[len("sqlite://") :]
        if not path:
            raise SettingsError(
                variable, "sqlite:// needs a file path, e.g. sqlite://var/db.sqlite3"
            )
        return DatabaseUrl(DatabaseBackend.SQLITE, Secret(raw))
    if scheme in ("postgres", "postgresql"):
        if not parts.hostname or not parts.path.strip("/"):
            raise SettingsError(
                variable,
                "postgres:// needs a host and a database name, e.g. postgres://u:p@host/db",
            )
        # Tortoise chooses asyncpg for the postgres scheme.
        normalised = urlunsplit(("postgres", parts.netloc, parts.path, parts.query, ""))
        return DatabaseUrl(DatabaseBackend.POSTGRES, Secret(normalised))
    raise SettingsError(
        variable,
        f"must start with sqlite:// or postgres:// (got {_mask_url_password(raw)!r})",
    )


def _redis_url(raw: str) -> Secret:
    parts = _split("TSUNAGU_REDIS_URL", raw)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise SettingsError(
            "TSUNAGU_REDIS_URL",
            f"must look like redis://HOST:PORT/DB (got {_mask_url_password(raw)!r})",
        )
    return Secret(raw)


def _http_url(variable: str, raw: str) -> str:
    parts = _split(variable, raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(variable, f"must be an http:// or https:// address (got {raw!r})")
    return raw.rstrip("/")


def _mask_url_password(raw: str) -> str:
    try:
        parts = urlsplit(raw)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if not password:
        return raw
    netloc = parts.netloc.replace(f":{password}@", ":********@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _development_secret_key(data_dir: Path) -> str:
    """Generate the development key once and keep it, so sessions survive a restart."""
    path = data_dir / SECRET_KEY_FILE
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise SettingsError("TSUNAGU_DATA_DIR", f"cannot read {path}: {exc.strerror}") from None
    if len(existing) >= MIN_SECRET_KEY_LENGTH:
        return existing
    key = secrets.token_urlsafe(48)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(key + "\n", encoding="ascii")
        path.chmod(0o600)
    except OSError as exc:
        raise SettingsError("TSUNAGU_DATA_DIR", f"cannot write {path}: {exc.strerror}") from None
    return key
