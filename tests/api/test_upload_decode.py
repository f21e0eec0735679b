"""rawBase64's fast decoder: always binascii's strict verdict and bytes, padding and strays too.

Upload decodes the letters with pybase64 (SIMD) and leaves anything else to
``binascii.a2b_base64(strict_mode=True)``; a reader must never see a file, or a 400, that the
strict decoder alone would not have given.
"""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from atoz_watcher.api.upload_body import strict_base64

LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _binascii(text: bytes) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None


def _ours(text: bytes) -> bytes | None:
    pieces = strict_base64(memoryview(text))
    return None if pieces is None else b"".join(pieces)


EDGES = [
    b"QUJD",
    b"QUI=",
    b"QQ==",
    b"QR==",  # bits after the data: binascii takes it
    b"QUJD====",  # binascii's excess padding after a whole quantum: taken too
    b"QQ==QUJD",
    b"QQ=AQUJD",
    b"=QUJ",
    b"====",
    b"QUJD QUJ",
    b"QUJ-",
    b"QUJ_",
    b"QUJ\n",
    b"QUJ\x00",
    b"QUJDQUJ=QUJD",
]


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases_get_binascii_s_verdict(text: bytes) -> None:
    assert _ours(text) == _binascii(text)


def test_every_byte_in_every_place_gets_binascii_s_verdict() -> None:
    body = base64.b64encode(bytes(range(48)) * 2)  # 128 letters, no padding
    for place in (0, 5, 63, 64, 126, 127):
        for byte in range(256):
            text = body[:place] + bytes([byte]) + body[place + 1 :]
            assert _ours(text) == _binascii(text), (place, byte)


def test_random_texts_get_binascii_s_verdict() -> None:
    chance = random.Random(14)
    alphabet = LETTERS + b"= \n-_\xc3"
    for _ in range(3000):
        length = 4 * chance.randint(1, 12)
        text = bytes(chance.choice(LETTERS) for _ in range(length))
        for _ in range(chance.randint(0, 3)):  # a few strays, padding most often
            where = chance.randrange(length)
            stray = b"=" if chance.random() < 0.6 else bytes([chance.choice(alphabet)])
            text = text[:where] + stray + text[where + 1 :]
        assert _ours(text) == _binascii(text), text


def test_a_large_file_is_decoded_whole() -> None:
    data = random.Random(13).randbytes(3 * 1024 * 1024 + 2)  # padded: "=" at the end

    assert _ours(base64.b64encode(data)) == data
