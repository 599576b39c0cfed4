"""The sd_notify protocol, checked against real AF_UNIX datagram sockets."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from logwatch.daemon.sd_notify import Notifier
from tests.helpers import Daemon


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(10.0)  # a deadline, not a wait: the datagram is normally there
        self._last: dict[str, str] = {}

    def receive(self) -> dict[str, str]:
        """The next datagram, as its KEY=VALUE fields."""
        data = self.sock.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def receive_until(self, key: str) -> dict[str, str]:
        """The next datagram that carries ``key`` (pings and status lines may come first)."""
        while key not in (fields := self.receive()):
            pass
        return fields

    def drain(self) -> list[dict[str, str]]:
        """Every datagram already queued, without waiting."""
        found = []
        while not self.empty():
            found.append(self._last)
        return found

    def empty(self) -> bool:
        """Whether nothing more was sent."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536).decode()
            self._last = dict(line.split("=", 1) for line in data.split("\n"))
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(10.0)
        return False


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[NotifySocket, str]]:
    """A bound socket and the NOTIFY_SOCKET value that names it (a path or ``@abstract``)."""
    if request.param == "path":
        env_value = str(tmp_path / "notify")
        address = env_value
    else:
        name = f"logwatch-test-{uuid.uuid4().hex}"
        env_value, address = "@" + name, "\0" + name
    sock = NotifySocket(address)
    try:
        yield sock, env_value
    finally:
        sock.sock.close()


class TestMessages:
    """Each call sends exactly one datagram with the fields systemd expects."""

    def test_ready_with_status(self, listener: tuple[NotifySocket, str]) -> None:
        """READY=1 carries the status line along."""
        sock, value = listener
        Notifier.from_environ({"NOTIFY_SOCKET": value}).ready("following 3 files")
        assert sock.receive() == {"READY": "1", "STATUS": "following 3 files"}

    def test_ready_alone(self, listener: tuple[NotifySocket, str]) -> None:
        """Without a status, READY=1 is the only field."""
        sock, value = listener
        Notifier.from_environ({"NOTIFY_SOCKET": value}).ready()
        assert sock.receive() == {"READY": "1"}

    def test_status_watchdog_stopping(self, listener: tuple[NotifySocket, str]) -> None:
        """STATUS=, WATCHDOG=1 and STOPPING=1 arrive in order, one datagram each."""
        sock, value = listener
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": value})
        notifier.status("12 lines/s, 0 pending")
        notifier.watchdog()
        notifier.stopping()
        assert sock.receive() == {"STATUS": "12 lines/s, 0 pending"}
        assert sock.receive() == {"WATCHDOG": "1"}
        assert sock.receive() == {"STOPPING": "1"}
        assert sock.empty()

    def test_reloading_carries_monotonic_time(self, listener: tuple[NotifySocket, str]) -> None:
        """RELOADING=1 with MONOTONIC_USEC taken from CLOCK_MONOTONIC (notify-reload)."""
        sock, value = listener
        before = time.monotonic_ns() // 1000  # CLOCK_MONOTONIC on Linux
        Notifier.from_environ({"NOTIFY_SOCKET": value}).reloading()
        after = time.monotonic_ns() // 1000
        fields = sock.receive()
        assert fields["RELOADING"] == "1"
        assert before <= int(fields["MONOTONIC_USEC"]) <= after

    def test_status_is_one_line(self, listener: tuple[NotifySocket, str]) -> None:
        """A newline in the status cannot inject another field (READY=1 from a log line)."""
        sock, value = listener
        Notifier.from_environ({"NOTIFY_SOCKET": value}).status("bad\nREADY=1")
        assert sock.receive() == {"STATUS": "bad READY=1"}

    def test_empty_status_sends_nothing(self, listener: tuple[NotifySocket, str]) -> None:
        """An empty status is not worth a datagram."""
        sock, value = listener
        Notifier.from_environ({"NOTIFY_SOCKET": value}).status("  ")
        assert sock.empty()


class TestWithoutSystemd:
    """Outside systemd every call is a harmless no-op."""

    def test_unset_is_disabled(self) -> None:
        """No NOTIFY_SOCKET: disabled, no watchdog, calls do nothing."""
        notifier = Notifier.from_environ({})
        assert not notifier.enabled
        assert notifier.watchdog_interval is None
        notifier.ready("x")
        notifier.status("x")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
        assert repr(notifier) == "Notifier(off, watchdog_interval=None)"

    def test_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
        """from_environ() without an argument reads the process environment."""
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n"))
        assert Notifier.from_environ().enabled
        monkeypatch.delenv("NOTIFY_SOCKET")
        assert not Notifier.from_environ().enabled

    def test_vsock_is_not_spoken(self, caplog: pytest.LogCaptureFixture) -> None:
        """A non-unix address is refused with a warning rather than sent to a wrong place."""
        with caplog.at_level(logging.WARNING, "logwatch.daemon.sd_notify"):
            notifier = Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"})
        assert not notifier.enabled
        assert "not a unix socket" in caplog.text

    def test_dead_socket_warns_once(self, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
        """A socket nobody listens on: no exception, one warning, then quiet."""
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone")})
        with caplog.at_level(logging.DEBUG, "logwatch.daemon.sd_notify"):
            notifier.watchdog()
            notifier.watchdog()
        levels = [r.levelno for r in caplog.records]
        assert levels == [logging.WARNING, logging.DEBUG]
        assert "WATCHDOG" in caplog.records[0].getMessage()


class TestWatchdogInterval:
    """watchdog_interval is half of WATCHDOG_USEC, only for the process it names."""

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"WATCHDOG_USEC": "30000000"}, 15.0),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "{pid}"}, 15.0),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
            ({"WATCHDOG_USEC": "0"}, None),
            ({"WATCHDOG_USEC": "-5"}, None),
            ({"WATCHDOG_USEC": "soon"}, None),
            ({"WATCHDOG_PID": "{pid}"}, None),
            ({}, None),
        ],
    )
    def test_parse(self, env: dict[str, str], expected: float | None) -> None:
        """Each WATCHDOG_USEC / WATCHDOG_PID combination."""
        env = {k: v.format(pid=os.getpid()) for k, v in env.items()}
        assert Notifier.from_environ(env).watchdog_interval == expected



class TestDaemon:
    """``logwatch run`` under a stand-in systemd: the notifications of a whole life cycle."""

    def test_life_cycle(self, tmp_path: Path) -> None:
        """READY once started, WATCHDOG pings, RELOADING then READY on SIGHUP, STOPPING on TERM."""
        log_file = tmp_path / "app.log"
        log_file.write_text("", encoding="utf-8")
        config = tmp_path / "logwatch.toml"
        config.write_text(
            f'[logwatch]\nstate_dir = "{tmp_path / "state"}"\n\n'
            f'[sources.app]\nfiles = ["{log_file}"]\n\n'
            '[[rules]]\nid = "boom"\nmatch = "boom"\n', encoding="utf-8")
        sock = NotifySocket(str(tmp_path / "notify"))
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"}
        try:
            with Daemon(config, env=env) as daemon:
                ready = sock.receive_until("READY")
                assert "lines/s" in ready.get("STATUS", ""), daemon.stderr
                sock.receive_until("WATCHDOG")
                daemon.send(signal.SIGHUP)
                sock.receive_until("RELOADING")
                sock.receive_until("READY")
                assert daemon.stop() == 0, daemon.stderr
                assert any("STOPPING" in fields for fields in sock.drain()), daemon.stderr
        finally:
            sock.sock.close()
