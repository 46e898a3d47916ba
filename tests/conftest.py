"""Shared fixtures. Every database a test gets is real (SQLite or PostgreSQL) and its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.databases import BACKEND, REDIS_URL, DatabaseFactory, run_sync, settings_for


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    run_sync(factory.close())


@pytest.fixture
def settings(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh database with every migration applied."""
    url = run_sync(database_factory.migrated())
    yield settings_for(url, tmp_path / "var")
    run_sync(database_factory.drop(url))


@pytest.fixture
def empty_settings(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh, empty database (no tables)."""
    url = run_sync(database_factory.empty())
    yield settings_for(url, tmp_path / "var")
    run_sync(database_factory.drop(url))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Settings]:
    """Tortoise open on the test's migrated database, in the test's event loop."""
    keyring = keyring_for(settings.key_file, production=False)
    with use_keyring(keyring):
        async with database(settings):
            yield settings


@pytest.fixture
def redis_url() -> str:
    """A Redis database for tests (``TSUNAGU_TEST_REDIS_URL``, default db 15), flushed first."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


def pytest_report_header() -> str:
    return f"tsunagu test database backend: {BACKEND}"
