"""May a download reach this URL? The materialiser's guard against SSRF.

A SetByUrl row holds any URL a client chose; fetching it blindly would let that client reach the
practice's router, a NAS admin page or a cloud metadata service (``169.254.169.254``) from inside
the network. A URL may be fetched when its scheme is http or https and EVERY address its host
resolves to is a public one; a host on ``allow_hosts`` (the name as written in the URL, or one of
the addresses it resolves to, or a network such as ``10.1.2.0/24``) may be internal.

Addresses are judged after resolution, so numeric tricks (``http://2130706433/``,
``http://0x7f.1/``, ``[::ffff:127.0.0.1]``) are judged as the address the system resolver makes
of them. IPv4 addresses embedded in IPv6 (mapped, 6to4, NAT64) are judged as that IPv4 address.

Checking a URL and then connecting to its name would leave a gap: the name may resolve to a
public address for the check and to ``127.0.0.1`` a moment later (DNS rebinding). So the check
is made a second time where the connection is opened: ``guarded_http.GuardedTransport`` gives
httpx a network backend that resolves the host once, judges every address, and connects to those
very addresses. TLS still verifies the certificate against the host name (httpcore passes the
name as SNI, not the address), and no proxy is ever used (a proxy would do its own resolving).
The SFTP endpoints use the same guard (``NetGuard.addresses``) and connect to the addresses it
returned.

This module imports neither httpx nor asyncssh: checking an address costs nothing to load.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from atoz_watcher.errors import AtozError

if TYPE_CHECKING:  # httpx is imported by check_url: the SFTP endpoints use the guard without it
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES: Final = frozenset({"http", "https"})

# Ranges that are not public whatever this Python's ipaddress tables say (they gained several
# of these in 3.11.10/3.12.4): shared address space, benchmarking, documentation, "this
# network", the IPv6 discard, documentation, ULA, site-local and local-use NAT64 prefixes.
_NOT_PUBLIC: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
# NAT64's well-known prefix: the last 32 bits are the IPv4 address the gateway connects to.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedError(AtozError):
    """A URL or an address a download must not reach; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Resolver(Protocol):
    def __call__(self, host: str, port: int) -> Sequence[str]:
        """The IP addresses of ``host``, as strings; raises OSError when it cannot resolve."""
        ...


def system_resolver(host: str, port: int) -> list[str]:
    """``socket.getaddrinfo``'s addresses for a TCP connection, in its order, without repeats."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64); None otherwise."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (loopback, private, ...); None when it is."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = refusal(inner)
        return f"{reason} (as {inner}, inside {address})" if reason else None
    # Most specific first, so the reason names what the address is.
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (any(address in net for net in _NOT_PUBLIC), "not publicly routable"),
        (not address.is_global, "not publicly routable"),
    )
    for matched, what in checks:
        if matched:
            return f"{address} is a {what} address"
    return None


def _host_key(host: str) -> str:
    """A host as compared with the allow-list: lower case, no brackets, no final dot."""
    return host.strip().strip("[]").rstrip(".").lower()


class AllowList:
    """``allow_hosts``: host names, IP addresses and networks a download may reach anyway."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._names: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in entries:
            key = _host_key(entry)
            try:
                self._networks.append(ipaddress.ip_network(key, strict=False))
            except ValueError:
                self._names.add(key)

    def allows_host(self, host: str) -> bool:
        """The host as written in the URL: a name on the list, or an IP literal covered by it."""
        key = _host_key(host)
        try:
            return self.allows_address(_parse_address(key))
        except ValueError:
            return key in self._names

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self._networks)


class NetGuard:
    """Decides whether a URL may be fetched and which addresses a connection may use."""

    def __init__(self, allow_hosts: Iterable[str], *, resolver: Resolver = system_resolver) -> None:
        self._allow = AllowList(allow_hosts)
        self._resolver = resolver

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL when it may be fetched; raises RefusedError otherwise.

        Parsed by httpx, the parser that will make the request: a second parser could read a
        different host out of a crafted URL.
        """
        import httpx  # noqa: PLC0415 - only URLs need it; see TYPE_CHECKING above

        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise RefusedError("not a valid URL") from None
        if parsed.scheme not in SCHEMES:
            raise RefusedError(f"scheme {parsed.scheme or '(none)'!r} is not http or https")
        if not parsed.host:
            raise RefusedError("the URL has no host")
        self.addresses(parsed.raw_host.decode("ascii"), parsed.port or _default_port(parsed))
        return parsed

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and judge every address; raises RefusedError when any address
        is internal (and neither the host nor that address is allowed), OSError when the host
        cannot be resolved."""
        try:
            found = [_parse_address(a) for a in self._resolver(_host_key(host), port)]
        except UnicodeError:  # a name the IDNA codec rejects cannot be resolved either
            raise OSError(f"cannot resolve {host}") from None
        if not found:
            raise OSError(f"{host} has no addresses")
        if self._allow.allows_host(host):
            return found
        for address in found:
            reason = refusal(address)
            if reason is not None and not self._allow.allows_address(address):
                raise RefusedError(f"{host} resolves to {reason} and is not in allow_hosts")
        return found


def _parse_address(text: str) -> IPAddress:
    # An IPv6 link-local address may carry a scope ("fe80::1%eth0"); the scope does not change
    # what the address is.
    return ipaddress.ip_address(text.split("%", 1)[0])


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
