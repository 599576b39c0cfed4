"""Talk to systemd without a compiled dependency: the ``sd_notify`` datagram protocol.

systemd gives a ``Type=notify`` service the address of a datagram socket in
``$NOTIFY_SOCKET``: a filesystem path (``/run/systemd/notify``) or an abstract
name written with a leading ``@``. Each message is one datagram of
``KEY=VALUE`` lines. With ``WatchdogSec=`` systemd also sets ``WATCHDOG_USEC``
(and ``WATCHDOG_PID``); a service that does not send ``WATCHDOG=1`` within that
time is killed and restarted.

Outside systemd (no ``$NOTIFY_SOCKET``) every method is a no-op, so the daemon
calls them unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Send ``READY=1``, ``STATUS=``, ``WATCHDOG=1``, ... to systemd's notify socket.

    Sending never raises: a lost notification must not take the daemon down
    (systemd itself treats the protocol as best effort). The first failure is
    logged as a warning, later ones at debug level, so a broken socket does not
    flood the journal once per watchdog ping.
    """

    __slots__ = ("_address", "_warned", "watchdog_interval")

    def __init__(self, address: str | None = None, watchdog_interval: float | None = None) -> None:
        #: the socket address as ``socket.sendto`` takes it (abstract names start with NUL)
        self._address = address
        #: seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None: no watchdog
        self.watchdog_interval = watchdog_interval
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``; a no-op one when unset."""
        env = os.environ if environ is None else environ
        return cls(_socket_address(env.get("NOTIFY_SOCKET", "")), _watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to talk to (the process runs under systemd)."""
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """Startup (or a reload) is complete: ``READY=1``, with an optional status line."""
        self._send("READY=1", *_status_field(status))

    def status(self, text: str) -> None:
        """A one-line summary shown by ``systemctl status``."""
        self._send(*_status_field(text))

    def watchdog(self) -> None:
        """Tell systemd's watchdog the main loop is alive."""
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A reload has started; ``ready()`` ends it.

        ``MONOTONIC_USEC`` is what ``Type=notify-reload`` (systemd 253+) needs to
        match this message to the reload it asked for; older systemd ignores it.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Shutdown has started (draining the outbox may take a while)."""
        self._send("STOPPING=1")

    def _send(self, *fields: str) -> None:
        if self._address is None or not fields:
            return
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "cannot notify systemd (%s): %s", fields[0].split("=")[0],
                    exc.strerror or exc)

    def __repr__(self) -> str:
        where = "off" if self._address is None else self._address.replace("\0", "@")
        return f"Notifier({where}, watchdog_interval={self.watchdog_interval})"


def _socket_address(value: str) -> str | None:
    """``$NOTIFY_SOCKET`` as an ``AF_UNIX`` address; None when unset or of a kind we don't speak."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value:
        # systemd 254+ may hand out "vsock:CID:PORT" to VMs; a log daemon never runs that way
        log.warning("NOTIFY_SOCKET=%r is not a unix socket path; not notifying systemd", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, if the watchdog is meant for this process."""
    pid = env.get("WATCHDOG_PID")
    # systemd sets WATCHDOG_PID so that a child inheriting the environment does not ping
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


def _status_field(text: str) -> tuple[str, ...]:
    """``STATUS=text`` on one line (a newline would start a new field), or nothing."""
    line = " ".join(text.split())
    return (f"STATUS={line}",) if line else ()
