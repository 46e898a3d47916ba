"""The ``tsunagu keys …``, ``tsunagu backup`` and ``tsunagu restore`` commands.

``register`` adds them to the ``tsunagu`` parser; each command loads settings through the callable
it is given, opens the keyring and the database, and returns an exit status. A keyring or backup
problem prints one line (``tsunagu: …``) and exits with 1; nothing printed names a patient or
shows a key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patient_portal.crypto.backup import BackupError, restore_backup, write_backup
from patient_portal.crypto.keyring import (
    Keyring,
    KeyringError,
    dump_keyring,
    keyring_for,
    use_keyring,
    with_new_active_key,
)
from patient_portal.crypto.rotation import BatchDone, key_usage, rotate
from patient_portal.db import database, migrate
from patient_portal.settings import Settings, SettingsError

EXIT_FAILED = 1
Command = Callable[[argparse.Namespace], int]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: Callable[[], Settings],
) -> None:
    """Add ``keys``, ``backup`` and ``restore`` to the ``tsunagu`` subcommands."""

    def bind(
        action: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
    ) -> Command:
        def run(args: argparse.Namespace) -> int:
            settings = load_settings()
            try:
                return asyncio.run(action(args, settings))
            except (KeyringError, BackupError) as error:
                print(f"tsunagu: {error}", file=sys.stderr)
                return EXIT_FAILED

        return run

    keys = commands.add_parser("keys", help="encryption keys: status, new, rotate")
    actions = keys.add_subparsers(title="actions", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="the active key and how many values each key holds")
    status.set_defaults(run=bind(_keys_status))
    new = actions.add_parser("new", help="add a key and make it active (old keys stay)")
    new.add_argument("key_id", metavar="KEY_ID", help="a name for the key, e.g. 2026-11")
    new.set_defaults(run=bind(_keys_new))
    rotate_ = actions.add_parser(
        "rotate", help="re-encrypt every value under the active key (resumable)"
    )
    rotate_.add_argument("--batch-size", type=int, default=200, help="rows per batch (200)")
    rotate_.set_defaults(run=bind(_keys_rotate))

    backup = commands.add_parser("backup", help="write an encrypted backup of the database")
    backup.add_argument("file", metavar="FILE", type=Path, help="the backup file to create")
    backup.set_defaults(run=bind(_backup))
    restore = commands.add_parser(
        "restore", help="restore an encrypted backup into an empty database"
    )
    restore.add_argument("file", metavar="FILE", type=Path, help="the backup file to read")
    restore.set_defaults(run=bind(_restore))


def _keyring(settings: Settings) -> Keyring:
    return keyring_for(settings.key_file, production=settings.is_production)


async def _keys_status(args: argparse.Namespace, settings: Settings) -> int:
    with use_keyring(_keyring(settings)) as keyring:
        async with database(settings, global_fallback=False):
            usage = await key_usage()
    print(f"active key: {keyring.active}")
    print(f"keys in the keyring: {', '.join(sorted(keyring.keys))}")
    if not usage:
        print("no encrypted values stored yet")
    for key_id, count in usage.items():
        marker = "" if key_id == keyring.active else "  (to rotate)"
        print(f"  {key_id}: {count} values{marker}")
    return 0


async def _keys_new(args: argparse.Namespace, settings: Settings) -> int:
    keyring = with_new_active_key(_keyring(settings), args.key_id)
    write_keyring_file(settings.key_file, keyring)
    print(f"key {keyring.active} is now active in {settings.key_file}")
    print("restart every server and worker, then run `tsunagu keys rotate`")
    return 0


def write_keyring_file(path: Path, keyring: Keyring) -> None:
    """Replace the keyring file atomically (a temporary file, then ``os.replace``), mode 0600."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise KeyringError(f"cannot write in {path.parent}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(dump_keyring(keyring) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


async def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch_size < 1:
        raise SettingsError("--batch-size", f"must be at least 1 (got {args.batch_size})")

    def progress(step: BatchDone) -> None:
        print(f"{step.column}: {step.rotated} re-encrypted", flush=True)

    with use_keyring(_keyring(settings)) as keyring:
        async with database(settings, global_fallback=False):
            report = await rotate(keyring, batch_size=args.batch_size, progress=progress)
            left = {k: n for k, n in (await key_usage()).items() if k != keyring.active}
    print(f"re-encrypted {report.total} values under key {keyring.active}")
    if left:
        # Written meanwhile by a process still on the old keyring: a second run takes them.
        print(f"{sum(left.values())} values are still on other keys; run it again")
        return EXIT_FAILED
    print("every value is on the active key")
    return 0


async def _backup(args: argparse.Namespace, settings: Settings) -> int:
    with use_keyring(_keyring(settings)) as keyring:
        async with database(settings, global_fallback=False):
            summary = await write_backup(args.file, keyring, now=datetime.now(UTC))
    rows = sum(summary.tables.values())
    print(
        f"wrote {summary.path}: {rows} rows from {len(summary.tables)} tables, "
        f"sealed with key {summary.key_id}"
    )
    return 0


async def _restore(args: argparse.Namespace, settings: Settings) -> int:
    _require_file(args.file)
    with use_keyring(_keyring(settings)) as keyring:
        await migrate(settings)
        async with database(settings, global_fallback=False):
            summary = await restore_backup(args.file, keyring)
    rows = sum(summary.tables.values())
    print(
        f"restored {rows} rows into {len(summary.tables)} tables "
        f"from the backup of {summary.created_at.isoformat(timespec='seconds')}"
    )
    return 0


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
