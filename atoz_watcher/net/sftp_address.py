"""Open Dental's ``SftpAddress`` and the SFTP endpoints' errors: pure, without asyncssh.

An ``SftpAddress`` is Open Dental's ``host/path...`` (``MySftpSite/myUsername/Documents/x.png``):
everything before the first ``/`` is the host, everything after it is the path, rooted at the
server's ``/`` (``/myUsername/Documents/x.png``). An IPv6 host is written in brackets
(``[::1]/x.png``).

Kept apart from ``sftp`` so that validating a request, or building the API, never imports
asyncssh (and cryptography with it): only a transfer does.
"""

from __future__ import annotations

import enum
import ipaddress
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from atoz_watcher.rules.naming import plain

DEFAULT_PORT: Final = 22
MAX_ADDRESS_CHARS: Final = 4096
# A host as written: a name or IPv4 address, or an IPv6 address in brackets.
# A host name is dot-separated labels, none empty (so never ".." or "."), or [an IPv6 address].
_HOST = re.compile(
    r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?|\[[0-9A-Fa-f:.%A-Za-z]{2,64}\]", re.ASCII
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}", re.ASCII)


class Failure(enum.StrEnum):
    ADDRESS = "address"  # SftpAddress is not host/path
    REFUSED_HOST = "refused-host"  # not in allow_hosts, or internal: never connected
    REFUSED_PORT = "refused-port"  # not in [sftp] allow_ports: never connected
    BUSY = "busy"  # [sftp] max_in_flight transfers already running: a 503, never connected
    CONNECT = "connect"  # no TCP connection, or the SSH handshake failed
    HOST_KEY = "host-key"  # the server's host key is not in known_hosts, or differs
    AUTH = "auth"  # user name or password refused
    NOT_FOUND = "not-found"
    PERMISSION = "permission"
    TOO_LARGE = "too-large"
    TIMEOUT = "timeout"
    TRANSFER = "transfer"  # any other SFTP or SSH failure during the transfer


class SftpError(Exception):
    """What failed, as a kind and a message a client can act on (never a password)."""

    def __init__(self, kind: Failure, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SftpAddress:
    host: str  # without brackets for IPv6
    path: str  # absolute, "/" at least; ends with "/" when the client wrote one

    @property
    def names_folder(self) -> bool:
        """Written as a folder: it ends with ``/``, or its last part has no extension."""
        return self.path.endswith("/") or not _EXTENSION.fullmatch(posixpath.splitext(self.path)[1])

    @property
    def file_name(self) -> str:
        """The last part of the path ("" for a folder written with a trailing ``/``)."""
        return posixpath.basename(self.path)


def parse_address(address: str) -> SftpAddress:
    """``host/path...`` -> host and the absolute path on the server."""
    if not address or len(address) > MAX_ADDRESS_CHARS:
        raise SftpError(Failure.ADDRESS, f"SftpAddress must be 1 to {MAX_ADDRESS_CHARS} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in address):  # noqa: PLR2004 - ASCII controls
        raise SftpError(Failure.ADDRESS, "SftpAddress must not contain control characters")
    host, _, rest = address.partition("/")
    if not _HOST.fullmatch(host):
        raise SftpError(
            Failure.ADDRESS,
            "SftpAddress must start with the SFTP site's host name or IP address, then the "
            "path (MySftpSite/folder/file.png)",
        )
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SftpError(
                Failure.ADDRESS, "SftpAddress: an address in brackets must be IPv6"
            ) from None
    return SftpAddress(host=host, path="/" + rest)


def host_allowed(host: str, allow_hosts: Sequence[str]) -> bool:
    """Is ``host`` (as written) allowed? Empty list: every host. Names compare without case
    (and without a final dot); IP addresses by value (``::1`` is ``0::1``), and within a listed
    network (``10.1.2.0/24``). Names are never resolved here."""
    if not allow_hosts:
        return True
    wanted = _ip(host)
    for allowed in allow_hosts:
        entry = allowed.strip().strip("[]")
        if entry.rstrip(".").lower() == host.rstrip(".").lower():
            return True
        network = _network(entry)
        if wanted is not None and network is not None and wanted in network:
            return True
    return False


def is_ip_literal(host: str) -> bool:
    return _ip(host) is not None


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where to connect and as whom. The password never shows in a repr."""

    address: SftpAddress
    port: int
    username: str
    password: str

    def __repr__(self) -> str:
        return (
            f"Credentials(host={self.address.host!r}, port={self.port}, "
            f"username={self.username!r}, password='***')"
        )

    @property
    def where(self) -> str:
        host = f"[{self.address.host}]" if ":" in self.address.host else self.address.host
        return f"{host}:{self.port}"


def target(address: SftpAddress, name: str, *, is_dir: bool) -> tuple[str, str]:
    """(folder, file name) for writing a file whose own name is ``name`` at ``address``."""
    if address.names_folder or is_dir:
        return address.path.rstrip("/") or "/", name
    folder, file_name = posixpath.split(address.path)
    return folder or "/", file_name


def require_plain(name: str) -> None:
    if not plain(name):
        raise SftpError(Failure.TRANSFER, f"Not a file name the SFTP site can take: {name!r}")
