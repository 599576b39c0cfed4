"""Follow the systemd journal through ``journalctl --follow --output=json`` (nothing compiled).

A reader thread runs journalctl, turns each JSON entry into the line
``IDENTIFIER[PID]: MESSAGE`` (so rules written for syslog files match it) and
queues it with the entry's cursor and time; :meth:`JournalFollower.read` takes
from the queue. The checkpoint is the cursor of the last entry returned, and
journalctl is restarted with ``--after-cursor`` from it; before the first entry
(``start_at = "end"``) it is the time the journal was first followed, and
journalctl restarts ``--since`` then. If journalctl is missing or exits, or the
reader fails, the thread says so and restarts it with a growing delay; a reader
thread found dead is started again and reported.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from logwatch.config import JournalSource, Settings
from logwatch.models import Chunk
from logwatch.state import encode

log = logging.getLogger(__name__)

#: the program (and any fixed options, e.g. ``--file=PATH`` or ``--directory=DIR``)
JOURNALCTL = ("journalctl",)
#: entries waiting for read(); the reader thread (and journalctl) wait when it is full
MAX_QUEUED = 10_000
#: restart delays after journalctl exits: first, then doubled up to the last
BACKOFF = (1.0, 60.0)
#: a journalctl that ran this long before exiting was fine: restart the backoff
STEADY_AFTER = 30.0
#: how long to wait for our own shutdown when journalctl died of a signal
SIGNALLED_GRACE = 1.0
CUT_MARK = b" [logwatch: line longer than %d bytes, cut]"
#: entry times outside this range (seconds since the epoch) are not trusted: year 9999
MAX_TIME = 253402300799.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry as lines (a multi-line MESSAGE gives several), its cursor and time."""

    lines: tuple[bytes, ...]
    cursor: str
    time: float | None


def _field(entry: Mapping[str, Any], name: str) -> bytes | None:
    """A field's value as bytes: journalctl prints binary ones as lists of byte values."""
    value = entry.get(name)
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        value = value[0]  # a field given several times: the first
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list) and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        return bytes(value)
    if isinstance(value, int | float):
        return str(value).encode()
    return None


def parse_entry(raw: bytes, cap: int) -> Entry | None:
    """One line of ``journalctl --output=json`` as an :class:`Entry`; None if it is not one."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("__CURSOR"), str):
        return None
    ident = _field(entry, "SYSLOG_IDENTIFIER") or _field(entry, "_COMM") or b"unknown"
    pid = _field(entry, "_PID") or _field(entry, "SYSLOG_PID")
    prefix = ident + (b"[" + pid + b"]: " if pid else b": ")
    message = (_field(entry, "MESSAGE") or b"").rstrip(b"\n")
    lines = tuple(_cap(prefix + part, cap) for part in message.split(b"\n"))
    return Entry(lines, entry["__CURSOR"], _time(_field(entry, "__REALTIME_TIMESTAMP")))


def _time(stamp: bytes | None) -> float | None:
    """``__REALTIME_TIMESTAMP`` (microseconds) in seconds; None (now) if absent or absurd."""
    # at most 20 digits: int() of a longer one is slow and its float overflows
    if stamp is None or not stamp.isdigit() or len(stamp) > 20:
        return None
    seconds = int(stamp) / 1e6
    return seconds if 0 < seconds <= MAX_TIME else None


def _cap(line: bytes, cap: int) -> bytes:
    line = line.replace(b"\r", b"")
    if len(line) > cap:
        return line[:cap] + CUT_MARK % cap + b"\n"
    return line + b"\n"


def journalctl_args(journal: JournalSource, cursor: str | None, start_at: str,
                    since: float | None = None) -> list[str]:
    """The journalctl options (without the program) to follow from ``cursor``, ``since``
    (seconds since the epoch) or ``start_at``."""
    args = ["--follow", "--output=json", "--all", "--no-pager"]
    if cursor:
        args += [f"--after-cursor={cursor}", "--no-tail"]
    elif since is not None:
        # whole seconds, rounded down: an entry of that second twice rather than none
        args += [f"--since=@{int(since)}", "--no-tail"]
    elif start_at == "end":
        args.append("--lines=0")
    else:
        args.append("--no-tail")
    return args + journal_filters(journal)


def journal_filters(journal: JournalSource) -> list[str]:
    """The journalctl arguments that choose the source's entries: units, then matches."""
    return [f"--unit={unit}" for unit in journal.units] + list(journal.match)


