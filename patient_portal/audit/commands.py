"""``tsunagu audit verify | export | purge``: the audit log from the command line.

``verify`` exits 0 with ``audit log intact: N entries``, or 1 with one line per problem.
``export`` writes one clinic's entries as CSV to stdout and records the export in the log.
``purge`` removes entries older than the retention period (seven years unless given) and records
that it did.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from patient_portal.audit.models import Outcome
from patient_portal.audit.service import (
    EXPORT_ACTION,
    PURGE_ACTION,
    RETENTION_DEFAULT,
    AuditEvent,
    AuditLog,
)
from patient_portal.db import database
from patient_portal.settings import Settings

Command = Callable[[argparse.Namespace], int]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: Callable[[], Settings],
) -> None:
    """Add ``audit`` and its subcommands to ``commands``; settings are loaded when one runs."""
    audit = commands.add_parser("audit", help="verify, export or purge the audit log")
    actions = audit.add_subparsers(title="audit commands", required=True, metavar="ACTION")

    verify = actions.add_parser(
        "verify", help="check the hash chain; name each changed, deleted or reordered entry"
    )
    verify.set_defaults(run=_command(load_settings, _verify))

    export = actions.add_parser(
        "export", help="write one clinic's entries as CSV to stdout (the export is audited)"
    )
    export.add_argument(
        "--clinic", required=True, type=_clinic_id, metavar="ID", help="the clinic's id"
    )
    export.add_argument(
        "--since", type=_day, metavar="DATE", help="from the start of this day (YYYY-MM-DD, UTC)"
    )
    export.add_argument(
        "--until", type=_day, metavar="DATE", help="through the end of this day (YYYY-MM-DD, UTC)"
    )
    export.set_defaults(run=_command(load_settings, _export))

    purge = actions.add_parser("purge", help="delete entries older than the retention period")
    purge.add_argument(
        "--older-than-days",
        type=_positive_days,
        default=RETENTION_DEFAULT.days,
        metavar="N",
        help=f"retention in days (default {RETENTION_DEFAULT.days})",
    )
    purge.set_defaults(run=_command(load_settings, _purge))


def _command(
    load_settings: Callable[[], Settings],
    body: Callable[[argparse.Namespace, AuditLog], Awaitable[int]],
) -> Command:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings()

        async def main() -> int:
            async with database(settings, global_fallback=False):
                return await body(args, AuditLog())

        return asyncio.run(main())

    return run


async def _verify(args: argparse.Namespace, log: AuditLog) -> int:
    report = await log.verify()
    if report.ok:
        print(f"audit log intact: {report.entries} entries")
        return 0
    for problem in report.problems:
        print(problem.message)
    return 1


async def _export(args: argparse.Namespace, log: AuditLog) -> int:
    since: datetime | None = args.since
    until: datetime | None = None if args.until is None else args.until + timedelta(days=1)
    rows = -1  # the header is not a row
    outcome = Outcome.FAILURE
    try:
        async for line in log.export_csv(clinic_id=args.clinic, since=since, until=until):
            sys.stdout.write(line)
            rows += 1
        sys.stdout.flush()
        outcome = Outcome.SUCCESS
    finally:
        detail: dict[str, object] = {"rows": max(rows, 0), "via": "cli", **_os_user()}
        if args.since is not None:
            detail["since"] = args.since.date().isoformat()
        if args.until is not None:
            detail["until"] = args.until.date().isoformat()
        event = AuditEvent(
            action=EXPORT_ACTION,
            outcome=outcome,
            actor_kind="system",
            clinic_id=args.clinic,
            target_kind="audit_log",
            detail=detail,
        )
        await log.record(event, now=datetime.now(UTC))
    return 0


async def _purge(args: argparse.Namespace, log: AuditLog) -> int:
    days: int = args.older_than_days
    now = datetime.now(UTC)
    try:
        deleted = await log.purge_before(now - timedelta(days=days))
    except LookupError as error:
        print(f"tsunagu: audit purge stopped: {error}", file=sys.stderr)
        return 1
    event = AuditEvent(
        action=PURGE_ACTION,
        outcome=Outcome.SUCCESS,
        actor_kind="system",
        target_kind="audit_log",
        detail={"deleted": deleted, "older_than_days": days, "via": "cli", **_os_user()},
    )
    await log.record(event, now=now)
    print(f"purged {deleted} audit entries older than {days} days")
    return 0


def _os_user() -> dict[str, object]:
    """Who ran the command, as far as the operating system says (not always known)."""
    try:
        return {"os_user": getpass.getuser()[:64]}
    except (OSError, KeyError):
        return {}


def _day(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _clinic_id(text: str) -> str:
    if not text or len(text) > 36:
        raise argparse.ArgumentTypeError("a clinic id is 1 to 36 characters")
    return text


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError("must be at least 1 day")
    return days
