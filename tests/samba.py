"""A real Samba server for the tests (Debian's ``samba`` package), and a relay that can cut it off.

``smbd`` runs in the foreground on 127.0.0.1 and a free high port, with its own smb.conf, lock,
state, cache and private folders and passdb, all in a temporary folder, and one share: the
folder given (a test world's A-to-Z root). The account is the user running the tests, with a
random password registered as a secret (it must never show in a log line or an error).

``Relay`` sits between the watcher and smbd: ``cut()`` closes every connection through it (the
network dropped), ``hold()`` stops passing the server's answers on (a stalled link), as a
Windows server's network does to a Linux client.

Where smbd is not installed, the tests that need it are skipped, except under CI (CI=true),
where that is a failure: ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import selectors
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import SECRETS

SMBD = "/usr/sbin/smbd"
SMBPASSWD = "/usr/bin/smbpasswd"
START_S = 30.0


def require_smbd() -> None:
    """Skip (or, under CI, fail) when Samba is not installed or cannot run here."""
    problem = ""
    if not Path(SMBD).exists() or not Path(SMBPASSWD).exists():
        problem = "smbd is not installed (apt-get install samba smbclient)"
    elif os.geteuid() != 0:
        problem = "smbd needs root to serve another user's files"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI must run the SMB tests (.ci/run installs samba)")
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CONF = """\
[global]
server role = standalone server
smb ports = {port}
interfaces = 127.0.0.1
bind interfaces only = yes
lock directory = {home}/lock
state directory = {home}/state
cache directory = {home}/cache
private dir = {home}/private
pid directory = {home}/pid
ncalrpc dir = {home}/ncalrpc
passdb backend = tdbsam:{home}/private/passdb.tdb
log file = {home}/smbd.log
log level = 0
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
map to guest = never
server min protocol = SMB2_10
change notify = {notify}

[{share}]
path = {path}
read only = no
"""


class Samba:
    """``smbd`` serving ``path`` as ``share`` on 127.0.0.1:``port``; ``stop`` in a finally."""

    share = "OpenDentImages"

    def __init__(self, home: Path, path: Path, *, notify: bool = True) -> None:
        self.home = home
        self.path = path
        self.port = free_port()
        self.username = pwd.getpwuid(os.geteuid()).pw_name
        self.password = "Pw-" + secrets.token_urlsafe(12)
        SECRETS.add(self.password, what="the SMB password")
        for sub in ("lock", "state", "cache", "private", "pid", "ncalrpc"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.conf = home / "smb.conf"
        self.conf.write_text(
            CONF.format(
                port=self.port,
                home=home,
                share=self.share,
                path=path,
                notify="yes" if notify else "no",
            )
        )
        self.password_file = home / "password"
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)
        subprocess.run(
            [SMBPASSWD, "-c", str(self.conf), "-a", "-s", self.username],
            input=f"{self.password}\n{self.password}\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._log = (home / "smbd.stdout.log").open("wb")
        self.proc = subprocess.Popen(
            [SMBD, "--foreground", "--no-process-group", "-s", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            # smbd signals its whole process group when it ends: not the test run's.
            start_new_session=True,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"smbd did not listen on 127.0.0.1:{self.port}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


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
