"""Migrations: an empty and an up-to-date database both migrate, and the models never drift."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections

from patient_portal.db import database, migrate, pending_model_changes
from patient_portal.settings import DatabaseBackend, Settings
from tests.support.databases import DatabaseFactory, settings_for

EXPECTED_TABLES = {"booking_clinic", "portal_staff_member", "portal_patient", "portal_job"}


async def test_an_empty_database_migrates_and_a_second_run_changes_nothing(
    empty_settings: Settings,
) -> None:
    first = await migrate(empty_settings)
    assert "booking.0001_initial" in first
    assert "portal.0001_initial" in first
    assert await migrate(empty_settings) == []
    async with database(empty_settings, global_fallback=False):
        assert set((await _schema(empty_settings)).keys()) >= EXPECTED_TABLES


async def test_models_and_migrations_agree() -> None:
    """No model change is waiting for a migration (``tsunagu makemigrations --check``)."""
    assert await pending_model_changes(Settings()) == []


async def test_migrated_schema_is_exactly_the_schema_the_models_describe(
    empty_settings: Settings, database_factory: DatabaseFactory, tmp_path: Any
) -> None:
    await migrate(empty_settings)
    async with database(empty_settings, global_fallback=False):
        migrated = await _schema(empty_settings)

    generated_url = await database_factory.empty()
    generated_settings = settings_for(generated_url, tmp_path / "generated")
    try:
        async with database(generated_settings, global_fallback=False):
            await Tortoise.generate_schemas(safe=False)
            generated = await _schema(generated_settings)
    finally:
        await database_factory.drop(generated_url)

    migrated.pop("tortoise_migrations", None)
    assert set(generated) >= EXPECTED_TABLES
    assert migrated == generated


async def _schema(settings: Settings) -> dict[str, Any]:
    """table → sorted (column, type, nullable) rows plus its index and constraint definitions."""
    conn = connections.get("default")
    if settings.database.backend is DatabaseBackend.SQLITE:
        _, tables = await conn.execute_query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        schema: dict[str, Any] = {}
        for row in tables:
            table = row["name"]
            _, columns = await conn.execute_query(f"PRAGMA table_info('{table}')")
            _, indexes = await conn.execute_query(f"PRAGMA index_list('{table}')")
            index_defs = []
            for index in indexes:
                _, cols = await conn.execute_query(f"PRAGMA index_info('{index['name']}')")
                index_defs.append(
                    (bool(index["unique"]), tuple(c["name"] for c in cols), index["origin"])
                )
            _, fks = await conn.execute_query(f"PRAGMA foreign_key_list('{table}')")
            schema[table] = {
                "columns": sorted(
                    (c["name"], c["type"].upper(), bool(c["notnull"]), bool(c["pk"]))
                    for c in columns
                ),
                "indexes": sorted(index_defs),
                "foreign_keys": sorted(
                    (fk["from"], fk["table"], fk["to"], fk["on_delete"]) for fk in fks
                ),
            }
        return schema
    _, columns = await conn.execute_query(
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public'"
    )
    schema = {}
    for c in columns:
        schema.setdefault(c["table_name"], {"columns": [], "indexes": [], "constraints": []})
        schema[c["table_name"]]["columns"].append(
            (c["column_name"], c["data_type"], c["is_nullable"], c["column_default"])
        )
    _, indexes = await conn.execute_query(
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    )
    for i in indexes:
        if i["tablename"] in schema:
            # Index names may differ in generated suffixes; compare their definitions.
            definition = i["indexdef"].split(" ON ", 1)[1]
            schema[i["tablename"]]["indexes"].append(("UNIQUE" in i["indexdef"], definition))
    _, constraints = await conn.execute_query(
        "SELECT conrelid::regclass::text AS table_name, contype, pg_get_constraintdef(oid) AS def "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    )
    for c in constraints:
        if c["table_name"] in schema:
            schema[c["table_name"]]["constraints"].append((c["contype"], c["def"]))
    for table in schema.values():
        for key in table:
            table[key] = sorted(table[key], key=repr)
    return schema
