"""Encrypted, integrity-checked backups of the whole database (``tsunagu backup`` / ``restore``).

What is saved: the raw rows of every table of every model in the open Tortoise apps (and their
many-to-many tables), read in one snapshot transaction. Raw means encrypted columns stay
ciphertext: the backup is only as readable as the keyring, which is never part of it. The
migration bookkeeping table is *not* copied; the header lists the migrations the database had,
and a restore goes into a database migrated to exactly that list (``tsunagu restore`` runs the
migrations first, so an empty database with no tables is fine).

File format, version 1 (all integers big-endian)::

    magic        b"TSUNAGU-BACKUP\\n"
    header_len   u32, then header_len bytes of JSON (UTF-8):
                   {"format": 1, "created_at": ISO 8601, "backend": "sqlite" | "postgres",
                    "migrations": ["app.name", ...], "tables": [[table, rows], ...],
                    "key_id": keyring key that wraps the data key,
                    "wrapped_key": base64(nonce 12 + AES-GCM(data key 32)),
                    "chunk_size": max plaintext bytes per chunk, "compression": "zlib"}
    chunk*       u32 length, then nonce (12) + AES-256-GCM ciphertext+tag

The data key is random per backup, sealed with the keyring's active key (AAD: magic + key id).
Each chunk is sealed with the data key and its own random nonce; its AAD is
``magic + SHA-256(header) + u64 chunk index + u8 final``, so a changed header, a reordered,
dropped, or altered chunk, a missing last chunk (truncation) and bytes after it are all detected.
The chunk plaintexts, concatenated, are one zlib stream of JSON lines: ``{"table": name,
"columns": [...]}`` opens a table's rows; each row is a JSON array of values, where JSON's null,
booleans, integers, finite floats and strings stand for themselves and other types are tagged
one-key objects (``{"$datetime": iso}``, ``$date``, ``$time``, ``$timedelta`` [days, seconds,
µs], ``$uuid``, ``$bytes`` base64, ``$decimal``, ``$float`` for non-finite, ``$json`` for a value
the driver decoded from a JSON column). Tables come in foreign-key order, rows in key order.

Restore decrypts and checks the whole file before it touches the database, refuses a database
with rows in any table, then inserts everything in one transaction: on any failure nothing stays.
It restores into the same kind of database the backup came from. The header (table names, row
counts, time) is authenticated but not secret. Integer primary keys made by PostgreSQL sequences
would need their sequences moved after a restore; no model has one today.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import secrets
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import BaseORMException
from tortoise.fields.relational import ForeignKeyFieldInstance, ManyToManyFieldInstance
from tortoise.transactions import in_transaction

from patient_portal.crypto.keyring import NONCE_BYTES, Keyring
from patient_portal.crypto.rotation import placeholders, quote
from patient_portal.crypto.sealed_files import chunk_aad, open_chunk

MAGIC: Final = b"TSUNAGU-BACKUP\n"
FORMAT: Final = 1
CHUNK_SIZE: Final = 1 << 20
MAX_HEADER: Final = 1 << 20
MIGRATIONS_TABLE: Final = "tortoise_migrations"
_LENGTH = struct.Struct(">I")
_READ_BATCH = 1000
_WRITE_BATCH = 500


class BackupError(Exception):
    """A backup cannot be written or restored. The message is one line for the operator and
    never contains patient data."""


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    created_at: datetime
    key_id: str
    tables: dict[str, int]
    size: int


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    created_at: datetime
    tables: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    order_by: tuple[str, ...]
    parents: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Header:
    created_at: datetime
    backend: str
    migrations: list[str]
    tables: list[tuple[str, int]]
    key_id: str
    wrapped_key: bytes
    chunk_size: int


# --- values ------------------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """A database value as JSON, tagged when JSON has no type for it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict | list):
        return {"$json": value}
    raise BackupError(f"cannot back up a value of type {type(value).__name__}")


