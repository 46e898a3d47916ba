"""Sealed files: what is written comes back, nothing readable is on disk, and every kind of damage
(a flipped bit, chunks swapped, dropped, cut off or added, another record's file, another keyring)
is refused; a file whose writer never closed it is still readable up to its last whole chunk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patient_portal.crypto.sealed_files import (
    MAGIC,
    SealedFileError,
    SealedWriter,
    read_sealed,
)
from tests.unit.patient_portal.test_keyring import make_keyring

KEYRING = make_keyring("k1", "k0")
CONTEXT = "recording:0b7c"


def write(path: Path, parts: list[bytes], chunk_size: int = 64) -> int:
    writer = SealedWriter(path, KEYRING, CONTEXT, chunk_size=chunk_size)
    for part in parts:
        assert writer.write(part) == len(part)
    writer.close()
    writer.close()  # idempotent
    return writer.size


def read(path: Path, **options: bool) -> bytes:
    return b"".join(read_sealed(path, KEYRING, CONTEXT, **options))


@settings(max_examples=60)
@given(
    parts=st.lists(st.binary(max_size=300), max_size=8),
    chunk_size=st.integers(1, 128),
)
def test_what_is_written_is_read_back(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], chunk_size: int
) -> None:
    path = tmp_path_factory.mktemp("sealed") / "file"
    size = write(path, parts, chunk_size)
    assert read(path) == b"".join(parts)
    assert size == path.stat().st_size


def test_the_disk_holds_no_plaintext_and_only_the_owner_may_read(tmp_path: Path) -> None:
    secret = b"\x1a\x45\xdf\xa3 webm of a consult " * 100
    path = tmp_path / "f"
    write(path, [secret])
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"webm of a consult" not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write(path, [b"first"])
    with pytest.raises(FileExistsError):
        SealedWriter(path, KEYRING, CONTEXT)
    assert read(path) == b"first"


def chunk_offsets(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each chunk frame in the file."""
    raw = path.read_bytes()
    position = len(MAGIC)
    header = int.from_bytes(raw[position : position + 4], "big")
    position += 4 + header
    frames = []
    while position < len(raw):
        length = int.from_bytes(raw[position : position + 4], "big")
        frames.append((position, position + 4 + length))
        position += 4 + length
    return frames


def rewrite(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)


@pytest.mark.parametrize(
    "damage",
    ["flip a bit", "swap chunks", "drop a chunk", "append a chunk", "trailing byte"],
)
def test_damage_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "f"
    write(path, [bytes(range(256)) * 2], chunk_size=100)  # 6 chunks
    raw = bytearray(path.read_bytes())
    frames = chunk_offsets(path)
    (a0, a1), (b0, b1) = frames[1], frames[2]
    match damage:
        case "flip a bit":
            raw[a0 + 20] ^= 0x01
        case "swap chunks":
            raw = raw[:a0] + raw[b0:b1] + raw[a0:a1] + raw[b1:]
        case "drop a chunk":
            raw = raw[:a0] + raw[a1:]
        case "append a chunk":
            raw = raw + raw[a0:a1]
        case "trailing byte":
            raw = raw + b"\0"
    rewrite(path, bytes(raw))
    with pytest.raises(SealedFileError):
        read(path)
    with pytest.raises(SealedFileError):
        read(path, partial=True)


def test_a_file_cut_short_is_refused_unless_partial_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write(path, [b"a" * 250], chunk_size=100)  # chunks of 100, 100, 50 (final)
    frames = chunk_offsets(path)
    raw = path.read_bytes()
    rewrite(path, raw[: frames[-1][0]])  # the final chunk is gone
    with pytest.raises(SealedFileError, match="cut short"):
        read(path)
    assert read(path, partial=True) == b"a" * 200
    rewrite(path, raw[: frames[-1][0] + 7])  # and half of it is there
    assert read(path, partial=True) == b"a" * 200


def test_a_writer_still_writing_leaves_its_whole_chunks_readable(tmp_path: Path) -> None:
    """What a crash mid-recording leaves: the chunks sealed and flushed so far, no end."""
    path = tmp_path / "f"
    writer = SealedWriter(path, KEYRING, CONTEXT, chunk_size=100)
    writer.write(b"b" * 250)
    writer.flush()
    try:
        assert read(path, partial=True) == b"b" * 200
        with pytest.raises(SealedFileError):
            read(path)
    finally:
        writer.close()
    assert read(path) == b"b" * 250


def test_another_records_file_or_keyring_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write(path, [b"consult"])
    with pytest.raises(SealedFileError, match="another record"):
        b"".join(read_sealed(path, KEYRING, "recording:other"))
    with pytest.raises(SealedFileError, match="not in this keyring"):
        b"".join(read_sealed(path, make_keyring("k9"), CONTEXT))
    stranger = make_keyring("k1")  # same key id, different key
    with pytest.raises(SealedFileError, match="does not open"):
        b"".join(read_sealed(path, stranger, CONTEXT))


def test_files_sealed_under_an_older_key_still_open_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "f"
    older = make_keyring("k0")
    writer = SealedWriter(path, older, CONTEXT)
    writer.write(b"before rotation")
    writer.close()
    rotated = type(older)(
        active="k2", keys={**older.keys, "k2": os.urandom(32)}, index_key=older.index_key
    )
    assert b"".join(read_sealed(path, rotated, CONTEXT)) == b"before rotation"


@pytest.mark.parametrize(
    "content",
    [b"", b"TSUNAGU-BACKUP\n", MAGIC, MAGIC + b"\0\0\0\x05{bad}", MAGIC + b"\xff\xff\xff\xff"],
    ids=["empty", "another format", "magic only", "bad header", "huge header"],
)
def test_what_is_not_a_sealed_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    with pytest.raises(SealedFileError):
        read(path)
