"""A real SFTP server on loopback for the SFTP endpoints, and the API configured to reach it.

The server is asyncssh, in this process, on 127.0.0.1 (a free port), in a thread and event loop
of its own, chrooted to a temporary folder, with a generated host key and password logins.
Nothing leaves 127.0.0.0/8. Its password is registered as a secret (tests/support/leaks.py).
A test module that wants the ``site`` fixture imports it by name.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from atoz_watcher.config.sections import SftpSettings
from atoz_watcher.config.settings import Settings
from tests.support.api import api_settings, serving
from tests.support.clinics import Clinic
from tests.support.leaks import SECRETS

USER, PASSWORD = "myUsername", "s3cret-Pa55-word"
SECRETS.add(PASSWORD, what="SFTP password")
UPLOAD_SFTP = "/api/v1/documents/UploadSftp"
DOWNLOAD_SFTP = "/api/v1/documents/DownloadSftp"
THUMBNAILS = "/api/v1/documents/Thumbnails"
DOWNLOAD_MOUNT = "/api/v1/documents/DownloadMount"
STOP_S = 30.0


@dataclass
class SftpSite:
    """A real SFTP server on 127.0.0.1, chrooted to ``root``; ``connections`` counts the TCP
    connections it accepted, ``disconnections`` those that ended."""

    root: Path
    users: dict[str, str]
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )
    port: int = 0
    connections: int = 0
    disconnections: int = 0
    # The SFTP server each session gets (a subclass that misbehaves, for the fault tests).
    sftp_server: type[asyncssh.SFTPServer] = asyncssh.SFTPServer
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _acceptor: asyncssh.SSHAcceptor | None = None

    def known_hosts_line(self, key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.host_key).export_public_key().decode("ascii")
        return f"[127.0.0.1]:{self.port} {public}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftp-site")
        self._thread.start()
        self._acceptor = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)
        self.port = self._acceptor.get_port()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        site = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                del conn
                site.connections += 1

            def connection_lost(self, exc: Exception | None) -> None:
                del exc
                site.disconnections += 1

            def begin_auth(self, username: str) -> bool:
                del username
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return site.users.get(username) == password

        chroot = str(self.root).encode()
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=Server,
            server_host_keys=[self.host_key],
            sftp_factory=lambda chan: self.sftp_server(chan, chroot=chroot),
            allow_scp=False,
        )

    def stop(self) -> None:
        async def close() -> None:
            if self._acceptor is not None:
                self._acceptor.close()
                await self._acceptor.wait_closed()
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            # Join the loop's executor threads (file I/O, name lookups): loop.close() would
            # only ask them to stop, and the suite's thread-leak check could see one still up.
            await asyncio.get_running_loop().shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(STOP_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(STOP_S)
        assert not self._thread.is_alive()
        self._loop.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SftpSite]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = SftpSite(root=root, users={USER: PASSWORD})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def known_hosts(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / f"known_hosts-{uuid.uuid4().hex[:8]}"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def with_sftp(settings: Settings, **sftp: Any) -> Settings:
    return settings.model_copy(update={"sftp": SftpSettings(**sftp)})


@contextmanager
def sftp_api(
    clinic: Clinic,
    site: SftpSite,
    tmp_path: Path,
    *,
    storage: str = "LocalAtoZ",
    thumbnails: bool = False,
    **sftp: Any,
) -> Iterator[httpx.Client]:
    options: dict[str, Any] = {
        "known_hosts": known_hosts(tmp_path, site.known_hosts_line()),
        "connect_timeout": 10,
        # The site is on loopback and a free port: both refused unless allowed.
        "allow_hosts": ("127.0.0.1",),
        "allow_ports": (site.port,),
        **sftp,
    }
    settings = with_sftp(
        api_settings(clinic.world, storage=storage, thumbnails=thumbnails), **options
    )
    with serving(settings, clinic.world) as api:
        yield api


def creds(address: str, site: SftpSite, **more: Any) -> dict[str, Any]:
    return {
        "SftpAddress": f"127.0.0.1/{address}",
        "SftpPort": site.port,
        "SftpUsername": USER,
        "SftpPassword": PASSWORD,
        **more,
    }


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