_DECODERS: Final[dict[str, Any]] = {
    "$float": float,
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time.fromisoformat,
    "$timedelta": lambda v: timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$uuid": uuid.UUID,
    "$bytes": lambda v: base64.b64decode(v, validate=True),
    "$decimal": Decimal,
    "$json": lambda v: v,
}


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        ((tag, raw),) = value.items()
        return _DECODERS[tag](raw)
    return value


# --- the tables --------------------------------------------------------------------------------


def _tables() -> list[_Table]:
    """Every table of the open apps' models, parents before the tables that refer to them."""
    apps = Tortoise.apps
    if apps is None:
        raise BackupError("the database is not open")
    tables: dict[str, _Table] = {}
    through: dict[str, _Table] = {}
    for model in apps.get_models_iterable():
        meta = model._meta
        parents = set()
        for name in meta.fk_fields | meta.o2o_fields:
            related = meta.fields_map[name]
            assert isinstance(related, ForeignKeyFieldInstance)  # noqa: S101 - by fk_fields
            parents.add(related.related_model._meta.db_table)
        parents.discard(meta.db_table)  # a self-reference: rows come in key order
        tables[meta.db_table] = _Table(
            meta.db_table,
            tuple(meta.fields_db_projection.values()),
            (meta.db_pk_column,),
            frozenset(parents),
        )
        for name in meta.m2m_fields:
            m2m = meta.fields_map[name]
            assert isinstance(m2m, ManyToManyFieldInstance)  # noqa: S101 - by m2m_fields
            keys = tuple(sorted((m2m.forward_key, m2m.backward_key)))
            other = m2m.related_model._meta.db_table
            through[m2m.through] = _Table(
                m2m.through, keys, keys, frozenset({meta.db_table, other})
            )
    for name, table in through.items():
        tables.setdefault(name, table)
    return _dependency_order(tables)


def _dependency_order(tables: dict[str, _Table]) -> list[_Table]:
    ordered: list[_Table] = []
    done: set[str] = set()
    while len(ordered) < len(tables):
        ready = sorted(
            name
            for name, table in tables.items()
            if name not in done and (table.parents & tables.keys()) <= done
        )
        if not ready:
            raise BackupError("the tables' foreign keys form a cycle")
        for name in ready:
            ordered.append(tables[name])
            done.add(name)
    return ordered


# --- sealing -----------------------------------------------------------------------------------


def _wrap_aad(key_id: str) -> bytes:
    return MAGIC + b"data key\x00" + key_id.encode("ascii")


def _chunk_aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return chunk_aad(MAGIC, header_digest, index, final)


class _Sealer:
    """JSON lines in, file bytes out: compresses, cuts into chunks and seals each one."""

    def __init__(self, data_key: bytes, header_digest: bytes, chunk_size: int) -> None:
        self._aead = AESGCM(data_key)
        self._digest = header_digest
        self._chunk_size = chunk_size
        self._compressor = zlib.compressobj(6)
        self._pending = bytearray()
        self._index = 0

    def line(self, record: Any) -> bytes:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._pending += self._compressor.compress(text.encode("utf-8") + b"\n")
        out = bytearray()
        while len(self._pending) > self._chunk_size:
            out += self._seal(bytes(self._pending[: self._chunk_size]), final=False)
            del self._pending[: self._chunk_size]
        return bytes(out)

    def finish(self) -> bytes:
        self._pending += self._compressor.flush()
        out = bytearray()
        while len(self._pending) > self._chunk_size:
            out += self._seal(bytes(self._pending[: self._chunk_size]), final=False)
            del self._pending[: self._chunk_size]
        out += self._seal(bytes(self._pending), final=True)
        self._pending.clear()
        return bytes(out)

    def _seal(self, plaintext: bytes, *, final: bool) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _chunk_aad(self._digest, self._index, final))
        self._index += 1
        return _LENGTH.pack(len(nonce) + len(sealed)) + nonce + sealed


