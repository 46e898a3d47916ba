"""Large files sealed at rest, written and read as streams (consult recordings).

A file is encrypted as it is written — the plaintext never touches the disk — and read back
chunk by chunk, each chunk authenticated before it is given out, so a video can be streamed to a
browser without holding it in memory.

File format, version 1 (integers big-endian)::

    magic        b"TSUNAGU-SEALED\\n"
    header_len   u32, then JSON (UTF-8): {"format": 1, "context": "...", "key_id": "...",
                 "wrapped_key": base64(nonce 12 + AES-GCM(data key 32)), "chunk_size": n}
    chunk*       u32 length, then nonce (12) + AES-256-GCM ciphertext and tag

Each file has its own random data key, sealed with the keyring's active key; the key's AAD names
the file's ``context`` (e.g. ``recording:<id>``), so a file put in place of another record's does
not open. Every chunk's AAD is ``magic + SHA-256(header) + u64 index + u8 final``: reordered,
altered, dropped or appended chunks are detected, and so is a missing end — which a reader may
accept (``partial=True``) for a recording cut short by a crash, getting every chunk written
before it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from patient_portal.crypto.keyring import KEY_BYTES, NONCE_BYTES, Keyring

MAGIC: Final = b"TSUNAGU-SEALED\n"
FORMAT: Final = 1
CHUNK_SIZE: Final = 256 * 1024
MAX_HEADER: Final = 64 * 1024
TAG_BYTES: Final = 16
_LENGTH = struct.Struct(">I")
_CHUNK = struct.Struct(">QB")


class SealedFileError(Exception):
    """The file is not a sealed file, was sealed for something else, or is damaged."""


def _key_aad(context: str, key_id: str) -> bytes:
    return MAGIC + b"data key\x00" + key_id.encode("ascii") + b"\x00" + context.encode("utf-8")


def chunk_aad(magic: bytes, digest: bytes, index: int, final: bool) -> bytes:
    """What a chunk's seal binds it to: the file's kind, its header, its place, whether last.
    Shared with database backups (patient_portal/crypto/backup.py), which chunk the same way."""
    return magic + digest + _CHUNK.pack(index, 1 if final else 0)


def open_chunk(
    aead: AESGCM, magic: bytes, digest: bytes, index: int, frame: bytes
) -> tuple[bytes, bool] | None:
    """A chunk frame (nonce + ciphertext) → (plaintext, is it the last), or None if it fails
    its check in that place."""
    nonce, sealed = frame[:NONCE_BYTES], frame[NONCE_BYTES:]
    for final in (False, True):
        try:
            return aead.decrypt(nonce, sealed, chunk_aad(magic, digest, index, final)), final
        except InvalidTag:
            continue
    return None


class SealedWriter:
    """A write-only, one-way file that encrypts as it goes (``write`` / ``close``).

    The file is created new (never overwritten) and readable by this user only. ``close`` seals
    the final chunk and flushes to disk; a writer dropped without ``close`` leaves a file with
    no end, which ``read_sealed(partial=True)`` still reads.
    """

    def __init__(
        self, path: Path, keyring: Keyring, context: str, chunk_size: int = CHUNK_SIZE
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        data_key = secrets.token_bytes(KEY_BYTES)
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = nonce + AESGCM(keyring.keys[keyring.active]).encrypt(
            nonce, data_key, _key_aad(context, keyring.active)
        )
        header = json.dumps(
            {
                "format": FORMAT,
                "context": context,
                "key_id": keyring.active,
                "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
                "chunk_size": chunk_size,
            },
            separators=(",", ":"),
        ).encode("utf-8")
        self._aead = AESGCM(data_key)
        self._digest = hashlib.sha256(header).digest()
        self._chunk_size = chunk_size
        self._pending = bytearray()
        self._index = 0
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: IO[bytes] = os.fdopen(descriptor, "wb")
        self._file.write(MAGIC + _LENGTH.pack(len(header)) + header)
        self.size = len(MAGIC) + _LENGTH.size + len(header)

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed sealed file")
        self._pending += data
        while len(self._pending) > self._chunk_size:
            self._seal(bytes(self._pending[: self._chunk_size]), final=False)
            del self._pending[: self._chunk_size]
        return len(data)

    def flush(self) -> None:
        """Hand the chunks sealed so far to the operating system (what is pending stays)."""
        self._file.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._seal(bytes(self._pending), final=True)
            self._pending.clear()
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def _seal(self, plaintext: bytes, *, final: bool) -> None:
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = chunk_aad(MAGIC, self._digest, self._index, final)
        sealed = self._aead.encrypt(nonce, plaintext, aad)
        self._file.write(_LENGTH.pack(NONCE_BYTES + len(sealed)) + nonce + sealed)
        self.size += _LENGTH.size + NONCE_BYTES + len(sealed)
        self._index += 1


def _read_exact(handle: IO[bytes], size: int) -> bytes | None:
    data = handle.read(size)
    return data if len(data) == size else None


def _open_header(handle: IO[bytes], keyring: Keyring, context: str) -> tuple[AESGCM, bytes, int]:
    if handle.read(len(MAGIC)) != MAGIC:
        raise SealedFileError("not a sealed file")
    prefix = _read_exact(handle, _LENGTH.size)
    (length,) = _LENGTH.unpack(prefix) if prefix else (MAX_HEADER + 1,)
    raw = _read_exact(handle, length) if length <= MAX_HEADER else None
    if raw is None:
        raise SealedFileError("the sealed file's header is damaged")
    try:
        header = json.loads(raw)
        if header["format"] != FORMAT:
            raise SealedFileError(f"sealed file format {header['format']!r} is not supported")
        key_id, chunk_size = str(header["key_id"]), int(header["chunk_size"])
        wrapped = base64.b64decode(header["wrapped_key"], validate=True)
        sealed_for = str(header["context"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SealedFileError("the sealed file's header is damaged") from None
    if sealed_for != context:
        raise SealedFileError("the file was sealed for another record")
    key = keyring.keys.get(key_id)
    if key is None:
        raise SealedFileError(f"the file was sealed with key {key_id!r}, not in this keyring")
    try:
        data_key = AESGCM(key).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _key_aad(context, key_id)
        )
    except (InvalidTag, ValueError):
        raise SealedFileError(
            "the file's key does not open (another keyring, or altered)"
        ) from None
    return AESGCM(data_key), hashlib.sha256(raw).digest(), chunk_size


def read_sealed(
    path: Path, keyring: Keyring, context: str, *, partial: bool = False
) -> Iterator[bytes]:
    """The plaintext, chunk by chunk, each authenticated before it is yielded.

    :class:`SealedFileError` on anything wrong — at the point it is found, so a caller streaming
    the chunks must be ready for it midway. ``partial=True`` accepts a file whose end is missing
    (the writer never closed it) and stops after its last whole chunk.
    """
    with path.open("rb") as handle:
        aead, digest, chunk_size = _open_header(handle, keyring, context)
        limit = chunk_size + NONCE_BYTES + TAG_BYTES
        index = 0
        while True:
            prefix = handle.read(_LENGTH.size)
            frame = None
            if len(prefix) == _LENGTH.size:
                (length,) = _LENGTH.unpack(prefix)
                if not NONCE_BYTES + TAG_BYTES <= length <= limit:
                    raise SealedFileError(f"the sealed file is damaged at chunk {index}")
                frame = _read_exact(handle, length)
            if frame is None:
                if partial:
                    return
                raise SealedFileError("the sealed file is cut short (its end is missing)")
            opened = open_chunk(aead, MAGIC, digest, index, frame)
            if opened is None:
                raise SealedFileError(f"the sealed file is damaged at chunk {index}")
            plaintext, final = opened
            if plaintext:
                yield plaintext
            index += 1
            if final:
                break
        if handle.read(1):
            raise SealedFileError("the sealed file has data after its end")