#: where systemd-journald keeps its files (persistent, volatile)
JOURNAL_DIRS = (Path("/var/log/journal"), Path("/run/log/journal"))


def journal_files_exist(dirs: Sequence[Path] = JOURNAL_DIRS) -> bool:
    """Whether the journal has any file here (an unreadable directory counts as yes)."""
    for folder in dirs:
        try:
            if folder.is_dir() and any(folder.rglob("*.journal*")):
                return True
        except PermissionError:
            return True
    return False


class JournalFollower:
    """A Source following the journal through a journalctl subprocess."""

    def __init__(
        self,
        name: str,
        journal: JournalSource,
        settings: Settings,
        wake: Callable[[], None],
        *,
        command: Sequence[str] = JOURNALCTL,
        backoff: Sequence[float] = BACKOFF,
        instead_of: Sequence[str] = (),
    ) -> None:
        self.name = name
        self._journal = journal
        #: the source's files, none of which exists here (said in the banner)
        self._instead_of = tuple(instead_of)
        self._settings = settings
        self._wake = wake
        self._command = tuple(command)
        self._backoff = (backoff[0], backoff[-1])
        self._queue: queue.Queue[Entry] = queue.Queue(MAX_QUEUED)
        self._cursor: str | None = None
        self._reader_cursor: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._garbage = 0
        #: journalctl's stderr while it runs (it says "No journal files were found." and stays)
        self._said: IO[bytes] | None = None
        #: before the first entry with start_at = "end": when following began
        self._since: float | None = None
        #: what journalctl is given: --lines=0 is exact on first sight, --since after that
        self._since_arg: float | None = None
        self.restarts = 0

    # -- the Source protocol ------------------------------------------------

    def open(self, checkpoint: Mapping[str, Any] | None) -> None:
        """Start journalctl after the checkpoint's cursor (else per ``start_at``)."""
        if checkpoint is not None and checkpoint.get("kind") == "journal":
            cursor = checkpoint.get("cursor")
            self._cursor = self._reader_cursor = cursor if isinstance(cursor, str) else None
            since = checkpoint.get("since")
            if isinstance(since, int | float) and 0 < since <= MAX_TIME:
                self._since = self._since_arg = float(since)
        elif self._settings.start_at == "end":
            self._since = time.time()  # saved at once: what comes while stopped is read
        self._start_thread()

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"journal-{self.name}",
                                        daemon=True)
        self._thread.start()

    def read(self, max_bytes: int = 4 << 20) -> list[Chunk]:
        """The queued entries, as one chunk whose lines are keyed by cursor."""
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            log.error('source "%s": the journal reader thread stopped; restarting it', self.name)
            self.restarts += 1
            self._start_thread()
        parts: list[bytes] = []
        cursors: dict[int, str] = {}
        times: dict[int, float] = {}
        size = 0
        while size < max_bytes:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            for index, line in enumerate(entry.lines):
                cursors[size] = entry.cursor if index == 0 else f"{entry.cursor}#{index}"
                if entry.time is not None:
                    times[size] = entry.time
                parts.append(line)
                size += len(line)
            self._cursor = entry.cursor
        if not parts:
            return []
        return [Chunk(self.name, "journal", b"".join(parts), "journal", 0, cursors, times)]

    def pending(self, *, queued: bool = True) -> bool:
        """Might :meth:`read` return entries now (or restart a reader thread that stopped)?

        ``queued`` is the files' (see :meth:`FileSource.pending`): the reader thread
        wakes the service for each entry, so the queue counts either way.
        """
        return not self._queue.empty() or (self._thread is not None
                                            and not self._thread.is_alive()
                                            and not self._stop.is_set())

    def checkpoint(self) -> dict[str, Any]:
        """The cursor of the last entry returned (before any: since when we follow)."""
        if self._cursor is None and self._since is not None:
            return {"kind": "journal", "cursor": None, "since": self._since}
        return {"kind": "journal", "cursor": self._cursor}

    def checkpoint_text(self) -> str:
        """:meth:`checkpoint` as the state stores it."""
        return encode(self.checkpoint())

    def fileno(self) -> int | None:
        """None: the reader thread wakes the service through its callback."""
        return None

    def describe(self) -> list[str]:
        """Where it reads from, which entries, and whether journalctl can be found (the whole
        command line is logged at debug level when it runs)."""
        if self._cursor:
            where = f"after cursor {self._cursor[:40]}..."
        elif self._since_arg is not None:  # the checkpoint's: no entry came since it was made
            where = f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self._since_arg))}"
        else:
            where = "from now" if self._settings.start_at == "end" else "from the beginning"
        which = journal_filters(self._journal)
        line = f'source "{self.name}": journal {where}, {" ".join(which) or "every entry"}'
        if self._instead_of:
            line += f" (none of {', '.join(self._instead_of)} exists)"
        lines = [line]
        if shutil.which(self._command[0]) is None:
            lines.append(f"  {self._command[0]} not found on PATH; retrying")
        return lines

    def nothing_here(self) -> str | None:
        """Why the journal has nothing to read here (journalctl missing, no journal files)."""
        if shutil.which(self._command[0]) is None:
            return f"{self._command[0]} not found"
        said = self._said
        if said is not None:
            with contextlib.suppress(OSError, ValueError):
                text = os.pread(said.fileno(), 500, 0).decode("utf-8", "replace").strip()
                if "No journal files were found" in text:
                    return f'{self._command[0]} says "{text.splitlines()[0]}"'
        # journalctl --follow waits silently on an empty journal: look for its files
        if self._command == JOURNALCTL and not journal_files_exist():
            return f"no journal files in {' or '.join(map(str, JOURNAL_DIRS))}"
        return None

    def close(self) -> None:
        """Stop journalctl and the reader thread."""
        self._stop.set()
        self._kill()
        if self._thread is not None:
            while self._thread.is_alive():
                self._kill()  # again: a journalctl started just as we stopped
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # unblock a reader waiting on a full queue
                self._thread.join(timeout=0.05)
            self._thread = None

    # -- the reader thread ----------------------------------------------------

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def _run(self) -> None:
        delay = self._backoff[0]
        last_why = ""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                why, code = self._follow_once()
            except Exception as exc:  # a bug must not leave the source silently dead
                log.debug('source "%s": the journal reader failed', self.name, exc_info=True)
                why, code = f"the reader failed ({type(exc).__name__}: {exc})", None
            self._since_arg = self._since
            # a signal to journalctl usually comes with one to us (Ctrl-C, systemctl stop
            # signals the whole cgroup): give our own shutdown a moment before warning
            if self._stop.wait(SIGNALLED_GRACE if code is not None and code < 0 else 0):
                return
            if time.monotonic() - started > STEADY_AFTER:
                delay, last_why = self._backoff[0], ""
            # the same failure again (journalctl still missing) is not worth another warning
            level = logging.DEBUG if why == last_why else logging.WARNING
            log.log(level, 'source "%s": %s; restarting it in %gs', self.name, why, delay)
            last_why = why
            self.restarts += 1
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._backoff[1])

    def _follow_once(self) -> tuple[str, int | None]:
        """Run journalctl until it exits; why it stopped (for the warning) and its status."""
        argv = [*self._command, *journalctl_args(self._journal, self._reader_cursor,
                                                self._settings.start_at, self._since_arg)]
        log.debug('source "%s": running %s', self.name, " ".join(argv))
        with tempfile.TemporaryFile() as errors:
            self._said = errors  # read while it runs: "No journal files were found." stays
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=errors)
            except OSError as exc:
                return f"cannot run {self._command[0]} ({exc.strerror})", None
            self._proc = proc
            try:
                if proc.stdout is not None:  # always, with stdout=PIPE
                    self._pump(proc.stdout)
            finally:
                self._kill()
                if proc.stdout is not None:
                    proc.stdout.close()
                code = proc.wait()
                self._proc = None
            errors.seek(0)
            message = errors.read()[-500:].decode("utf-8", "replace").strip()
        detail = f": {message.splitlines()[-1]}" if message else ""
        return f"{self._command[0]} exited with status {code}{detail}", code

    def _pump(self, stdout: IO[bytes]) -> None:
        cap = self._settings.max_line_length
        for raw in stdout:
            if self._stop.is_set():
                return
            entry = parse_entry(raw, cap)
            if entry is None:
                self._skip_garbage(raw)
                continue
            while not self._stop.is_set():
                try:
                    self._queue.put(entry, timeout=0.2)
                    break
                except queue.Full:
                    self._wake()
            self._reader_cursor = entry.cursor
            self._wake()

    def _skip_garbage(self, raw: bytes) -> None:
        self._garbage += 1
        if self._garbage == 1:
            log.warning('source "%s": skipped a line from %s that is not a JSON journal entry: '
                        "%r (further ones are logged at debug level)", self.name,
                        os.path.basename(self._command[0]), raw[:200])
        else:
            log.debug('source "%s": skipped non-entry line %r', self.name, raw[:200])