def _read_exact(handle: IO[bytes], size: int, what: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise BackupError(f"the backup is truncated ({what} is incomplete)")
    return data


def _read_header(handle: IO[bytes]) -> tuple[_Header, bytes]:
    if handle.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a Tsunagu backup file")
    (length,) = _LENGTH.unpack(_read_exact(handle, _LENGTH.size, "the header"))
    if length > MAX_HEADER:
        raise BackupError("the backup header is damaged")
    raw = _read_exact(handle, length, "the header")
    try:
        data = json.loads(raw)
        if data["format"] != FORMAT or data["compression"] != "zlib":
            raise BackupError(f"backup format {data['format']!r} is not supported")
        header = _Header(
            created_at=datetime.fromisoformat(data["created_at"]),
            backend=str(data["backend"]),
            migrations=[str(name) for name in data["migrations"]],
            tables=[(str(name), int(rows)) for name, rows in data["tables"]],
            key_id=str(data["key_id"]),
            wrapped_key=base64.b64decode(data["wrapped_key"], validate=True),
            chunk_size=int(data["chunk_size"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BackupError("the backup header is damaged") from None
    return header, hashlib.sha256(raw).digest()


def _unwrap(header: _Header, keyring: Keyring) -> bytes:
    key = keyring.keys.get(header.key_id)
    if key is None:
        raise BackupError(f"the backup was sealed with key {header.key_id!r}, not in this keyring")
    wrapped = header.wrapped_key
    try:
        return AESGCM(key).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(header.key_id)
        )
    except (InvalidTag, ValueError):
        raise BackupError(
            f"key {header.key_id!r} of this keyring does not open the backup "
            "(a different keyring, or the header was altered)"
        ) from None


def _plaintext(
    handle: IO[bytes], header: _Header, digest: bytes, data_key: bytes
) -> Iterator[bytes]:
    """The decompressed lines, each authenticated before it is yielded."""
    aead = AESGCM(data_key)
    decompressor = zlib.decompressobj()
    buffer = b""
    index = 0
    limit = header.chunk_size + NONCE_BYTES + 16
    while True:
        prefix = handle.read(_LENGTH.size)
        if not prefix:
            raise BackupError("the backup is truncated (its last chunk is missing)")
        if len(prefix) != _LENGTH.size:
            raise BackupError("the backup is truncated (a chunk is incomplete)")
        (length,) = _LENGTH.unpack(prefix)
        if not NONCE_BYTES + 16 <= length <= limit:
            raise BackupError(f"the backup is damaged (chunk {index})")
        frame = _read_exact(handle, length, f"chunk {index}")
        plaintext, final = _open_chunk(aead, digest, index, frame)
        try:
            buffer += decompressor.decompress(plaintext)
            if final:
                buffer += decompressor.flush()
        except zlib.error:
            raise BackupError("the backup's contents are damaged") from None
        *lines, buffer = buffer.split(b"\n")
        yield from lines
        index += 1
        if final:
            break
    if handle.read(1):
        raise BackupError("the backup has unexpected data after its last chunk")
    if buffer or not decompressor.eof or decompressor.unused_data:
        raise BackupError("the backup's contents are damaged")


def _open_chunk(aead: AESGCM, digest: bytes, index: int, frame: bytes) -> tuple[bytes, bool]:
    opened = open_chunk(aead, MAGIC, digest, index, frame)
    if opened is None:
        raise BackupError(f"the backup failed its integrity check at chunk {index}")
    return opened


def _records(
    handle: IO[bytes], header: _Header, digest: bytes, data_key: bytes
) -> Iterator[tuple[str, tuple[str, ...], list[Any]]]:
    """(table, columns, decoded row) for every row; checks the table list and counts as it goes."""
    expected = iter(header.tables)
    table: str | None = None
    columns: tuple[str, ...] = ()
    count = want = 0
    for line in _plaintext(handle, header, digest, data_key):
        try:
            record = json.loads(line)
            if isinstance(record, dict):
                if table is not None and count != want:
                    raise BackupError(f"the backup's row count for {table} does not match")
                table, want = next(expected, (None, 0))
                if table is None or record["table"] != table:
                    raise BackupError("the backup's tables do not match its header")
                columns = tuple(str(c) for c in record["columns"])
                count = 0
                continue
            if table is None or len(record) != len(columns):
                raise BackupError("the backup's contents are damaged")
            row = [decode_value(value) for value in record]
        except (ValueError, KeyError, TypeError, binascii.Error, ArithmeticError):
            raise BackupError("the backup's contents are damaged") from None
        count += 1
        yield table, columns, row
    if table is not None and count != want:
        raise BackupError(f"the backup's row count for {table} does not match")
    if next(expected, None) is not None:
        raise BackupError("the backup's tables do not match its header")


# --- the database ------------------------------------------------------------------------------


async def _migrations(connection: BaseDBAsyncClient) -> list[str]:
    try:
        rows = await connection.execute_query_dict(
            f"SELECT app, name FROM {quote(MIGRATIONS_TABLE)} ORDER BY app, name"  # noqa: S608
        )
    except BaseORMException:
        return []
    return [f"{row['app']}.{row['name']}" for row in rows]


async def _rows(connection: BaseDBAsyncClient, table: _Table) -> AsyncIterator[list[Any]]:
    """The table's rows in key order, read a batch at a time."""
    columns = ", ".join(quote(c) for c in table.columns)
    if len(table.order_by) != 1:
        order = ", ".join(quote(c) for c in table.order_by)
        rows = await connection.execute_query_dict(
            f"SELECT {columns} FROM {quote(table.name)} ORDER BY {order}"  # noqa: S608
        )
        for row in rows:
            yield [row[c] for c in table.columns]
        return
    p = placeholders(connection)
    key = table.order_by[0]
    last: Any = None
    while True:
        after = "" if last is None else f" WHERE {quote(key)} > {p(1)}"
        rows = await connection.execute_query_dict(
            f"SELECT {columns} FROM {quote(table.name)}{after} "  # noqa: S608
            f"ORDER BY {quote(key)} LIMIT {_READ_BATCH}",
            [] if last is None else [last],
        )
        for row in rows:
            yield [row[c] for c in table.columns]
        if len(rows) < _READ_BATCH:
            return
        last = rows[-1][key]


async def write_backup(path: Path, keyring: Keyring, *, now: datetime) -> BackupSummary:
    """Write the open database to ``path`` (which must not exist), sealed with ``keyring``."""
    _refuse_existing(path)
    tables = _tables()
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = nonce + AESGCM(keyring.keys[keyring.active]).encrypt(
        nonce, data_key, _wrap_aad(keyring.active)
    )
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    # Read before the snapshot: on PostgreSQL a missing table would abort the transaction.
    migrations = await _migrations(connections.get("default"))
    async with in_transaction("default") as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counts: dict[str, int] = {}
        for table in tables:
            rows = await connection.execute_query_dict(
                f"SELECT COUNT(*) AS n FROM {quote(table.name)}"  # noqa: S608
            )
            counts[table.name] = int(rows[0]["n"])
        header = json.dumps(
            {
                "format": FORMAT,
                "created_at": now.isoformat(),
                "backend": connection.capabilities.dialect,
                "migrations": migrations,
                "tables": [[name, rows] for name, rows in counts.items()],
                "key_id": keyring.active,
                "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
                "chunk_size": CHUNK_SIZE,
                "compression": "zlib",
            }
        ).encode("utf-8")
        sealer = _Sealer(data_key, hashlib.sha256(header).digest(), CHUNK_SIZE)
        handle = _create(temporary)
        try:
            handle.write(MAGIC + _LENGTH.pack(len(header)) + header)
            for table in tables:
                handle.write(sealer.line({"table": table.name, "columns": list(table.columns)}))
                written = 0
                async for row in _rows(connection, table):
                    handle.write(sealer.line([encode_value(value) for value in row]))
                    written += 1
                if written != counts[table.name]:
                    raise BackupError(f"{table.name} changed while it was read")
            handle.write(sealer.finish())
            handle.flush()
            os.fsync(handle.fileno())
            size = handle.tell()
            handle.close()
            os.replace(temporary, path)
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
    return BackupSummary(path, now, keyring.active, counts, size)


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise BackupError(f"{path} already exists; choose a new file name")


def _create(path: Path) -> IO[bytes]:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise BackupError(f"cannot write in {path.parent}: {error.strerror}") from None
    return os.fdopen(descriptor, "wb")


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None


async def restore_backup(path: Path, keyring: Keyring) -> RestoreSummary:
    """Restore ``path`` into the open database, which must be migrated and have no rows.

    The whole file is decrypted and checked first; then every row goes in in one transaction.
    """
    with _open(path) as handle:
        header, digest = _read_header(handle)
        data_key = _unwrap(header, keyring)
        for _ in _records(handle, header, digest, data_key):
            pass
    connection = connections.get("default")
    dialect = connection.capabilities.dialect
    if header.backend != dialect:
        raise BackupError(
            f"the backup is of a {header.backend} database; restore it into {header.backend}, "
            f"not {dialect}"
        )
    migrations = await _migrations(connection)
    if not migrations:
        raise BackupError("the database has no schema yet: run `tsunagu migrate` first")
    if sorted(header.migrations) != sorted(migrations):
        raise BackupError(
            "the backup was made at other migrations than this database has; restore it with "
            "the Tsunagu version that made it, then migrate"
        )
    tables = {table.name: table for table in _tables()}
    names = [name for name, _ in header.tables]
    if set(names) != set(tables):
        raise BackupError("the backup's tables are not this database's tables")
    order = [table.name for table in _dependency_order(tables)]
    if names != order:
        raise BackupError("the backup's tables are not in foreign-key order")
    await _refuse_rows(connection, names)
    try:
        async with in_transaction("default") as transaction:
            await _refuse_rows(transaction, names)
            with _open(path) as handle:
                header, digest = _read_header(handle)
                await _insert(
                    transaction, tables, _records(handle, header, digest, _unwrap(header, keyring))
                )
    except BackupError:
        raise
    except Exception as error:
        raise BackupError(
            f"the restore failed and was rolled back ({type(error).__name__})"
        ) from None
    return RestoreSummary(header.created_at, dict(header.tables))


async def _refuse_rows(connection: BaseDBAsyncClient, names: Sequence[str]) -> None:
    for name in names:
        rows = await connection.execute_query_dict(
            f"SELECT 1 AS present FROM {quote(name)} LIMIT 1"  # noqa: S608
        )
        if rows:
            raise BackupError(f"the database is not empty ({name} has rows); restore needs none")


async def _insert(
    connection: BaseDBAsyncClient,
    tables: dict[str, _Table],
    records: Iterator[tuple[str, tuple[str, ...], list[Any]]],
) -> None:
    p = placeholders(connection)
    batch: list[list[Any]] = []
    statement = ""
    current: str | None = None
    for table, columns, row in records:
        if table != current:
            if batch:
                await connection.execute_many(statement, batch)
                batch = []
            if set(columns) != set(tables[table].columns):
                raise BackupError(f"the backup's columns of {table} are not this database's")
            current = table
            statement = (
                f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
                f"VALUES ({', '.join(p(n) for n in range(1, len(columns) + 1))})"
            )
        batch.append(row)
        if len(batch) >= _WRITE_BATCH:
            await connection.execute_many(statement, batch)
            batch = []
    if batch:
        await connection.execute_many(statement, batch)
