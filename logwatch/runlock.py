"""Whether a daemon runs with a state directory: it holds a lock on ``logwatch.pid`` there.

``logwatch run`` takes an exclusive ``flock`` on ``STATE_DIR/logwatch.pid`` and
writes its pid into it; the kernel drops the lock when the process ends, however
it ends (even ``kill -9``), so a stale file never reads as "running".
``logwatch status`` asks for a shared lock: refused means a daemon holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

PID_FILE = "logwatch.pid"


class RunLock:
    """The running daemon's lock on its state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / PID_FILE
        self._fd: int | None = None

    def acquire(self) -> int | None:
        """Take the lock and write our pid; None if taken, else the pid of who holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return running_pid(self.path.parent) or -1
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return None

    def release(self) -> None:
        """Drop the lock (the file stays: its pid is no longer locked, so not running)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the daemon running with ``state_dir``, or None if none runs."""
    path = Path(state_dir) / PID_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
