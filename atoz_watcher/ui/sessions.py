"""Logged-in sessions, in memory, owned by the page's app (one store per app, nothing global).

A session's cookie is ``<id>.<HMAC-SHA256 of the id>``, under a key made at random when the
store is made: a cookie this process did not issue (forged, altered, or from before a restart)
is refused without a look-up. Each session has its CSRF token, which every form the page
renders carries; it ends after ``idle_s`` unused, or at logout.

The login form, before any session exists, carries a token of its own, kept in a short-lived
cookie of its own (``LoginTokens``): a login form posted from another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

COOKIE = "atoz_ui"
LOGIN_COOKIE = "atoz_ui_login"
# How long a login form may stay open before it is posted (seconds).
LOGIN_TOKEN_S = 30 * 60
_ID_BYTES = 32

Clock = Callable[[], float]


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    name: str
    may_move: bool
    csrf: str = field(repr=False)
    last_used: float


class Ended(Enum):
    """A cookie this store issued whose session is over (idle too long, or logged out)."""

    ENDED = "ended"


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("ascii"), hashlib.sha256).hexdigest()


def _signed(key: bytes, cookie: str) -> str | None:
    """The value of ``<value>.<hmac>`` when its HMAC is right, else None."""
    value, dot, mac = cookie.rpartition(".")
    if not dot or not value or not value.isascii():
        return None
    if not hmac.compare_digest(_sign(key, value), mac):
        return None
    return value


class SessionStore:
    """The sessions of one app: ``start``, ``find``, ``end``."""

    def __init__(self, *, idle_s: float, clock: Clock = time.monotonic) -> None:
        self._idle_s = idle_s
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def start(self, name: str, *, may_move: bool) -> tuple[str, Session]:
        """A new session for ``name``: its cookie value and the session."""
        session_id = secrets.token_urlsafe(_ID_BYTES)
        now = self._clock()
        session = Session(session_id, name, may_move, secrets.token_urlsafe(32), now)
        with self._lock:
            self._sweep(now)
            self._sessions[session_id] = session
        return f"{session_id}.{_sign(self._key, session_id)}", session

    def find(self, cookie: str | None) -> Session | Ended | None:
        """The live session of ``cookie`` (now used again); ``Ended`` when this store issued
        it but it is over; None when there is no cookie or this store never issued it."""
        if not cookie:
            return None
        session_id = _signed(self._key, cookie)
        if session_id is None:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return Ended.ENDED
            if now - session.last_used > self._idle_s:
                del self._sessions[session_id]
                return Ended.ENDED
            session.last_used = now
            return session

    def end(self, cookie: str | None) -> None:
        """Log out: the session of ``cookie`` is forgotten (nothing when there is none)."""
        session_id = _signed(self._key, cookie) if cookie else None
        if session_id is not None:
            with self._lock:
                self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _sweep(self, now: float) -> None:
        # Sessions nobody comes back to would otherwise stay forever.
        idle = [key for key, s in self._sessions.items() if now - s.last_used > self._idle_s]
        for key in idle:
            del self._sessions[key]


class LoginTokens:
    """The login form's CSRF token: the form's hidden field, and the same token signed in a
    cookie of its own (``LOGIN_COOKIE``), which the POST must bring back."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def issue(self) -> tuple[str, str]:
        """A new token: (the cookie's value, the form field's value)."""
        token = secrets.token_urlsafe(32)
        stamped = f"{token}:{int(self._clock())}"
        return f"{stamped}.{_sign(self._key, stamped)}", token

    def accepts(self, cookie: str | None, field_value: str | None) -> bool:
        """The form's token is the cookie's, which this app signed less than
        LOGIN_TOKEN_S ago."""
        if not cookie or not field_value:
            return False
        stamped = _signed(self._key, cookie)
        if stamped is None:
            return False
        token, _, issued = stamped.rpartition(":")
        if not issued.isdigit() or self._clock() - int(issued) > LOGIN_TOKEN_S:
            return False
        return hmac.compare_digest(token.encode(), field_value.encode())
