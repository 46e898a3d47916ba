"""``tsunagu``: the one console script. ``tsunagu --help`` lists the commands.

Settings are read from the environment once, here. A configuration error prints one line naming
the variable and exits with status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from patient_portal.settings import (
    VARIABLES,
    DatabaseBackend,
    DatabaseUrl,
    Secret,
    Settings,
    SettingsError,
    load_settings,
)

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        return command(args)
    except SettingsError as error:
        print(f"tsunagu: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsunagu",
        description="Tsunagu (つなぐ): clinic booking, questionnaires and online consults.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the portal (pages, API, websockets)")
    _add_listen_options(serve)
    serve.add_argument("--workers", type=int, help="worker processes (TSUNAGU_WORKERS)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run background jobs (reminders, deliveries)")
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    makemigrations = commands.add_parser(
        "makemigrations", help="(developers) write migrations for changed models"
    )
    makemigrations.add_argument("--name", help="a short name for the migration")
    makemigrations.add_argument(
        "--check", action="store_true", help="only report; exit 1 if a migration is missing"
    )
    makemigrations.set_defaults(run=_makemigrations)

    demo = commands.add_parser(
        "demo", help="migrate and seed a demo clinic in a SQLite file, then serve it"
    )
    _add_listen_options(demo)
    demo.add_argument(
        "--no-serve", action="store_true", help="only migrate and seed, then print the details"
    )
    demo.set_defaults(run=_demo)

    check = commands.add_parser(
        "check-config",
        help="validate the TSUNAGU_ variables and show them (secrets masked)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variables:\n"
        + "\n".join(f"  {name:<34} {text}" for name, text in VARIABLES.items()),
    )
    check.set_defaults(run=_check_config)

    # Imported here so that commands which do not need them start without loading them.
    from patient_portal.audit.commands import register as register_audit
    from patient_portal.crypto.commands import register as register_crypto

    register_crypto(commands, _settings)
    register_audit(commands, _settings)
    return parser


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (TSUNAGU_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (TSUNAGU_PORT, 8000)")


def _settings() -> Settings:
    return load_settings(os.environ)


# Libraries that log SQL with its parameters (patient data) at DEBUG: never below INFO.
QUIET_LOGGERS = ("tortoise", "tortoise.db_client", "aiosqlite", "asyncpg", "arq.jobs")
# Open event streams (the reception list) and websockets get this long to finish on shutdown;
# browsers reconnect to the next process by themselves.
SHUTDOWN_GRACE_SECONDS = 10


def configure_logging(level: str) -> None:
    """Log at ``level``, except that libraries that would log patient data stay at INFO."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    floor = max(logging.getLevelName(level), logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(floor)


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_level)


def _listen(settings: Settings, args: argparse.Namespace) -> Settings:
    changes: dict[str, object] = {}
    if args.host:
        changes["host"] = args.host
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise SettingsError("--port", f"must be between 1 and 65535 (got {args.port})")
        changes["port"] = args.port
    if getattr(args, "workers", None) is not None:
        if not 1 <= args.workers <= 64:
            raise SettingsError("--workers", f"must be between 1 and 64 (got {args.workers})")
        changes["workers"] = args.workers
    return replace(settings, **changes)  # type: ignore[arg-type]


def _serve(args: argparse.Namespace) -> int:
    settings = _listen(_settings(), args)
    _configure_logging(settings)
    _run_server(settings)
    return 0


