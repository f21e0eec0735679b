"""The streaming Upload parser: the same verdict however the body is cut into chunks.

tests/api/test_api.py checks every 400 text over HTTP; here the body is fed in every possible
split (escapes, padding, a byte order mark, UTF-16, multi-byte characters cut in two), and the
file in the spool must be the one a whole-body base64 decode gives.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.exceptions import RequestValidationError

from atoz_watcher.api.errors import ApiError, describe
from atoz_watcher.api.upload_body import UploadBody
from atoz_watcher.storage import Spool, spool

DATA = os.urandom(300)
B64 = base64.b64encode(DATA).decode("ascii")
ESCAPED = B64.replace("/", "\\/").replace("A", "\\u0041")


def _outcome(chunks: Iterator[bytes], folder: Path) -> tuple[str, bytes | str]:
    parser = UploadBody(max_bytes=1000, new_spool=lambda: Spool(folder, durable=False))
    try:
        for chunk in chunks:
            parser.feed(chunk)
        parsed = parser.finish()
    except ApiError as exc:
        return ("error", f"{exc.status} {exc.message}")
    except RequestValidationError as exc:
        return ("error", describe(exc.errors()))
    else:
        if parsed.raw.bad:
            return ("error", "not base64")
        return ("file", parsed.raw.spool.path.read_bytes())
    finally:
        parser.discard()


def _splits(body: bytes) -> Iterator[list[bytes]]:
    """Every cut in two, then fixed chunk sizes."""
    for cut in range(len(body) + 1):
        yield [body[:cut], body[cut:]]
    for size in (1, 2, 3, 5, 7, 64):
        yield [body[i : i + size] for i in range(0, len(body), size)]


BODIES = {
    "plain": f'{{"PatNum": 1, "rawBase64": "{B64}", "extension": ".jpg"}}'.encode(),
    "escapes": f'{{"rawBase64": "{ESCAPED}", "PatNum": 1, "extension": "jpg"}}'.encode(),
    "bom": f'\ufeff{{"PatNum": 1, "RawBase64": "{B64}", "extension": ".jpg"}}'.encode(),
    "utf16": f'{{"PatNum": 1, "rawBase64": "{B64}", "extension": ".jpg"}}'.encode("utf-16"),
    "repeated": f'{{"PatNum":1, "rawBase64": "", "rawBase64": "{B64}", "extension": "x"}}'.encode(),
    "padding": b'{"PatNum": 1, "rawBase64": "QUI=", "extension": ".jpg"}',
    "bad padding": b'{"PatNum": 1, "rawBase64": "QQ==QQ==", "extension": ".jpg"}',
    "accent": '{"PatNum": 1, "rawBase64": "QUJDé", "extension": ".jpg"}'.encode(),
    "bad utf-8": b'{"PatNum": 1, "rawBase64": "QUJD\xc3", "extension": ".jpg"}',
    "surrogate": b'{"PatNum": 1, "rawBase64": "QUJD\\ud800", "extension": ".jpg"}',
    "nested": b'{"x": {"a": ["}", "\\""]}, "PatNum": 1, "rawBase64": "QUJD", "extension": ".jpg"}',
    "missing field": b'{"rawBase64": "QUJD", "extension": ".jpg"}',
    "truncated": b'{"PatNum": 1, "rawBase64": "QUJD',
    "too large": f'{{"PatNum": 1, "rawBase64": "{B64 * 4}", "extension": ".jpg"}}'.encode(),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_every_split_gives_the_whole_body_s_verdict(name: str, tmp_path: Path) -> None:
    body = BODIES[name]
    whole = _outcome(iter([body]), tmp_path)

    for chunks in _splits(body):
        assert _outcome(iter(chunks), tmp_path) == whole, chunks
    assert list(tmp_path.iterdir()) == []  # every spool discarded


def test_verdicts_are_those_of_a_whole_body_decode(tmp_path: Path) -> None:
    verdicts = {name: _outcome(iter([body]), tmp_path) for name, body in BODIES.items()}

    for name in ("plain", "escapes", "bom", "utf16", "repeated"):
        assert verdicts[name] == ("file", DATA), name
    assert verdicts["padding"] == ("file", b"AB")
    assert verdicts["bad padding"] == ("error", "not base64")
    assert verdicts["accent"] == ("error", "not base64")
    assert verdicts["bad utf-8"] == ("error", "400 There was an error parsing the body")
    assert verdicts["surrogate"] == ("error", "rawBase64 is invalid: not valid Unicode text")
    assert verdicts["nested"] == ("file", b"ABC")
    assert verdicts["missing field"] == ("error", "PatNum is required")
    assert verdicts["truncated"] == ("error", "400 The request body is not valid JSON")
    assert verdicts["too large"] == (
        "error",
        "400 rawBase64 is larger than the limit of 1000 bytes",
    )


def test_fields_around_raw_base64_are_bounded(tmp_path: Path) -> None:
    body = b'{"PatNum": 1, "rawBase64": "QUJD", "Description": "' + b"x" * (1024 * 1024) + b'"}'

    assert _outcome(iter([body]), tmp_path) == (
        "error",
        "413 The request body is too large: the fields other than rawBase64 exceed 1048576 bytes",
    )
    assert list(tmp_path.iterdir()) == []


def test_spools_of_a_killed_process_are_swept_after_an_hour(tmp_path: Path) -> None:
    stale, fresh = Spool(tmp_path), Spool(tmp_path)
    stale.finish()
    fresh.finish()
    other = tmp_path / "SmithJohn1.jpg"
    other.write_bytes(b"a patient's file")
    an_hour_and_more = time.time() - spool.STALE_SECONDS - 60
    os.utime(stale.path, (an_hour_and_more, an_hour_and_more))
    os.utime(other, (an_hour_and_more, an_hour_and_more))

    assert spool.sweep(tmp_path) == 1
    assert sorted(tmp_path.iterdir()) == sorted([fresh.path, other])
