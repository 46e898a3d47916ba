"""The data layer's wiring: one Tortoise app per package that owns models, and its migrations.

``database(settings)`` opens Tortoise for the life of an ``async with`` block (the app lifespan, a
CLI command, a test). ``migrate(settings)`` applies every app's migrations with Tortoise's own
migration executor; it is idempotent, so an up-to-date database is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import connections
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.writer import MigrationWriter

from interview_forms.sealed import provide_sealer
from patient_portal.crypto.keyring import current_keyring
from patient_portal.settings import DatabaseBackend, Settings

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000

# app label → (model modules, migrations package). Later packages add their line here.
# Questionnaire answers are sealed with the same keyring as the portal's encrypted fields.
provide_sealer(current_keyring)

APPS: dict[str, tuple[list[str], str]] = {
    "booking": (["booking.models"], "booking.migrations"),
    "interview_forms": (["interview_forms.models"], "interview_forms.migrations"),
    "video": (["video.models"], "video.migrations"),
    "portal": (
        [
            "patient_portal.accounts.models",
            "patient_portal.auth.models",
            "patient_portal.audit.models",
            "patient_portal.jobs.models",
            "patient_portal.consult_models",
        ],
        "patient_portal.migrations",
    ),
}


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """The Tortoise configuration for ``settings`` (also used by the ``tortoise`` CLI)."""
    url = settings.database.tortoise_url
    if settings.database.backend is DatabaseBackend.SQLITE and "busy_timeout" not in url:
        # Wait for a lock (another process: a CLI command, a worker) instead of failing at once.
        url += ("&" if "?" in url else "?") + f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"
    return {
        "connections": {"default": url},
        "apps": {
            label: {
                "models": list(models),
                "default_connection": "default",
                "migrations": migrations,
            }
            for label, (models, migrations) in APPS.items()
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_folder(settings: Settings) -> None:
    path = settings.database.sqlite_path
    if settings.database.backend is DatabaseBackend.SQLITE and path and str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)


@asynccontextmanager
async def database(settings: Settings, *, global_fallback: bool = True) -> AsyncIterator[None]:
    """Open Tortoise for the block; close every connection when it ends.

    ``global_fallback`` makes the connections visible to other tasks (request handlers run in
    tasks that did not open the database). Only one such database may be open per process.
    """
    _ensure_sqlite_folder(settings)
    context = TortoiseContext()
    with context:
        await context.init(
            config=tortoise_config(settings), _enable_global_fallback=global_fallback
        )
        try:
            yield
        finally:
            await context.close_connections()


async def migrate(settings: Settings) -> list[str]:
    """Apply every pending migration; return the names applied (``app.name``), oldest first."""
    _ensure_sqlite_folder(settings)
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")
            logger.info("applied migration %s.%s", app_label, name)

    context = TortoiseContext()
    with context:
        try:
            await tortoise_migrate(config=tortoise_config(settings), progress=progress)
        finally:
            await context.close_connections()
    return applied


async def ping(seconds: float = 2.0) -> None:
    """Run ``SELECT 1`` on the default connection; raises on failure or after ``seconds``."""
    async with asyncio.timeout(seconds):
        await connections.get("default").execute_query("SELECT 1")


async def _model_changes(settings: Settings) -> list[MigrationWriter]:
    config = tortoise_config(settings)
    async with TortoiseContext() as context:
        await context.init(config=config, init_connections=False)
        assert context.apps is not None  # noqa: S101 - init() just built them
        return await MigrationAutodetector(context.apps, config["apps"]).changes()


async def pending_model_changes(settings: Settings) -> list[str]:
    """Names of the migrations the models would need that do not exist yet (empty: no drift)."""
    return [f"{writer.app_label}.{writer.name}" for writer in await _model_changes(settings)]


async def make_migrations(settings: Settings, name: str | None = None) -> list[Path]:
    """Write a migration for every app whose models changed; return the files written."""
    paths: list[Path] = []
    for writer in await _model_changes(settings):
        if name:
            number = writer.name.split("_", 1)[0]
            writer.name = f"{number}_{name}"
        paths.append(writer.write())
    return paths
