"""The real Samba server for the tests (tests/support/smbd.py), and a relay that can cut it off.

``Relay`` sits between the watcher and smbd: ``cut()`` closes every connection through it (the
network dropped), ``hold()`` stops passing the server's answers on (a stalled link), as a
Windows server's network does to a Linux client.

Where smbd is not installed, the tests that need it are skipped, except under CI (CI=true),
where that is a failure: ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.support.leaks import SECRETS
from tests.support.smbd import Samba, SambaError, why_no_smbd


def require_smbd() -> None:
    """Skip (or, under CI, fail) when Samba is not installed or cannot run here."""
    if problem := why_no_smbd():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI must run the SMB tests (.ci/run installs samba)")
        pytest.skip(problem)


def start_samba(home: Path, path: Path, *, notify: bool = True) -> Samba:
    """smbd serving ``path``; its password registered as a secret (never to be logged)."""
    require_smbd()
    try:
        samba = Samba(home, path, notify=notify)
    except SambaError as exc:
        pytest.fail(str(exc))
    SECRETS.add(samba.password, what="the SMB password")
    return samba


class Relay:
    """127.0.0.1:``port`` -> 127.0.0.1:``target``, one thread; ``close`` in a finally."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ)
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._from_server: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._held = threading.Event()
        self._closed = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, name="test-relay", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Close every connection now (new ones are accepted again)."""
        with self._lock:
            self._cut = True

    def hold(self) -> None:
        """Stop passing the server's answers on (they wait in the relay)."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                with self._lock:
                    cut, self._cut = self._cut, False
                if cut:
                    self._close_pairs()
                for key, _ in self._selector.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._server:
                        self._accept()
                    elif sock in self._pairs and not (
                        sock in self._from_server and self._held.is_set()
                    ):
                        self._pass(sock)
                if self._held.is_set():
                    time.sleep(0.01)  # the held answers keep the selector ready: do not spin
        finally:
            self._close_pairs()
            self._selector.close()
            self._server.close()

    def _accept(self) -> None:
        client, _ = self._server.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        self.accepted += 1
        self._pairs[client], self._pairs[upstream] = upstream, client
        self._from_server.add(upstream)
        for sock in (client, upstream):
            self._selector.register(sock, selectors.EVENT_READ)

    def _pass(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
            if data:
                self._pairs[sock].sendall(data)
                return
        except OSError:
            pass
        self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        other = self._pairs.pop(sock, None)
        for each in (sock, other):
            if each is None:
                continue
            self._pairs.pop(each, None)
            self._from_server.discard(each)
            self._selector.unregister(each)
            each.close()

    def _close_pairs(self) -> None:
        for sock in list(self._pairs):
            if sock in self._pairs:
                self._close_pair(sock)
