"""One daemon per ``state_dir``: an exclusive ``flock`` on ``state_dir/lock`` holding its pid.

Two ``logwatch run`` on one state would both deliver the same outbox rows; the
second one refuses to start, naming the first one's pid. The kernel drops the
lock when the process dies, so a ``kill -9`` leaves nothing stale behind, and
:func:`running_pid` (for ``logwatch status``) never reads a dead daemon as running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from logwatch.errors import StateError

LOCK_NAME = "lock"


class StateLock:
    """The held lock; :meth:`release` (or process exit) lets the next daemon in."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, state_dir: Path) -> StateLock:
        """Take the lock, or raise StateError naming the pid that holds it."""
        path = Path(state_dir) / LOCK_NAME
        try:
            Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StateError(f"state_dir {state_dir}: cannot create {path.name}: "
                             f"{exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _pid_in(fd)
            os.close(fd)
            raise StateError(f"state_dir {state_dir} is in use by another logwatch run "
                             f"(pid {holder}); stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _pid_in(fd: int) -> str:
    """The pid the holder wrote, as text ("unknown" if unreadable)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def running_pid(state_dir: Path) -> int | None:
    """The pid of the daemon running with ``state_dir``, or None if none runs."""
    try:
        fd = os.open(Path(state_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: a daemon runs
            text = _pid_in(fd)
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