def _run_server(settings: Settings, *, demo: bool = False) -> None:
    import uvicorn

    if settings.workers > 1:
        # Each worker process builds its own settings from the same environment.
        os.environ["TSUNAGU_HOST"] = settings.host
        os.environ["TSUNAGU_PORT"] = str(settings.port)
        uvicorn.run(
            "patient_portal.asgi:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            proxy_headers=True,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        return
    from patient_portal.app import create_app

    uvicorn.run(
        create_app(settings, demo=demo),
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


def _worker(args: argparse.Namespace) -> int:
    settings = _settings()
    _configure_logging(settings)
    from patient_portal.crypto.keyring import keyring_for, use_keyring
    from patient_portal.jobs import JobQueue, run_worker
    from patient_portal.maintenance import product_registry
    from patient_portal.waitlist_jobs import QueueHolder
    from patient_portal.wiring import build_notifier

    holder = QueueHolder()
    registry = product_registry(settings, build_notifier(settings), holder)

    def keep(queue: JobQueue) -> None:
        holder.queue = queue

    with use_keyring(keyring_for(settings.key_file, production=settings.is_production)):
        asyncio.run(run_worker(settings, registry, on_queue=keep))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    _configure_logging(settings)
    from patient_portal.db import migrate

    applied = asyncio.run(migrate(settings))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0


def _makemigrations(args: argparse.Namespace) -> int:
    settings = _settings()
    from patient_portal.db import make_migrations, pending_model_changes

    if args.check:
        pending = asyncio.run(pending_model_changes(settings))
        for name in pending:
            print(f"missing migration: {name}")
        return 1 if pending else 0
    for path in asyncio.run(make_migrations(settings, args.name)):
        print(f"wrote {path}")
    return 0


def demo_settings(settings: Settings) -> Settings:
    """The demo always runs on its own SQLite file in the data folder."""
    path = Path(settings.data_dir) / "demo.sqlite3"
    return replace(
        settings, database=DatabaseUrl(DatabaseBackend.SQLITE, Secret(f"sqlite://{path}"))
    )


def _demo(args: argparse.Namespace) -> int:
    settings = demo_settings(_listen(_settings(), args))
    _configure_logging(settings)
    from patient_portal.crypto.keyring import keyring_for, use_keyring
    from patient_portal.db import database, migrate
    from patient_portal.demo import seed_demo_clinic

    async def prepare() -> object:
        await migrate(settings)
        with use_keyring(keyring_for(settings.key_file, production=settings.is_production)):
            async with database(settings, global_fallback=False):
                return await seed_demo_clinic()

    summary = asyncio.run(prepare())
    url = f"http://{_url_host(settings.host)}:{settings.port}/"
    print(_demo_banner(summary, url))
    if not args.no_serve:
        _run_server(replace(settings, workers=1), demo=True)
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - only turning a bind address into a URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _demo_banner(summary: object, url: str) -> str:
    import pyotp

    from patient_portal.demo import (
        DEMO_PASSWORD,
        DEMO_PHONE,
        DEMO_TOTP_SECRET,
        DemoSummary,
    )
    from patient_portal.wiring import DEMO_SMS_CODE

    assert isinstance(summary, DemoSummary)  # noqa: S101 - prepare() returns one
    lines = [
        "",
        f"Tsunagu demo: {summary.clinic_name} ({summary.patient_count} demo patients)",
        f"  open {url}",
        "",
        f"  patients: {url}signin with {DEMO_PHONE} (or any mobile number to sign up);",
        f"            the SMS code is always {DEMO_SMS_CODE} in the demo",
        "",
        f"  staff: {url}staff/signin with password {DEMO_PASSWORD}",
        f"         authenticator key {DEMO_TOTP_SECRET} (add it to any TOTP app;",
        f"         code right now: {pyotp.TOTP(DEMO_TOTP_SECRET).now()})",
    ]
    lines += [f"    {s.role.value:<14} {s.login_id}  {s.name}" for s in summary.staff]
    lines += [
        "",
        "  an online consult is ready: the patient opens My appointments → the consult room,",
        "  a doctor opens it from the reception list (two browser windows: camera and microphone",
        "  work on this address)",
        "",
        "  All names, numbers and credentials are fake and exist only in this demo.",
        "  Stop with Ctrl+C; run `tsunagu demo` again at any time, it keeps your data.",
        "",
    ]
    return "\n".join(lines)


def _check_config(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ, create_dev_key=False)
    width = max(len(name) for name, _ in settings.describe())
    for name, value in settings.describe():
        print(f"{name:<{width}}  {value}")
    print("configuration is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
