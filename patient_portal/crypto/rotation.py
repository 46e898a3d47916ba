"""Key rotation: re-encrypt every encrypted column under the keyring's active key.

``rotate`` walks each encrypted column (found with :func:`encrypted_fields` over the models of the
open Tortoise apps) in primary-key order, in batches, with raw SQL on the default connection —
model filters would pass the old ciphertext through ``to_db_value``. Only rows whose value is not
already on the active key are selected, so a run that was interrupted simply starts again where
the work is left. Each row is written with ``UPDATE … WHERE pk = ? AND column = <old value>``: a
value changed by a concurrent write is never overwritten (it was written with the active key
anyway). A value that is not a ciphertext at all (data from before encryption) is sealed too.

The caller must have Tortoise open and pass the keyring in use; nothing is logged but counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from patient_portal.crypto.fields import CIPHERTEXT, encrypted_fields
from patient_portal.crypto.keyring import VERSION, Keyring, KeyringError

# The name ``key_usage`` counts values under that are not ciphertexts (key ids cannot contain
# parentheses, so it never collides with one).
PLAINTEXT: Final = "(plaintext)"


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """One encrypted column: where it is and the context its values are authenticated with."""

    table: str
    column: str
    pk_column: str
    context: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True, slots=True)
class BatchDone:
    """Reported to ``progress`` after each batch: ``rotated`` so far in ``column``."""

    column: str
    rotated: int


@dataclass(slots=True)
class RotationReport:
    """``complete`` is false when ``max_batches`` stopped the run; run it again to finish.
    ``skipped`` counts rows a concurrent write changed between read and update."""

    rotated: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    batches: int = 0
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted column of every model in the open Tortoise apps."""
    apps = Tortoise.apps
    if apps is None:
        raise KeyringError("the database is not open")
    models: list[type[Model]] = sorted(
        apps.get_models_iterable(), key=lambda model: model._meta.db_table
    )
    found: list[EncryptedColumn] = []
    for model, attribute, column in encrypted_fields(models):
        encrypted: Any = model._meta.fields_map[attribute]
        found.append(
            EncryptedColumn(
                table=model._meta.db_table,
                column=column,
                pk_column=model._meta.db_pk_column,
                context=encrypted._context(),
            )
        )
    return found


def placeholders(connection: BaseDBAsyncClient) -> Callable[[int], str]:
    """The parameter placeholder for position ``n`` (1-based): ``$n`` on PostgreSQL, else ``?``."""
    if connection.capabilities.dialect == "postgres":
        return lambda n: f"${n}"
    return lambda n: "?"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def rotate(
    keyring: Keyring,
    *,
    batch_size: int = 200,
    max_batches: int | None = None,
    progress: Callable[[BatchDone], None] | None = None,
) -> RotationReport:
    """Re-encrypt every value not on ``keyring.active``; at most ``max_batches`` batches."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    connection = connections.get("default")
    p = placeholders(connection)
    prefix = f"{VERSION}.{keyring.active}."
    report = RotationReport()
    for target in encrypted_columns():
        table, column, pk = quote(target.table), quote(target.column), quote(target.pk_column)
        stale = f"{column} IS NOT NULL AND substr({column}, 1, {len(prefix)}) <> {p(1)}"
        update = f"UPDATE {table} SET {column} = {p(1)} WHERE {pk} = {p(2)} AND {column} = {p(3)}"  # noqa: S608 - identifiers come from the models
        rotated = 0
        last: Any = None
        while True:
            if max_batches is not None and report.batches >= max_batches:
                report.complete = False
                return report
            after = "" if last is None else f" AND {pk} > {p(2)}"
            query = (
                f"SELECT {pk} AS pk, {column} AS value FROM {table} "  # noqa: S608 - as above
                f"WHERE {stale}{after} ORDER BY {pk} LIMIT {int(batch_size)}"
            )
            rows = await connection.execute_query_dict(
                query, [prefix] if last is None else [prefix, last]
            )
            if not rows:
                break
            report.batches += 1
            for row in rows:
                old: str = row["value"]
                try:
                    plain = _plain(keyring, old, target)
                except KeyringError as error:
                    raise KeyringError(f"{error} (row {row['pk']}); rotation stopped") from None
                new = keyring.encrypt(plain, target.context)
                changed, _ = await connection.execute_query(update, [new, row["pk"], old])
                if changed:
                    rotated += 1
                else:
                    report.skipped += 1
            last = rows[-1]["pk"]
            report.rotated[target.label] = rotated
            if progress is not None:
                progress(BatchDone(target.label, rotated))
    return report


def _plain(keyring: Keyring, value: str, target: EncryptedColumn) -> str:
    if not CIPHERTEXT.match(value):
        return value  # stored before encryption: sealed now
    return keyring.decrypt(value, target.context)


async def key_usage() -> dict[str, int]:
    """How many stored values each key id encrypted (``PLAINTEXT``: values not encrypted)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        key_id = "split_part({c}, '.', 2)"
    else:
        key_id = "substr({c}, 4, instr(substr({c}, 4), '.') - 1)"
    usage: dict[str, int] = {}
    for target in encrypted_columns():
        c = quote(target.column)
        rows = await connection.execute_query_dict(
            f"SELECT CASE WHEN {c} LIKE '{VERSION}.%' THEN {key_id.format(c=c)} "  # noqa: S608
            f"ELSE '{PLAINTEXT}' END AS key_id, COUNT(*) AS n FROM {quote(target.table)} "
            f"WHERE {c} IS NOT NULL GROUP BY 1"
        )
        for row in rows:
            name = str(row["key_id"])
            usage[name] = usage.get(name, 0) + int(row["n"])
    return dict(sorted(usage.items()))


__all__ = [
    "PLAINTEXT",
    "BatchDone",
    "EncryptedColumn",
    "RotationReport",
    "encrypted_columns",
    "key_usage",
    "rotate",
]
