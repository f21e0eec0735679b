"""netguard: which URLs and addresses a download may reach, judged after resolution.

Names are resolved by a table (no DNS query ever leaves the machine); the numeric forms go
through the C library's own parser with AI_NUMERICHOST, which never queries DNS either.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from atoz_watcher.net.guard import (
    AllowList,
    NetGuard,
    RefusedError,
    embedded_ipv4,
    refusal,
    system_resolver,
)
from atoz_watcher.net.guarded_http import GuardedTransport
from tests.support.sites import body, serving, table_resolver


def numeric_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo's own reading of numeric hosts ("2130706433", "0x7f.1"); never DNS."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return [str(info[4][0]) for info in infos]


NAMES = table_resolver(
    {
        "intranet.test": ["10.0.0.5"],
        "metadata.test": ["169.254.169.254"],
        "mixed.test": ["93.184.216.34", "192.168.1.20"],
        "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "v6local.test": ["fd00::5"],
        "files.test": ["127.0.0.1"],
    }
)


# -- single addresses ------------------------------------------------------------------------


class TestRefusal:
    @pytest.mark.parametrize(
        ("address", "what"),
        [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("0.0.0.0", "unspecified"),  # noqa: S104 - an address judged, not bound
            ("10.0.0.5", "private"),
            ("172.16.3.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "not publicly routable"),  # carrier-grade NAT
            ("198.18.0.1", "private"),
            ("192.0.2.1", "private"),  # documentation
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00::5", "private"),
            ("fec0::1", "not publicly routable"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
            ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
            ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
            ("64:ff9b::a00:5", "private"),  # NAT64 of 10.0.0.5
            ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
            ("64:ff9b:1::1", "reserved|not publicly routable"),  # by Python version,
        ],
    )
    def test_internal_addresses_are_refused(self, address: str, what: str) -> None:
        reason = refusal(ipaddress.ip_address(address))
        assert reason is not None
        assert any(word in reason for word in what.split("|"))

    @pytest.mark.parametrize(
        "address",
        [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",  # 6to4 of 8.8.8.8
            "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        ],
    )
    def test_public_addresses_pass(self, address: str) -> None:
        assert refusal(ipaddress.ip_address(address)) is None

    @pytest.mark.parametrize(
        ("address", "inner"),
        [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("2002:7f00:1::", "127.0.0.1"),
            ("64:ff9b::a00:5", "10.0.0.5"),
            ("2606:4700::1", None),
            ("10.0.0.5", None),
        ],
    )
    def test_embedded_ipv4(self, address: str, inner: str | None) -> None:
        found = embedded_ipv4(ipaddress.ip_address(address))
        assert (str(found) if found else None) == inner


class TestAllowList:
    @pytest.mark.parametrize(
        ("entries", "host", "address", "allowed"),
        [
            (["files.test"], "FILES.test", "10.0.0.5", True),
            (["files.test"], "files.test.", "10.0.0.5", True),
            (["files.test"], "other.test", "10.0.0.5", False),
            (["10.0.0.5"], "any.test", "10.0.0.5", True),
            (["10.0.0.0/8"], "any.test", "10.200.1.1", True),
            (["10.0.0.0/8"], "any.test", "192.168.0.1", False),
            (["[::1]"], "any.test", "::1", True),
            (["::1"], "[::1]", "127.0.0.1", True),
            ([], "files.test", "10.0.0.5", False),
        ],
    )
    def test_names_addresses_and_networks(
        self, entries: list[str], host: str, address: str, allowed: bool
    ) -> None:
        allow = AllowList(entries)
        ip = ipaddress.ip_address(address)
        assert (allow.allows_host(host) or allow.allows_address(ip)) is allowed


# -- URLs ------------------------------------------------------------------------------------


class TestCheckUrl:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ftp://files.test/a.png", "scheme 'ftp'"),
            ("file:///etc/passwd", "scheme 'file'"),
            ("gopher://public.test/", "scheme 'gopher'"),
            ("javascript:alert(1)", "scheme"),
            ("//public.test/a.png", "scheme"),
            ("http:///a.png", "no host"),
            ("http://intranet.test/a.png", "10.0.0.5 is a private address"),
            ("https://metadata.test/latest/meta-data/", "link-local"),
            ("http://mixed.test/", "192.168.1.20 is a private address"),
            ("http://v6local.test/", "fd00::5"),
            ("http://127.0.0.1/", "loopback"),
            ("http://localhost.test@127.0.0.1/", "loopback"),
            ("http://[::1]:8080/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://0.0.0.0:8080/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://files.test/", "loopback"),
            # httpx refuses dotted forms with leading zeros itself: never requested either.
            ("http://0177.0.0.1/", "not a valid URL"),
        ],
    )
    def test_refused(self, url: str, reason: str) -> None:
        with pytest.raises(RefusedError) as caught:
            NetGuard((), resolver=NAMES).check_url(url)
        assert reason in caught.value.reason

    @pytest.mark.parametrize(
        "url",
        [
            "http://2130706433/",  # decimal
            "http://0x7f.1/",  # hex and a short form
            "http://0x7f000001/",
            "http://017700000001/",  # octal
            "http://127.1/",
        ],
    )
    def test_numeric_tricks_are_judged_as_the_address_they_are(self, url: str) -> None:
        with pytest.raises(RefusedError, match=r"127\.0\.0\.1 is a loopback address"):
            NetGuard((), resolver=numeric_resolver).check_url(url)
        # Allow-listing the address covers every spelling of it.
        NetGuard(["127.0.0.1"], resolver=numeric_resolver).check_url(url)

    @pytest.mark.parametrize(
        ("allow", "url"),
        [
            ([], "https://public.test/pano.png"),
            ([], "http://93.184.216.34/a.jpg"),
            (["intranet.test"], "http://INTRANET.test:8080/a.jpg"),
            (["10.0.0.5"], "http://intranet.test/a.jpg"),
            (["10.0.0.0/24"], "http://intranet.test/a.jpg"),
            (["127.0.0.1"], "http://files.test/a.jpg"),
            (["::1"], "http://[::1]/a.jpg"),
        ],
    )
    def test_allowed(self, allow: list[str], url: str) -> None:
        assert NetGuard(allow, resolver=NAMES).check_url(url).path.startswith("/")

    def test_a_host_that_does_not_resolve_is_an_os_error(self) -> None:
        with pytest.raises(OSError, match="unknown"):
            NetGuard((), resolver=NAMES).check_url("http://nowhere.test/")

    def test_the_system_resolver_reads_a_literal_without_dns(self) -> None:
        assert system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
        assert system_resolver("::1", 80) == ["::1"]


# -- the connection itself -------------------------------------------------------------------


class TestGuardedTransport:
    def test_an_allowed_name_connects_and_keeps_its_host_header(self) -> None:
        with serving({"/a.txt": body(b"hello", "text/plain")}) as site:
            guard = NetGuard(["files.test"], resolver=NAMES)
            with httpx.Client(transport=GuardedTransport(guard)) as client:
                response = client.get(site.url("/a.txt", host="files.test"))
        assert response.content == b"hello"
        assert site.requests == [("/a.txt", f"files.test:{site.port}")]

    def test_an_answer_changed_after_the_check_is_refused_at_connect(self) -> None:
        """DNS rebinding: public (or allowed) when checked, internal when connected."""
        answers = iter([["127.0.0.1"], ["127.0.0.2"]])

        def rebinding(host: str, port: int) -> list[str]:
            del host, port
            return next(answers)

        with serving({"/": body(b"secret")}, host="127.0.0.2") as canary:
            guard = NetGuard(["127.0.0.1"], resolver=rebinding)
            url = f"http://rebind.test:{canary.port}/"
            guard.check_url(url)  # first answer: allowed
            with (
                httpx.Client(transport=GuardedTransport(guard)) as client,
                pytest.raises(RefusedError, match=r"127\.0\.0\.2 is a loopback address"),
            ):
                client.get(url)
        assert canary.requests == []

    def test_no_proxy_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with serving({"/a.txt": body(b"direct")}) as site:
            # A proxy on the canary address would receive the request if it were used.
            with serving(host="127.0.0.2") as proxy:
                monkeypatch.setenv("HTTP_PROXY", proxy.url("/"))
                monkeypatch.setenv("ALL_PROXY", proxy.url("/"))
                guard = NetGuard(["127.0.0.1"], resolver=NAMES)
                with httpx.Client(transport=GuardedTransport(guard), trust_env=False) as client:
                    assert client.get(site.url("/a.txt")).content == b"direct"
            assert proxy.requests == []
