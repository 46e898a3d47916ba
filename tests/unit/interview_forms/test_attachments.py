"""Photos are recognised by decoding their content, never by their name or declared type."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from interview_forms.responses import (
    IMAGE_TYPES,
    MAX_ATTACHMENT_BYTES,
    AttachmentRefused,
    check_image,
)


def encoded(kind: str, size: tuple[int, int] = (20, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_photos_are_accepted_with_their_real_type(kind: str, content_type: str) -> None:
    data = encoded(kind)
    checked = check_image(data)
    assert checked.content_type == content_type
    assert checked.data == data
    assert len(checked.sha256) == 64


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n", "not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not_an_image"),
        (encoded("GIF"), "not_an_image"),  # an image, but not a kind we keep
        (encoded("PNG")[:40], "not_an_image"),  # a truncated file
        (b"\x00" * (MAX_ATTACHMENT_BYTES + 1), "too_large"),
    ],
)
def test_anything_else_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AttachmentRefused) as refused:
        check_image(data)
    assert refused.value.reason == reason
    assert refused.value.message_ja
    assert refused.value.message_en


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    bomb = encoded("PNG", size=(8000, 8000))  # 64 megapixels of one colour, a small file
    assert len(bomb) < MAX_ATTACHMENT_BYTES
    with pytest.raises(AttachmentRefused) as refused:
        check_image(bomb)
    assert refused.value.reason in ("too_many_pixels", "not_an_image")


@settings(max_examples=200)
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_for_a_stated_reason(data: bytes) -> None:
    outcome: str
    try:
        outcome = check_image(data).content_type  # random bytes that happen to decode
    except AttachmentRefused as refused:
        outcome = refused.reason
    assert outcome in {*IMAGE_TYPES.values(), "empty", "not_an_image", "too_large"}
