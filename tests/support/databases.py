"""Fresh, migrated databases for tests, on the backend chosen by ``TSUNAGU_TEST_DATABASE``.

``sqlite`` (default): a migrated template file is copied for each test.
``postgres``: a migrated template database is cloned (``CREATE DATABASE … TEMPLATE``) for each
test, using ``TSUNAGU_TEST_POSTGRES_URL`` (a role allowed to create databases).
Each backend runs in its own pytest process: Tortoise cannot switch dialects inside one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from patient_portal.db import migrate
from patient_portal.settings import DatabaseBackend, DatabaseUrl, Secret, Settings

BACKEND = os.environ.get("TSUNAGU_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "TSUNAGU_TEST_POSTGRES_URL", "postgres://tsunagu:tsunagu-test-only@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
REDIS_URL = os.environ.get("TSUNAGU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


def settings_for(database_url: str, data_dir: Path) -> Settings:
    backend = (
        DatabaseBackend.POSTGRES if database_url.startswith("postgres") else DatabaseBackend.SQLITE
    )
    return replace(
        Settings(),
        data_dir=data_dir,
        key_file=data_dir / "keys.json",
        database=DatabaseUrl(backend, Secret(database_url)),
        secret_key=Secret("t" * 48),
        ice_host_addresses=("127.0.0.1",),  # the server's WebRTC peer stays on loopback
    )


class DatabaseFactory:
    """Makes databases for one test session; ``close()`` drops what it made."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.backend = BACKEND
        self._template: str | None = None
        self._made: list[str] = []
        self._prefix = f"tsunagu_t_{uuid.uuid4().hex[:8]}"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(POSTGRES_URL, timeout=10)

    async def empty(self) -> str:
        """The URL of a new, empty database."""
        if self.backend == "sqlite":
            path = self.workdir / f"{uuid.uuid4().hex}.sqlite3"
            return f"sqlite://{path}"
        name = f"{self._prefix}_{len(self._made)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._made.append(name)
        return _with_database(POSTGRES_URL, name)

    async def migrated(self) -> str:
        """The URL of a new database with every migration applied."""
        if self._template is None:
            self._template = await self.empty()
            await migrate(settings_for(self._template, self.workdir))
        if self.backend == "sqlite":
            source = Path(self._template.removeprefix("sqlite://"))
            target = self.workdir / f"{uuid.uuid4().hex}.sqlite3"
            shutil.copyfile(source, target)
            return f"sqlite://{target}"
        template_name = urlsplit(self._template).path.strip("/")
        name = f"{self._prefix}_{len(self._made)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        finally:
            await conn.close()
        self._made.append(name)
        return _with_database(POSTGRES_URL, name)

    async def drop(self, url: str) -> None:
        if self.backend == "sqlite":
            Path(url.removeprefix("sqlite://")).unlink(missing_ok=True)  # noqa: ASYNC240
            return
        name = urlsplit(url).path.strip("/")
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        if name in self._made:
            self._made.remove(name)

    async def close(self) -> None:
        if self.backend != "postgres":
            return
        conn = await self._admin()
        try:
            for name in reversed(self._made):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._made.clear()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, even where a loop is running already
    (Playwright's sync API keeps one on the main thread): it gets a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
