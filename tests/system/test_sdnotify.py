"""sd_notify: real datagram sockets standing in for systemd, and the watchdog interval rules."""

from __future__ import annotations

import os
import select
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoz_watcher.system.sdnotify import Notifier, socket_address, watchdog_interval

TIMEOUT = 5


def receive(listener: socket.socket) -> bytes:
    return listener.recv(4096)


def nothing_waiting(listener: socket.socket) -> bool:
    readable, _, _ = select.select([listener], [], [], 0)
    return not readable


@pytest.fixture
def listener_path(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """systemd's side: a datagram socket bound to a file."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(TIMEOUT)
        yield listener, path


@pytest.fixture
def abstract_listener() -> Iterator[tuple[socket.socket, str]]:
    """systemd's side in the abstract namespace; yields the socket and its ``@name``."""
    name = f"atoz-watcher-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(TIMEOUT)
        yield listener, "@" + name


class TestNotifier:
    @pytest.mark.parametrize(
        ("send", "expected"),
        [
            (Notifier.ready, b"READY=1"),
            (Notifier.watchdog, b"WATCHDOG=1"),
            (Notifier.stopping, b"STOPPING=1"),
        ],
    )
    def test_sends_the_exact_datagram(self, listener_path, send, expected) -> None:
        listener, path = listener_path
        with Notifier(path) as notifier:
            assert send(notifier) is True
        assert receive(listener) == expected
        assert nothing_waiting(listener)

    def test_status(self, listener_path) -> None:
        listener, path = listener_path
        with Notifier(path) as notifier:
            assert notifier.status("watching 1204 folders")
        assert receive(listener) == b"STATUS=watching 1204 folders"

    def test_status_stays_on_one_line(self, listener_path) -> None:
        listener, path = listener_path
        with Notifier(path) as notifier:
            notifier.status("database down\nREADY=1")
        assert receive(listener) == b"STATUS=database down READY=1"

    def test_status_is_utf8(self, listener_path) -> None:
        listener, path = listener_path
        with Notifier(path) as notifier:
            notifier.status("registered Müller")
        assert receive(listener) == "STATUS=registered Müller".encode()

    def test_messages_arrive_in_order(self, listener_path) -> None:
        listener, path = listener_path
        with Notifier(path) as notifier:
            notifier.ready()
            notifier.status("ok")
            notifier.watchdog()
            notifier.stopping()
        received = [receive(listener) for _ in range(4)]
        assert received == [b"READY=1", b"STATUS=ok", b"WATCHDOG=1", b"STOPPING=1"]

    def test_abstract_namespace(self, abstract_listener) -> None:
        listener, name = abstract_listener
        with Notifier(name) as notifier:
            assert notifier.ready()
        assert receive(listener) == b"READY=1"

    @pytest.mark.parametrize("socket_path", [None, ""])
    def test_without_a_socket_does_nothing(self, socket_path) -> None:
        notifier = Notifier(socket_path)
        assert not notifier.enabled
        assert notifier.ready() is False
        assert notifier.watchdog() is False
        notifier.close()

    def test_a_missing_socket_is_reported_not_raised(self, tmp_path: Path) -> None:
        with Notifier(str(tmp_path / "gone")) as notifier:
            assert notifier.enabled
            assert notifier.ready() is False
            assert notifier.status("still running") is False

    def test_a_socket_that_went_away_is_reported_not_raised(self, tmp_path: Path) -> None:
        path = tmp_path / "notify"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(path))
        with Notifier(str(path)) as notifier:
            assert notifier.ready() is True
            listener.close()
            path.unlink()
            assert notifier.watchdog() is False

    def test_an_unsupported_address_disables_it(self) -> None:
        with Notifier("vsock:2:1234") as notifier:
            assert not notifier.enabled
            assert notifier.ready() is False

    def test_after_close_nothing_is_sent(self, listener_path) -> None:
        listener, path = listener_path
        notifier = Notifier(path)
        notifier.close()
        notifier.close()
        assert notifier.ready() is False
        assert nothing_waiting(listener)


class TestSocketAddress:
    @pytest.mark.parametrize(
        ("socket_path", "expected"),
        [
            ("/run/systemd/notify", "/run/systemd/notify"),
            ("@/org/freedesktop/systemd1/notify/123", "\0/org/freedesktop/systemd1/notify/123"),
            ("@x", "\0x"),
            ("@", None),
            ("relative/path", None),
            ("vsock:2:1234", None),
        ],
    )
    def test_address(self, socket_path: str, expected: str | None) -> None:
        assert socket_address(socket_path) == expected


PID = 4242


class TestWatchdogInterval:
    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({"WATCHDOG_USEC": "30000000"}, 15.0),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(PID)}, 15.0),
            ({"WATCHDOG_USEC": "1000"}, 0.0005),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "pid"}, None),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ""}, None),
            ({"WATCHDOG_PID": str(PID)}, None),
            ({}, None),
            ({"WATCHDOG_USEC": ""}, None),
            ({"WATCHDOG_USEC": "0"}, None),
            ({"WATCHDOG_USEC": "-5"}, None),
            ({"WATCHDOG_USEC": "thirty"}, None),
            ({"WATCHDOG_USEC": "1.5"}, None),
        ],
    )
    def test_interval(self, environ: dict[str, str], expected: float | None) -> None:
        assert watchdog_interval(environ, PID) == expected

    def test_this_process(self) -> None:
        environ = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
        assert watchdog_interval(environ, os.getpid()) == 1.0
