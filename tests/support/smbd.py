"""A real Samba server on loopback (Debian's ``samba`` package), for tests/watch/test_smb.py and
bench/shares.py: the Windows share's stand-in.

``smbd`` runs in the foreground on 127.0.0.1 and a free high port, with its own smb.conf, lock,
state, cache and private folders and passdb, all in a folder given, and one share: the folder
given (an A-to-Z root). The account is the user running it, with a random password, also
written to a file (mode 600) as ``[watcher.smb] password_file`` wants it. No pytest here: the
tests wrap it (tests/support/samba.py). ``Workstation`` writes to the share through the SMB
protocol, as a Windows workstation does.
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import smbclient

SMBD = "/usr/sbin/smbd"
SMBPASSWD = "/usr/bin/smbpasswd"
START_S = 30.0


def why_no_smbd() -> str:
    """Why smbd cannot run here ("" when it can)."""
    if not Path(SMBD).exists() or not Path(SMBPASSWD).exists():
        return "smbd is not installed (apt-get install samba smbclient)"
    if os.geteuid() != 0:
        return "smbd needs root to serve another user's files"
    return ""


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


class SambaError(Exception):
    """smbd did not start."""


class Samba:
    """``smbd`` serving ``path`` as ``share`` on 127.0.0.1:``port``; ``stop`` in a finally."""

    share = "OpenDentImages"

    def __init__(self, home: Path, path: Path, *, notify: bool = True) -> None:
        self.home = home
        self.path = path
        self.port = free_port()
        self.username = pwd.getpwuid(os.geteuid()).pw_name
        self.password = "Pw-" + secrets.token_urlsafe(12)
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
                    raise SambaError(f"smbd did not listen on 127.0.0.1:{self.port}") from None
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


class Workstation:
    """An SMB client writing to the share, as Open Dental's workstations do."""

    def __init__(self, samba: Samba) -> None:
        self._samba = samba
        self._cache: dict[str, Any] = {}
        smbclient.register_session(
            "127.0.0.1",
            username=samba.username,
            password=samba.password,
            port=samba.port,
            connection_timeout=10,
            connection_cache=self._cache,
        )

    def _unc(self, relative: str) -> str:
        return "\\\\127.0.0.1\\" + self._samba.share + "\\" + relative.replace("/", "\\")

    def _kwargs(self) -> dict[str, Any]:
        return {"port": self._samba.port, "connection_cache": self._cache}

    def mkdir(self, relative: str) -> None:
        smbclient.makedirs(self._unc(relative), exist_ok=True, **self._kwargs())

    def write(self, relative: str, data: bytes) -> None:
        with smbclient.open_file(self._unc(relative), "wb", **self._kwargs()) as handle:
            handle.write(data)

    def rename(self, source: str, target: str) -> None:
        smbclient.rename(self._unc(source), self._unc(target), **self._kwargs())

    def close(self) -> None:
        smbclient.reset_connection_cache(connection_cache=self._cache)
