"""Upload's JSON body read as it arrives: rawBase64 decoded into a spool, never held whole.

``UploadBody`` is fed the body in chunks. The small fields (PatNum, extension, ...) are kept as
JSON text and validated at the end exactly as a whole body would be (``json.loads``, then the
``UploadRequest`` model), so a bad field gets the same 400 text as before. The value of
``rawBase64`` (or ``RawBase64``) is a string that can be 140 MB long: it is scanned as it
comes (JSON escapes included, across chunk boundaries), checked as strict RFC 4648 base64 in
whole quanta (``strict_base64``: binascii's verdict, at SIMD speed), and its bytes written to a
spool file. Memory stays one chunk per request, whatever the file's size.

What a whole-body parser would report first is still reported first: invalid JSON, then the
fields in the model's order, then the base64. One exception, on purpose: a rawBase64 longer
than the limit is refused as soon as the limit is passed, without reading the rest.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pybase64
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from atoz_watcher.api.errors import BODY_NOT_JSON, BODY_NOT_OBJECT, ApiError
from atoz_watcher.api.models import UploadRequest
from atoz_watcher.storage import Spool

RAW_KEYS = ("rawBase64", "RawBase64")  # pydantic's AliasChoices order: the first present wins
# The fields around rawBase64, as JSON text: far more than any valid request needs.
FIELDS_LIMIT = 1024 * 1024
# What FastAPI answers when the body cannot even be decoded (bad UTF-8, nesting too deep).
BODY_UNPARSABLE = "There was an error parsing the body"
FIELDS_TOO_LARGE = (
    f"The request body is too large: the fields other than rawBase64 exceed {FIELDS_LIMIT} bytes"
)
_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_CONTROL = re.compile(rb"[\x00-\x1f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")
_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_BOM = b"\xef\xbb\xbf"
_ENCODING_BYTES = 4  # json.detect_encoding looks at the first four
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)
_QUOTE, _BACKSLASH, _PAD = ord('"'), ord("\\"), ord("=")
_QUANTUM = 4  # base64 characters for three bytes
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_SCALAR_END = frozenset(b", \t\n\r]}")


def too_large(max_bytes: int) -> ApiError:
    return ApiError(400, f"rawBase64 is larger than the limit of {max_bytes} bytes")


def encoded_limit(max_bytes: int) -> int:
    """The longest base64 text whose content can be at most ``max_bytes``."""
    return 4 * -(-max_bytes // 3)


class RawValue:
    """One rawBase64 string: strict base64 decoded into ``spool`` as its text arrives."""

    def __init__(self, spool: Spool, *, max_bytes: int) -> None:
        self.spool = spool
        self.chars = 0  # the string's length so far (for the size check and the row's limit)
        self.bad = False  # not strict RFC 4648 base64: the spool is gone
        self.lone_surrogate = False  # a \ud800-style escape no text column can hold
        self._max_bytes = max_bytes
        self._max_chars = encoded_limit(max_bytes)
        self._carry = b""  # the last 0-3 characters, waiting for the rest of their quantum
        self._padded = False  # a quantum with "=" was decoded: it must be the last
        self._high = False  # a high surrogate escape waits for its low half
        self._utf8: codecs.IncrementalDecoder | None = None  # checks the text once it is bad

    def text(self, chunk: memoryview) -> None:
        """Characters of the string as they are in the body (no quote, no backslash); a view,
        so that a batch is decoded where it lies, never copied."""
        if not chunk:
            return
        self._unpaired()
        self._count(len(chunk))
        if self.bad:
            self._check_json(bytes(chunk))
            return
        if self._carry:  # complete the quantum the last text left open
            head = self._carry + bytes(chunk[: 4 - len(self._carry)])
            chunk = chunk[4 - len(self._carry) :]
            self._carry = b""
            if len(head) < 4:  # noqa: PLR2004 - a quantum
                self._carry = head
                return
            if not self._decode(head):
                self._fail(head + bytes(chunk))
                return
        cut = len(chunk) - len(chunk) % 4
        self._carry = bytes(chunk[cut:])
        if cut and not self._decode(chunk[:cut]):
            self._fail(bytes(chunk))

    def escaped(self, char: str) -> None:
        """A character written as a two-character escape (``\\/``)."""
        self._unpaired()
        if ord(char) in _BASE64_ALPHABET:
            self.text(memoryview(char.encode("ascii")))
            return
        self._count(1)
        self._fail(self._carry)

    def code_point(self, value: int) -> None:
        """A ``\\uXXXX`` escape."""
        if value in _LOW:
            if not self._high:
                self.lone_surrogate = True
            self._high = False
            self._fail(self._carry)  # a character outside ASCII: never base64
            return
        self._unpaired()
        if value in _HIGH:
            self._high = True
            self._count(1)
            self._fail(self._carry)
            return
        self.escaped(chr(value))

    def end(self) -> None:
        """The closing quote: what is left must be complete. The spool is made durable by
        ``UploadBody.finish`` (off the event loop), and only the one that is stored."""
        self._unpaired()
        if self._carry and not self.bad:
            self._fail(self._carry)  # a quantum cut short: "QUJDRA"
        if self._utf8 is not None:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ApiError(400, BODY_UNPARSABLE) from None

    def _unpaired(self) -> None:
        if self._high:
            self._high = False
            self.lone_surrogate = True

    def _count(self, chars: int) -> None:
        self.chars += chars
        if self.chars > self._max_chars:
            raise too_large(self._max_bytes)

    def _decode(self, quanta: bytes | memoryview) -> bool:
        """Whole quanta into the spool; False when they are not strict base64."""
        if self._padded:
            return False  # data after the padding: "QQ==QQ=="
        pieces = strict_base64(quanta)
        if pieces is None:
            return False
        self._padded = quanta[-1] == _PAD
        if self.spool.size + sum(len(piece) for piece in pieces) > self._max_bytes:
            raise too_large(self._max_bytes)
        for piece in pieces:
            self.spool.write(piece)
        return True

    def _fail(self, unchecked: bytes) -> None:
        """Not base64 after all: drop the spool; the rest of the string is still checked as
        JSON text (a control character or bad UTF-8 is the body's error, not the field's)."""
        if not self.bad:
            self.bad = True
            self.spool.discard()
        self._carry = b""
        self._check_json(unchecked)

    def _check_json(self, chunk: bytes) -> None:
        if not chunk:
            return
        if _CONTROL.search(chunk):
            raise ApiError(400, BODY_NOT_JSON)
        if self._utf8 is None:
            self._utf8 = codecs.getincrementaldecoder("utf-8")()
        try:
            self._utf8.decode(chunk)
        except UnicodeDecodeError:
            raise ApiError(400, BODY_UNPARSABLE) from None


def strict_base64(quanta: bytes | memoryview) -> tuple[bytes, ...] | None:
    """Whole quanta decoded as ``binascii.a2b_base64(strict_mode=True)`` decodes them (its
    bytes, in one or two pieces), or None where it refuses them.

    binascii decodes about 250 MB/s and holds the GIL meanwhile: most of an Upload's time. The
    letters before a padded last quantum go to pybase64's SIMD decoder instead, and only when
    they are letters of the 64 and nothing else can its answer be taken: ``validate=True``
    refuses any other byte and the length (three bytes for every four letters) proves no
    padding was read. Anything else (padding, a stray byte) is binascii's to judge, whole.
    """
    letters = len(quanta) - _QUANTUM if quanta[-1] == _PAD else len(quanta)
    head = _letters_only(quanta[:letters])
    if head is not None:
        if letters == len(quanta):
            return (head,)
        with contextlib.suppress(binascii.Error):
            return (head, binascii.a2b_base64(quanta[letters:], strict_mode=True))
    try:
        return (binascii.a2b_base64(quanta, strict_mode=True),)
    except binascii.Error:
        return None


def _letters_only(letters: bytes | memoryview) -> bytes | None:
    """The bytes of whole quanta of base64 letters (no padding), or None for anything else."""
    try:
        data = pybase64.b64decode(letters, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if len(data) * _QUANTUM == len(letters) * 3 else None


@dataclass(frozen=True, slots=True)
class ParsedUpload:
    request: UploadRequest  # raw_base64 is a stand-in: the content is in ``raw``
    raw: RawValue


class _State:
    START = 0
    FIRST_KEY = 1  # after "{": a key or "}"
    NEXT_KEY = 2  # after ",": a key
    KEY = 3
    COLON = 4
    VALUE = 5
    SMALL = 6  # a value kept as JSON text
    RAW = 7  # the rawBase64 string
    AFTER_VALUE = 8
    END = 9
    NOT_OBJECT = 10  # the body does not start with "{": kept (bounded) to say why


class UploadBody:
    """Feed it the body's chunks, then ``finish()`` for the validated request; ``discard()``
    in every case (it removes a spool no one took)."""

    def __init__(self, *, max_bytes: int, new_spool: Callable[[], Spool]) -> None:
        self._max_bytes = max_bytes
        self._new_spool = new_spool
        self._state = _State.START
        self._pending = b""  # an escape or a BOM cut by a chunk boundary
        self._received = 0
        self._fields = bytearray(b"{")  # the small fields, as a JSON object's text
        self._key = bytearray()
        self._key_name = ""
        self._in_string = False
        self._escape = False
        self._depth = 0
        self._raws: dict[str, RawValue] = {}  # the last rawBase64 string of each spelling
        self._current: RawValue | None = None
        self._head = b""  # the first bytes, until they tell the encoding
        self._transcoder: codecs.IncrementalDecoder | None = None  # UTF-16 or UTF-32
        self._encoding_known = False

    # -- input -------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if not self._encoding_known:
            self._head += chunk
            if len(self._head) < _ENCODING_BYTES:
                return
            chunk = self._start()
        elif self._transcoder is not None:
            chunk = _utf8(self._transcoder, chunk)
        self._scan(chunk)

    def _start(self) -> bytes:
        """The encoding, as json.loads detects it: UTF-8 (a byte order mark is dropped), or
        UTF-16/32, read as UTF-8 from here on."""
        self._encoding_known = True
        head, self._head = self._head, b""
        encoding = json.detect_encoding(head)
        if encoding == "utf-8-sig":
            return head.removeprefix(_BOM)
        if encoding == "utf-8":
            return head
        self._transcoder = codecs.getincrementaldecoder(encoding)()
        return _utf8(self._transcoder, head)

    def _scan(self, chunk: bytes) -> None:
        data = self._pending + chunk if self._pending else chunk
        self._pending = b""
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _State.RAW:
                pos = self._raw_string(data, pos)
            elif state == _State.KEY:
                pos = self._key_text(data, pos)
            elif state == _State.SMALL:
                pos = self._small_value(data, pos)
            elif state == _State.NOT_OBJECT:
                self._keep(data[pos:])
                pos = end
            else:
                pos = _skip_whitespace(data, pos)
                if pos < end:
                    pos = self._structure(data, pos)

    def _structure(self, data: bytes, pos: int) -> int:  # noqa: C901, PLR0911 - one state each
        """Between tokens (whitespace skipped): the next structural character."""
        char = data[pos]
        state = self._state
        if state == _State.START:
            if char == ord("{"):
                self._state = _State.FIRST_KEY
                return pos + 1
            self._state = _State.NOT_OBJECT
            self._fields = bytearray()
            return pos
        if state in {_State.FIRST_KEY, _State.NEXT_KEY}:
            if char == _QUOTE:
                self._state = _State.KEY
                self._key = bytearray()
                return pos + 1
            if char == ord("}") and state == _State.FIRST_KEY:
                self._state = _State.END
                return pos + 1
        elif state == _State.COLON:
            if char == ord(":"):
                self._state = _State.VALUE
                return pos + 1
        elif state == _State.VALUE:
            return self._value_start(data, pos)
        elif state == _State.AFTER_VALUE:
            if char == ord(","):
                self._state = _State.NEXT_KEY
                return pos + 1
            if char == ord("}"):
                self._state = _State.END
                return pos + 1
        raise ApiError(400, BODY_NOT_JSON)

    def _key_text(self, data: bytes, pos: int) -> int:
        end = len(data)
        start = pos
        while pos < end:
            char = data[pos]
            if self._escape:
                self._escape = False
            elif char == _BACKSLASH:
                self._escape = True
            elif char == _QUOTE:
                self._key += data[start:pos]
                name = _decode_json(b'"' + bytes(self._key) + b'"')
                self._key_name = name if isinstance(name, str) else ""
                self._state = _State.COLON
                return pos + 1
            pos += 1
        self._key += data[start:pos]
        if len(self._key) > FIELDS_LIMIT:
            raise ApiError(413, FIELDS_TOO_LARGE)
        return pos

    def _value_start(self, data: bytes, pos: int) -> int:
        if self._key_name in RAW_KEYS and data[pos] == _QUOTE:
            previous = self._raws.pop(self._key_name, None)
            if previous is not None:  # a repeated key: the last one counts, as in json.loads
                previous.spool.discard()
            self._current = RawValue(self._new_spool(), max_bytes=self._max_bytes)
            self._raws[self._key_name] = self._current
            self._state = _State.RAW
            return pos + 1
        self._keep(b'"' + bytes(self._key) + b'":')
        self._state = _State.SMALL
        self._depth = 0
        self._in_string = False
        return pos

    def _small_value(self, data: bytes, pos: int) -> int:  # noqa: C901 - a byte scanner
        """A value other than rawBase64, kept as it is; json.loads judges it at the end."""
        end = len(data)
        start = pos
        done = False
        while pos < end:
            char = data[pos]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == _BACKSLASH:
                    self._escape = True
                elif char == _QUOTE:
                    self._in_string = False
                    if self._depth == 0:
                        pos += 1
                        done = True
                        break
            elif char == _QUOTE:
                self._in_string = True
            elif char in _OPEN:
                self._depth += 1
            elif char in _CLOSE and self._depth > 0:
                self._depth -= 1
                if self._depth == 0:
                    pos += 1
                    done = True
                    break
            elif self._depth == 0 and char in _SCALAR_END:
                done = True
                break
            pos += 1
        self._keep(data[start:pos])
        if done:
            self._keep(b",")
            self._state = _State.AFTER_VALUE
        return pos

    def _raw_string(self, data: bytes, pos: int) -> int:
        raw = self._current
        assert raw is not None  # noqa: S101 - set with the RAW state
        view = memoryview(data)
        end = len(data)
        quote = data.find(b'"', pos)
        while pos < end:
            if quote != -1 and quote < pos:
                quote = data.find(b'"', pos)
            stop = end if quote == -1 else quote
            backslash = data.find(b"\\", pos, stop)
            if backslash != -1:
                stop = backslash
            raw.text(view[pos:stop])
            pos = stop
            if pos == end:
                break
            if data[pos] == _QUOTE:
                raw.end()
                self._keep(f'"{self._key_name}":{_stand_in(raw)},'.encode())
                self._current = None
                self._state = _State.AFTER_VALUE
                return pos + 1
            pos = self._escape_sequence(raw, data, pos)
        return pos

    def _escape_sequence(self, raw: RawValue, data: bytes, pos: int) -> int:
        """The escape at ``pos`` (a backslash); when the chunk ends inside it, it waits."""
        if pos + 1 >= len(data):
            self._pending = data[pos:]
            return len(data)
        kind = data[pos + 1]
        if kind == ord("u"):
            if pos + 6 > len(data):
                self._pending = data[pos:]
                return len(data)
            digits = data[pos + 2 : pos + 6]
            if not _HEX.fullmatch(digits):
                raise ApiError(400, BODY_NOT_JSON)
            raw.code_point(int(digits, 16))
            return pos + 6
        char = _ESCAPES.get(kind)
        if char is None:
            raise ApiError(400, BODY_NOT_JSON)
        raw.escaped(char)
        return pos + 2

    def _keep(self, text: bytes) -> None:
        self._fields += text
        if len(self._fields) > FIELDS_LIMIT:
            if self._state == _State.NOT_OBJECT:
                raise ApiError(400, BODY_NOT_OBJECT)
            raise ApiError(413, FIELDS_TOO_LARGE)

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> ParsedUpload:
        """The whole body has arrived: the request, validated as FastAPI would, or its 400;
        its spool fsynced (a blocking call: not on the event loop)."""
        if not self._encoding_known:
            self._scan(self._start())
        if self._transcoder is not None:
            self._scan(_utf8(self._transcoder, b"", final=True))
        if self._state == _State.NOT_OBJECT or (self._state == _State.START and not self._received):
            if self._state == _State.NOT_OBJECT:
                _decode_json(bytes(self._fields))  # not JSON at all, or JSON but no object
            raise ApiError(400, BODY_NOT_OBJECT)
        if self._state != _State.END or self._pending:
            raise ApiError(400, BODY_NOT_JSON)
        if self._fields.endswith(b","):
            self._fields[-1:] = b"}"
        else:
            self._fields += b"}"
        fields = _decode_json(bytes(self._fields))
        try:
            request = UploadRequest.model_validate(fields)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            raise RequestValidationError(errors) from None
        # pydantic took the value of the first spelling present; the rest is of no use.
        assert isinstance(fields, dict)  # noqa: S101 - the model accepted it
        chosen = next(key for key in RAW_KEYS if key in fields)
        raw = self._raws.get(chosen)  # discard() still removes it if storage does not take it
        if raw is None:  # not reached: a value that is not a string fails the model
            raise ApiError(400, "rawBase64 is invalid: Input should be a valid string")
        if not raw.bad:
            raw.spool.finish()  # fsynced: storage may take it
        return ParsedUpload(request=request, raw=raw)

    def holds_spools(self) -> bool:
        """True while a spool is left to ``discard``."""
        return bool(self._raws)

    def discard(self) -> None:
        """Remove every spool storage has not taken (a failed or refused upload)."""
        for raw in self._raws.values():
            raw.spool.discard()
        self._raws.clear()


def _utf8(decoder: codecs.IncrementalDecoder, data: bytes, *, final: bool = False) -> bytes:
    try:
        return decoder.decode(data, final).encode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ApiError(400, BODY_UNPARSABLE) from None


def _skip_whitespace(data: bytes, pos: int) -> int:
    match = _WHITESPACE.match(data, pos)
    return pos if match is None else match.end()


def _stand_in(raw: RawValue) -> str:
    """What the model validates in place of the streamed string: the same verdict on the
    things it checks (present, not empty, valid Unicode), without the content."""
    if raw.lone_surrogate:
        return '"\\ud800"'
    return '"A"' if raw.chars else '""'


def _decode_json(text: bytes) -> object:
    """``json.loads`` with FastAPI's answers for what it cannot read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ApiError(400, BODY_NOT_JSON) from None
    except (UnicodeDecodeError, RecursionError):
        raise ApiError(400, BODY_UNPARSABLE) from None
