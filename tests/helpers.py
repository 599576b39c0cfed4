"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
#: the real logs nobody on this project wrote (fail2ban's annotated test logs, loghub's
#: samples): kept beside the repository, not in it (fail2ban's files are GPL-2.0)
CORPUS = Path(os.environ.get("LOGWATCH_CORPUS") or REPO.parent / "shared" / "corpus")
#: set by .ci/run: a missing corpus fails the tests that need it instead of skipping them
REQUIRE_CORPUS = "LOGWATCH_REQUIRE_CORPUS"


def corpus_missing() -> str | None:
    """Why the corpus tests cannot run here (one line: what is missing, how to get it), or None."""
    wanted = [CORPUS / "fail2ban" / "sshd", CORPUS / "loghub" / "OpenSSH_2k.log"]
    if all(path.is_file() for path in wanted):
        return None
    return (f"needs the log corpus at {CORPUS} (fail2ban/, loghub/): set LOGWATCH_CORPUS=DIR "
            "to point at it; how to get it: README.md, 'Test data'")


def shipped_rule_tables() -> list[dict[str, Any]]:
    """Every shipped pack's ``[[rules]]`` tables, as written (rules.example.toml enables the
    packs; it holds no rule of its own)."""
    from logwatch import packs

    return [rule for name in packs.names()
            for rule in tomllib.loads(packs.read_text(name)).get("rules", [])]


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def logwatch(*args: str, env: dict[str, str] | None = None, input_text: str | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logwatch ARGS`` for real and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "logwatch", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, input=input_text, timeout=timeout, check=False,
        cwd=REPO,
    )


def write(path: Path, text: str, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` (creating parents) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return path


def lines_of(text: str) -> Sequence[str]:
    """Non-empty lines."""
    return [line for line in text.splitlines() if line.strip()]


class Daemon:
    """``logwatch run`` as a real subprocess, its output captured to files (never a full pipe).

    With ``notify``, it is given a ``NOTIFY_SOCKET`` of its own, as systemd would, so
    :meth:`wait_ready` knows when start-up is over (signal handlers installed, sources
    open). Opt-in: nobody reads the socket after READY, and a full one would block sends.
    """

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None,
                 notify: bool = False) -> None:
        import socket
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="logwatch-daemon-")
        self.stdout_path = Path(self._dir.name) / "stdout"
        self.stderr_path = Path(self._dir.name) / "stderr"
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        address = str(Path(self._dir.name) / "notify")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.setblocking(False)
        if notify:
            self._notify.bind(address)
            env = {"NOTIFY_SOCKET": address, **(env or {})}
        self.ready = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logwatch", "run", "-c", str(config), *args],
            stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def _ready_seen(self) -> bool:
        while not self.ready:
            try:
                datagram = self._notify.recv(65536)
            except BlockingIOError:
                break
            self.ready = b"READY=1" in datagram.split(b"\n")
        if not self.ready and self.proc.poll() is not None:
            raise AssertionError(f"logwatch exited ({self.proc.returncode}) before READY=1:\n"
                                 f"{self.stderr}")
        return self.ready

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the daemon's sd_notify READY=1 (needs ``notify=True``): start-up is over."""
        wait_for(self._ready_seen, timeout, message=f"READY=1; stderr:\n{self.stderr}")

    @property
    def stdout(self) -> str:
        """Everything printed so far on stdout."""
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """Everything logged so far on stderr."""
        return self.stderr_path.read_text(errors="replace")

    def wait_stderr(self, needle: str, timeout: float = 20.0) -> str:
        """Wait until ``needle`` appears in the log; fail early if the process died."""
        def seen() -> bool:
            if self.proc.poll() is not None and needle not in self.stderr:
                raise AssertionError(f"logwatch exited ({self.proc.returncode}) before "
                                     f"{needle!r}:\n{self.stderr}")
            return needle in self.stderr
        wait_for(seen, timeout, message=repr(needle))
        return self.stderr

    def wait_stdout(self, needle: str, count: int = 1, timeout: float = 20.0) -> str:
        """Wait until ``needle`` has appeared ``count`` times on stdout."""
        wait_for(lambda: self.stdout.count(needle) >= count, timeout,
                 message=f"{count} x {needle!r} on stdout; stderr:\n{self.stderr}")
        return self.stdout

    def send(self, signum: int) -> None:
        """Send a signal."""
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL if it hangs)."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"logwatch did not stop on SIGTERM:\n{self.stderr}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """Stop the process if needed and remove its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()
        self._notify.close()
        self._dir.cleanup()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
