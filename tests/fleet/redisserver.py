"""A real ``redis-server`` for the fleet tests: a free TCP port, no persistence.

It can be killed and started again on the same port (the fleet must notice both).
``LOGWATCH_REQUIRE_REDIS=1`` (set by ``.ci/run``) turns a missing binary from a
skip into a failure, so CI cannot pass without running these tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for

BINARY = "redis-server"


def require_binary() -> str:
    """The path of ``redis-server``; skip (or fail in CI) when it is missing."""
    path = shutil.which(BINARY)
    if path is None:
        reason = "redis-server not installed (apt-get install redis-server)"
        if os.environ.get("LOGWATCH_REQUIRE_REDIS") == "1":
            pytest.fail(reason + ", and LOGWATCH_REQUIRE_REDIS=1 says it must be")
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1:``port``, persistence off."""

    def __init__(self, workdir: Path, *, password: str | None = None) -> None:
        self.binary = require_binary()
        self.workdir = workdir
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--loglevel", "warning", "--logfile", str(self.workdir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        wait_for(self._answers, 10.0, message="redis-server to answer PING")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited ({self.proc.returncode}): "
                                 f"{(self.workdir / 'redis.log').read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                sock.sendall(auth + b"PING\r\n")
                deadline = time.monotonic() + 1.0
                data = b""
                while b"PONG" not in data and time.monotonic() < deadline:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    data += chunk
                return b"PONG" in data
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash: everything in it is gone (no persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
