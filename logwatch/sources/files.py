"""Follow log files by glob, through every kind of rotation, without losing or inventing a line.

How (docs/sources.md says it for users):

- A followed file is a :class:`_Tail`: an open descriptor plus where we are in it.
  Its stream name is ``dev:inode:fingerprint:generation``; the fingerprint hashes
  the first line (at most :data:`FP_LEN` bytes), the generation counts the
  streams seen at that path (each rotation, truncation, recreation adds one), so
  a reused inode or a truncated file never yields a line key already used.
- Only whole lines are returned; the offset stops after the last newline, so a
  partial line is simply read again next time. A partial line that stays
  unchanged for ``quiet`` seconds, or that is left in a rotated file, is returned
  with a newline added. Lines longer than ``max_line_length`` bytes are cut there,
  marked, and the rest of them skipped.
- A periodic scan (every ``poll_interval / 2``; with inotify, every
  ``rescan_interval``; at once after an inotify event that names a new or replaced
  file, or an overflow) re-expands the globs and compares each path with its open descriptor:
  another inode (rename + create, rename over, delete + recreate) retires the old
  descriptor, which is drained until it has been quiet for ``quiet`` seconds; a
  size below our offset, or another first line, is a truncation (copytruncate):
  the generation goes up and reading restarts at 0. Between scans, each read of new
  data checks the :data:`BEHIND` bytes before our offset, read with the data
  (:meth:`_Tail.read_on`): a file truncated and written past our offset in between
  has other bytes there, even if its first line is the same.
- Descriptors are bounded (:mod:`~logwatch.sources.descriptors`): past the limit the
  least recently read files are *parked* (closed, still followed) and reopened by
  path, their inode checked (or found rotated by inode), when their size changes.
  Only a file that is positively absent (``ENOENT``) is gone: a failure to open or
  list (``EMFILE``, ``EACCES``) is reported and retried, never taken for a rotation.
- A path met through a glob is opened with ``O_NOFOLLOW``: a symlink planted in a
  watched directory (``evil.log -> /etc/logwatch/credentials/...``) is not followed,
  with one warning naming it; a symlink named literally in the config is trusted.
- inotify (:class:`~logwatch.sources.inotify.Watcher`, read at each :meth:`FileSource.read`,
  waited on by the service through :meth:`FileSource.fileno`) says which paths changed:
  between two periodic scans only those are read (plus files with data left, or a
  partial line once quiet), and each named by a creation, rename or deletion has its
  identity checked: another inode there (renamed over, recreated, new) starts a scan
  at once; a write costs no ``stat``. Without inotify every read looks at every file.
  The scan stays the truth: an overflowed queue starts one.
- Cheap when nothing moves: :meth:`FileSource.pending` says whether a read would find
  anything without touching a file, a read that finds nothing touches no file, and
  :meth:`FileSource.checkpoint_text` re-encodes only the entries of files that moved.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import logging
import operator
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from logwatch.config import Settings
from logwatch.models import Chunk
from logwatch.sources.descriptors import OPEN_FILES
from logwatch.sources.inotify import Watcher
from logwatch.sources.lines import all_whole, cut_line, split_lines
from logwatch.sources.paths import COMPRESSED, ROTATED, expand, has_magic, literal_dir
from logwatch.state import encode

log = logging.getLogger(__name__)

#: the fingerprint covers the first line, at most this many bytes
FP_LEN = 256
#: a partial line unchanged this long is returned as a line; a retired file is closed
QUIET = 2.0
#: the bytes before our offset that each read checks are still there (see ``_Tail.read_on``)
BEHIND = 256
#: the first ``pread`` of a read asks for this much, without knowing the size (more data
#: costs an ``fstat`` and more preads) ...
FIRST_READ = 64 << 10
#: ... or half as much again as the last read of the file returned, up to this: a steady
#: writer's reads cost one ``pread`` each (into a buffer kept by the source: a bytes object
#: that large would cost an mmap per call)
FIRST_MOST = 1 << 20
#: one ``pread`` at most (or ``max_line_length + 1`` if larger)
READ_BLOCK = 4 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
#: errors that say nothing about the file itself: out of descriptors, or of memory
_NO_ROOM = {errno.EMFILE, errno.ENFILE, errno.ENOMEM}
Reopened = Literal["open", "gone", "failed"]
_NONE: AbstractSet[str] = frozenset()


def open_log(path: str, *, trusted: bool) -> int:
    """A read descriptor of ``path``; a symlink only if ``trusted`` (named in the config).

    Out of descriptors, the least recently read files are parked and it is tried again.
    """
    flags = _OPEN_FLAGS if trusted else _OPEN_FLAGS | os.O_NOFOLLOW
    try:
        return os.open(path, flags)
    except OSError as exc:
        if exc.errno not in _NO_ROOM or not len(OPEN_FILES):
            raise
    OPEN_FILES.trim(room=max(len(OPEN_FILES) // 4, 1))
    return os.open(path, flags)


def _open_error(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link met through a glob, not followed (name it in files = to trust it)"
    return f"cannot open it ({exc.strerror})"


# ---------------------------------------------------------------------------
# Pure helpers


def fingerprint(head: bytes) -> tuple[str, int] | None:
    """Hash of the first line (at most FP_LEN bytes) and its length; None until it is complete."""
    newline = head.find(b"\n", 0, FP_LEN)
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FP_LEN:
        return None
    else:
        head = head[:FP_LEN]
    return hashlib.blake2b(head, digest_size=8).hexdigest(), len(head)


def _hash(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=8).hexdigest()


# ---------------------------------------------------------------------------
# One open file


@dataclass(slots=True)
class _Tail:
    """An open descriptor of one file and how far its lines have been returned."""

    path: str
    fd: int
    dev: int
    ino: int
    gen: int
    offset: int
    fp: str | None = None
    fp_len: int = 0
    #: inside a line already cut at max_line_length: drop bytes up to its newline
    skipping: bool = False
    seen_size: int = -1
    still_since: float = 0.0
    retired: bool = False
    #: the last read stopped at a partial line (it waits for its newline, or for quiet)
    partial: bool = False
    #: the bytes the fingerprint was taken from (compared as they are, not hashed again)
    first: bytes | None = None
    #: the last (at most BEHIND) bytes before ``offset``; None: not known (see :meth:`read_on`)
    last: bytes | None = None
    #: how many bytes the last read of this file consumed (the next one expects as many)
    expect: int = 0
    _stream: str | None = None
    #: the checkpoint entry's text before and after the offset, and the fields it was
    #: made from (see :meth:`encoded`)
    _around: tuple[tuple[Any, ...], str, str] | None = None
    _path_json: str | None = None
    #: descriptors of followed files closed (parked, dropped) or reopened so far, by any
    #: source: a file parked to make room for another's moves the "parked" flag of its
    #: checkpoint entry without being read (see :meth:`FileSource.checkpoint_text`)
    fd_moves: ClassVar[int] = 0

    @property
    def stream(self) -> str:
        """The replay-stable name of what this descriptor reads."""
        if self._stream is None:
            self._stream = f"{self.dev:x}:{self.ino}:{self.fp or '-'}:{self.gen}"
        return self._stream

    def head(self) -> bytes:
        """The first FP_LEN bytes of the file as it is now."""
        return os.pread(self.fd, FP_LEN, 0)

    def settle_fingerprint(self, *, force: bool = False) -> None:
        """Fix the fingerprint once the first line is complete (``force``: from what there is)."""
        if self.fp is not None:
            return
        head = self.head()
        fp = fingerprint(head)
        if fp is None and force and head:
            fp = _hash(head), len(head)
        if fp is not None:
            self.fp, self.fp_len = fp
            self.first, self._stream = head[: self.fp_len], None

    def same_start(self) -> bool:
        """Does the file still start with the bytes the fingerprint was taken from?"""
        if self.fp is None:
            return True
        head = self.head()
        if self.first is not None:
            return head.startswith(self.first)
        if len(head) < self.fp_len or _hash(head[: self.fp_len]) != self.fp:
            return False
        self.first = head[: self.fp_len]  # from a checkpoint: hashed once
        return True

    def read_on(self, want: int, buffer: bytearray) -> bytes | None:
        """Up to ``want`` bytes from ``offset``; None if the bytes before it are not ours.

        The :data:`BEHIND` bytes before ``offset`` come with the same ``pread`` and must
        be the ones read last: a file truncated and rewritten past our offset between
        two reads has other bytes there (see :meth:`FileSource._read_tail`). Without
        them (after a restart) the first line is checked instead, once. ``buffer`` (at
        least ``want + BEHIND`` bytes) takes the ``pread``; what is returned is a copy.
        """
        if self.last is None:
            if self.offset and not self.same_start():
                return None
            back = min(self.offset, BEHIND)
            data = os.pread(self.fd, want + back, self.offset - back)
            if len(data) < back:
                return None  # shorter than our offset now
            self.last = data[:back]
            return data[back:] if back else data
        back = len(self.last)
        with memoryview(buffer) as view:
            got = os.preadv(self.fd, [view[: want + back]], self.offset - back)
            if got < back or view[:back] != self.last:
                return None
            return bytes(view[back:got])

    def advance(self, data: bytes, consumed: int) -> None:
        """``data[:consumed]`` (read at ``offset``) is done with: move past it."""
        if not consumed:
            return
        self.offset += consumed
        if consumed >= BEHIND:
            self.last = data[consumed - BEHIND : consumed]
        elif self.last is not None:
            self.last = (self.last + data[:consumed])[-BEHIND:]

    def restart(self, gen: int) -> None:
        """Read again from 0, as generation ``gen`` (a truncation)."""
        self.gen, self.offset, self.skipping = gen, 0, False
        self.fp, self.fp_len, self.first, self._stream = None, 0, None, None
        self.last = b""
        self.seen_size = -1

    def state(self) -> dict[str, Any]:
        """The checkpoint entry."""
        entry = {"path": self.path, "dev": self.dev, "ino": self.ino, "gen": self.gen,
                 "offset": self.offset, "fp": self.fp, "fp_len": self.fp_len,
                 "skip": self.skipping}
        if self.retired:
            entry["retired"] = True
        if self.fd < 0:
            entry["parked"] = True  # followed, its descriptor closed (status counts them)
        return entry

    def encoded(self) -> str:
        """:meth:`state` as ``logwatch.state.encode`` writes it, cheaply: a read moves the
        offset only, so the text around it is formatted again only when another field
        changed (a truncation, a fingerprint, parking...)."""
        # every field of state() that ever changes after construction, but the offset
        rest = (self.gen, self.fp, self.fp_len, self.skipping, self.retired, self.fd < 0)
        around = self._around
        if around is None or around[0] != rest:
            self._around = around = (rest, *self._format())
        return f"{around[1]}{self.offset}{around[2]}"

    def _format(self) -> tuple[str, str]:
        """The entry's text before its offset and after it.

        The JSON of state() without the encoder's per-value dispatch: ints, a bool, a hex
        digest or null; the path (any text) goes through the encoder once.
        """
        if self._path_json is None:
            self._path_json = encode(self.path)
        fp = "null" if self.fp is None else f'"{self.fp}"'
        flags = (',"retired":true' if self.retired else "") + (',"parked":true' if self.fd < 0
                                                                 else "")
        return (f'{{"path":{self._path_json},"dev":{self.dev},"ino":{self.ino},"gen":{self.gen},'
                '"offset":',
                f',"fp":{fp},"fp_len":{self.fp_len},'
                f'"skip":{"true" if self.skipping else "false"}{flags}}}')

    def close(self) -> None:
        """Close the descriptor (idempotent); a followed file is then parked."""
        if self.fd >= 0:
            OPEN_FILES.closed(self)
            os.close(self.fd)
            self.fd = -1
            _Tail.fd_moves += 1


# ---------------------------------------------------------------------------
# The source


class FileSource:
    """Follows the files named by ``patterns`` (globs); see the module docstring."""

    def __init__(
        self,
        name: str,
        patterns: Sequence[str],
        settings: Settings,
        wake: Callable[[], None],
        *,
        quiet: float = QUIET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.patterns = tuple(patterns)
        self._settings = settings
        self._wake = wake
        self._quiet = quiet
        self._clock = clock
        self._cap = settings.max_line_length
        self._block = max(READ_BLOCK, self._cap + 1)
        self._first = min(self._block, max(FIRST_READ, self._cap + 1))
        self._first_most = max(self._first, FIRST_MOST)
        #: what the first ``pread`` of a file's read fills (see :meth:`_Tail.read_on`)
        self._buffer = bytearray()
        self._scan_every = (settings.rescan_interval if settings.use_inotify
                            else settings.poll_interval / 2)
        self._current: dict[str, _Tail] = {}
        self._retired: list[_Tail] = []
        self._gens: dict[str, int] = {}
        self._known_patterns: set[str] = set()
        self._waiting: list[str] = []
        self._problems: dict[str, str] = {}
        self._rescan = threading.Event()
        #: paths the watcher named since the last read: written to, and (``_named``) whose
        #: name may now hold another file (see :meth:`_replaced`)
        self._touched: set[str] = set()
        self._named: set[str] = set()
        self._touched_lock = threading.Lock()
        #: followed paths to read again without an event -> from when: data left by the
        #: budget or never read (at once), a partial line (once it has been quiet)
        self._behind: dict[str, float] = {}
        self._last_scan = float("-inf")
        self._turn = 0
        self._watcher: Watcher | None = None
        self._poll: select.poll | None = None
        #: the checkpoint's parts that change seldom, encoded (None: encode again)
        self._head_json = encode({"kind": "files", "patterns": list(self.patterns)})[:-1]
        self._gens_json: str | None = None
        #: checkpoint_text's entries, of the files it listed (in order, each one's index by
        #: id), and the files read since: between scans only those can have moved
        self._listed: tuple[_Tail, ...] = ()
        self._entries: list[str] = []
        self._index: dict[int, int] = {}
        self._read_since: list[_Tail] = []
        self._fd_moves_seen = -1

    # -- the Source protocol ------------------------------------------------

    def open(self, checkpoint: Mapping[str, Any] | None) -> None:
        """Re-open what the checkpoint followed, then scan (start_at for first sight)."""
        first_run = checkpoint is None or checkpoint.get("kind") != "files"
        if not first_run and checkpoint is not None:
            self._restore(checkpoint)
        self._scan(self._clock(), startup=True, first_run=first_run)
        self._behind = dict.fromkeys(self._current, 0.0)  # each is read once at the start
        if self._settings.use_inotify:
            self._watcher = self._start_watcher()

    def _start_watcher(self) -> Watcher | None:
        """inotify on the followed directories, or None (then every file every poll_interval)."""
        try:
            watcher = Watcher(self._notify, self._is_followed, written=self._written)
        except OSError as exc:
            log.warning('source "%s": no inotify (%s): checking every file every %gs', self.name,
                        exc.strerror, self._settings.poll_interval)
            self._scan_every = self._settings.poll_interval / 2
            return None
        watcher.update(self._watch_dirs())
        self._poll = select.poll()
        self._poll.register(watcher.fileno(), select.POLLIN)
        return watcher

    def fileno(self) -> int | None:
        """The inotify descriptor, for the service's ``select`` (None: no inotify)."""
        return self._watcher.fileno() if self._watcher is not None else None

    def pending(self, *, queued: bool = True) -> bool:
        """Might :meth:`read` return lines now? A few microseconds, no file looked at.

        False means a read now would find nothing that the next wake-up (the inotify
        descriptor becoming readable, or the service's periodic one) would not find:
        no event queued or taken, no data or partial line due, no rotated file being
        finished, no periodic check due. Without inotify, files are looked at only at
        the periodic check (every ``poll_interval / 2``), as the docs promise.

        ``queued=False`` leaves out the events still in the kernel's queue, which
        :meth:`fileno` announces anyway: after a read, it says whether to read again
        at once (what the last read left) or to let the next wake-up, after
        ``batch_wait``, gather what is being written. (Before the first read after a
        wake-up it would say False with the very events that woke us still queued.)
        """
        now = self._clock()
        if self._touched or self._retired or self._scan_due(now):
            return True
        if any(at <= now for at in self._behind.values()):
            return True
        return queued and self._poll is not None and bool(self._poll.poll(0))

    def read(self, max_bytes: int = 4 << 20) -> list[Chunk]:
        """Whole lines appended since the last read, old (rotated) files first."""
        now = self._clock()
        if len(self._read_since) > 4 * len(self._current) + 64:  # no checkpoint for long
            self._read_since, self._listed = [], ()
        touched, named = self._take_events()
        full = self._scan_due(now) or self._replaced(touched, named)
        if full:
            self._rescan.clear()
            self._scan(now)
            if self._watcher is not None:
                self._watcher.update(self._watch_dirs())
        chunks: list[Chunk] = []
        budget = max_bytes
        for tail in list(self._retired):
            budget -= self._read_tail(tail, budget, chunks, now)
            if tail.fd < 0:
                continue  # dropped while reading
            if tail.offset >= tail.seen_size and now - tail.still_since >= self._quiet:
                self._drop_retired(tail, chunks)
        # between scans inotify names what changed; a file never read yet, and data or a
        # partial line left by the last read (the budget, a line being written), are
        # looked at again
        tails = (list(self._current.values()) if full or self._watcher is None
                 else self._due(touched, now))
        if tails:
            self._turn = (self._turn + 1) % len(tails)
            order = tails[self._turn :] + tails[: self._turn]
            for index, tail in enumerate(order):
                if budget <= 0:
                    with self._touched_lock:  # not reached: their turn comes at the next read
                        self._touched.update(t.path for t in order[index:])
                    break
                budget -= self._read_tail(tail, budget, chunks, now)
                self._note(tail)
        return chunks

    def checkpoint(self) -> dict[str, Any]:
        """Offsets, identities and generations of every open file (JSON-able)."""
        return {
            "kind": "files",
            "patterns": list(self.patterns),
            "gens": dict(self._gens),
            "files": [t.state() for t in (*self._current.values(), *self._retired)],
        }

    def checkpoint_text(self) -> str:
        """:meth:`checkpoint` as the state stores it (``logwatch.state.encode``), cheaply.

        Each file's entry is encoded again only when it changed, so a commit after a
        read of a few of 1,000 files does not encode the other 997 again; and only the
        files read since the last call are even looked at. Every entry is looked at
        after a scan (which may retire, restart or add any file), when the files listed
        are not the same objects in the same order, or when a descriptor was parked or
        reopened anywhere (the pool parks other sources' files too).
        """
        if self._gens_json is None:
            self._gens_json = encode(self._gens)
        tails = (*self._current.values(), *self._retired)
        read, self._read_since = self._read_since, []
        listed = self._listed
        if (_Tail.fd_moves != self._fd_moves_seen or len(tails) != len(listed)
                or not all(map(operator.is_, tails, listed))):
            self._listed, self._fd_moves_seen = tails, _Tail.fd_moves
            self._entries = [t.encoded() for t in tails]
            self._index = {id(t): n for n, t in enumerate(tails)}
        elif len(read) >= len(tails):  # every file read, or some several times: in order
            self._entries = [t.encoded() for t in tails]
        else:
            entries, index = self._entries, self._index
            for tail in read:
                if (at := index.get(id(tail))) is not None:  # else: added and dropped since
                    entries[at] = tail.encoded()
        files = ",".join(self._entries)
        return f'{self._head_json},"gens":{self._gens_json},"files":[{files}]}}'

    def describe(self) -> list[str]:
        """What is followed, what is waited for, what cannot be read."""
        mode = (f"inotify + check every {self._settings.poll_interval:g}s"
                if self._settings.use_inotify else
                f"check every {self._settings.poll_interval:g}s, inotify off")
        lines = [f'source "{self.name}": files ({mode})']
        parked = sum(t.fd < 0 for t in self._current.values())
        if parked:
            lines.append(f"  {len(self._current)} files followed, {len(self._current) - parked} "
                         f"open (the others are opened when they grow; limit "
                         f"{OPEN_FILES.size} open files)")
        for tail in self._current.values():
            lines.append(f"  following {tail.path} from offset {tail.offset:,}")
        for tail in self._retired:
            lines.append(f"  finishing {tail.path} (rotated away, inode {tail.ino})")
        for pattern in self._waiting:
            what = "nothing matches" if has_magic(pattern) else "missing:"
            lines.append(f"  {what} {pattern}, waiting (read from its start when it appears)")
        for path, problem in sorted(self._problems.items()):
            lines.append(f"  {path}: {problem}; retrying")
        return lines

    def nothing_here(self) -> str | None:
        """Why this source has nothing to read on this machine (no file yet), or None."""
        if self._current or self._retired:
            return None
        return "no " + ", ".join(self.patterns)

    def close(self) -> None:
        """Close the watcher and every descriptor (nothing unreturned is lost)."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        self._poll = None
        for tail in (*self._current.values(), *self._retired):
            tail.close()
        self._current.clear()
        self._retired.clear()
        self._behind.clear()

    # -- called by the watcher (from read) ---------------------------------------

    def _notify(self, path: str | None) -> None:
        """``path`` may name another file now: check it, read it (None: scan everything)."""
        if path is None:
            self._rescan.set()
        else:
            with self._touched_lock:
                self._touched.add(path)
                self._named.add(path)

    def _written(self, path: str) -> None:
        """``path`` was written to: read it (its name still holds the same file)."""
        with self._touched_lock:
            self._touched.add(path)

    def _take_events(self) -> tuple[AbstractSet[str], AbstractSet[str]]:
        """The paths written to or named since the last read, and those named only."""
        if self._watcher is not None:
            self._watcher.drain()
        if not self._touched:
            return _NONE, _NONE
        with self._touched_lock:
            touched, self._touched = self._touched, set()
            named, self._named = self._named, set()
        return touched, named

    def _scan_due(self, now: float) -> bool:
        """Is a full check due (asked for, or its interval has passed)?"""
        # a file or directory we cannot read sends no event when that changes: it is
        # retried every poll_interval, as without inotify
        every = self._settings.poll_interval / 2 if self._problems else self._scan_every
        return self._rescan.is_set() or now - self._last_scan >= every

    def _due(self, touched: AbstractSet[str], now: float) -> list[_Tail]:
        """The followed files to read between two scans: named by inotify, or due again."""
        due = [path for path, at in self._behind.items() if at <= now]
        current = self._current
        tails = []
        for path in (touched | set(due)) if due else touched:
            tail = current.get(path)
            if tail is not None:
                tails.append(tail)
            else:
                self._behind.pop(path, None)
        return tails

    def _note(self, tail: _Tail) -> None:
        """After a read of ``tail``: must it be read again without an event, and when?"""
        if tail.seen_size < 0 or tail.offset < tail.seen_size:  # parked since, too
            # a partial line waits for its newline (an event) or for quiet; the rest: at once
            self._behind[tail.path] = (tail.still_since + self._quiet if tail.partial
                                       else 0.0)
        else:
            self._behind.pop(tail.path, None)

    def _is_followed(self, path: str) -> bool:
        """Is ``path`` followed, or would the next scan follow it?"""
        if path in self._current:
            return True
        if ROTATED.search(os.path.basename(path)):
            return path in self.patterns  # a wildcard never picks it up
        return any(fnmatch.fnmatchcase(path, p) for p in self.patterns)

    def _watch_dirs(self) -> set[str]:
        dirs = {os.path.dirname(t.path) for t in self._current.values()}
        dirs.update(literal_dir(p) if has_magic(p) else os.path.dirname(p)
                    for p in self.patterns)
        return {d for d in dirs if d}

    # -- scanning -------------------------------------------------------------

    def _problem(self, key: str, message: str | None) -> None:
        """Report a problem once, and once more when it clears."""
        old = self._problems.get(key)
        if message is None:
            if old is not None:
                del self._problems[key]
                log.info('source "%s": %s: readable again', self.name, key)
        elif old != message:
            self._problems[key] = message
            log.warning('source "%s": %s: %s; retrying every %gs', self.name, key, message,
                        self._settings.poll_interval)

    def _set_gen(self, path: str, gen: int) -> None:
        self._gens[path] = gen
        self._gens_json = None

    def _replaced(self, touched: AbstractSet[str], named: AbstractSet[str]) -> bool:
        """Does a path the watcher named since the last read hold another file than ours?

        Only a path named by a creation, a rename or a deletion (``named``) can: a
        write leaves the name on the same file, so it costs no ``stat``.
        """
        for path in touched:
            tail = self._current.get(path)
            if tail is None:
                if path not in self._problems:
                    return True  # new (one that cannot be opened waits for the periodic check)
            elif path in named and not self._still_there(tail):
                return True
        return False

    def _scan(self, now: float, *, startup: bool = False, first_run: bool = False) -> None:
        """Re-expand the globs; notice rotation, recreation and truncation."""
        self._last_scan = now
        self._listed = ()  # any file may have moved: checkpoint_text looks at each
        with self._touched_lock:
            self._touched.clear()  # every path is checked now
            self._named.clear()
        found, self._waiting = expand(self.patterns, self._problem)
        for path in [p for p in self._current if p not in found]:
            # a glob that failed (out of descriptors) also finds nothing: gone needs proof
            if _absent(path):
                self._retire(self._current.pop(path), now, "is gone")
            elif not self._still_there(self._current[path]):
                self._retire(self._current.pop(path), now, "was replaced")
        for path, pattern in found.items():
            tail = self._current.get(path)
            if tail is not None:
                OPEN_FILES.used(tail)
                if not self._still_there(tail):
                    self._retire(self._current.pop(path), now, "was replaced")
                    tail = None
                elif tail.fd >= 0 and not tail.same_start():
                    self._truncated(tail, "starts with other bytes")
            if tail is None:
                from_end = (startup and self._settings.start_at == "end"
                            and (first_run or pattern not in self._known_patterns))
                self._attach(path, from_end, now)
        for path in [p for p in self._behind if p not in self._current]:
            del self._behind[path]

    def _still_there(self, tail: _Tail) -> bool:
        """Is ``tail``'s file still at its path? (Only a stat that succeeds can say no.)"""
        try:
            st = os.stat(tail.path) if tail.path in self.patterns else os.lstat(tail.path)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell now (EACCES on the directory...): not a rotation
        return (st.st_dev, st.st_ino) == (tail.dev, tail.ino)

    def _open(self, path: str) -> int:
        return open_log(path, trusted=path in self.patterns)

    def _attach(self, path: str, from_end: bool, now: float) -> None:
        try:
            fd = self._open(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._problem(path, _open_error(path, exc))
            return
        self._problem(path, None)
        st = os.fstat(fd)
        gen = self._gens.get(path, -1) + 1
        self._set_gen(path, gen)
        offset, last = _last_line_end(fd, st.st_size, self._cap) if from_end else (0, b"")
        tail = _Tail(path, fd, st.st_dev, st.st_ino, gen, offset, still_since=now, last=last)
        OPEN_FILES.opened(tail)
        tail.settle_fingerprint()
        self._current[path] = tail
        log.info('source "%s": following %s (inode %d) from offset %d', self.name, path,
                 st.st_ino, offset)

    def _retire(self, tail: _Tail, now: float, why: str) -> None:
        """Keep reading a rotated-away descriptor until it has been quiet for ``quiet``."""
        log.info('source "%s": %s %s: finishing inode %d before switching', self.name,
                 tail.path, why, tail.ino)
        tail.retired = True
        tail.still_since = now
        self._retired.append(tail)

    def _drop_retired(self, tail: _Tail, chunks: list[Chunk]) -> None:
        self._emit_partial(tail, chunks)
        tail.close()
        self._retired.remove(tail)

    def _truncated(self, tail: _Tail, why: str) -> None:
        """copytruncate and friends: finish the copy if there is one, then a new generation."""
        log.info('source "%s": %s %s: truncated, reading it from the start', self.name,
                 tail.path, why)
        copy = self._find_copy(tail)
        if copy is not None:
            # read before the new generation: these lines were written first
            log.info('source "%s": reading the rest of %s from its copy %s', self.name,
                     tail.path, copy.path)
            self._retired.insert(0, copy)
        gen = max(self._gens.get(tail.path, -1), tail.gen) + 1
        if not tail.retired:
            self._set_gen(tail.path, gen)
        tail.restart(gen)
        tail.settle_fingerprint()

    def _find_copy(self, tail: _Tail) -> _Tail | None:
        """copytruncate's copy (``app.log.1``): same first bytes, longer than what we read.

        Its bytes past our offset are the lines written after our last read and before
        the copy; they are read under the truncated stream's name and offsets, so their
        keys are the ones they would have had.
        """
        if tail.fp is None or tail.retired:
            return None
        # rotated names start like the file (app.log.1, app.log-20250101, app-20250101.log)
        stem = os.path.basename(tail.path).split(".")[0]
        with contextlib.suppress(OSError), os.scandir(os.path.dirname(tail.path) or ".") as it:
            for entry in sorted(it, key=_mtime, reverse=True):
                if (entry.path == tail.path or not entry.name.startswith(stem)
                        or COMPRESSED.search(entry.name)
                        or not entry.is_file() or entry.inode() == tail.ino
                        or entry.stat().st_size <= tail.offset):
                    continue
                copy = self._open_copy(entry.path, tail)
                if copy is not None:
                    return copy
        return None

    def _open_copy(self, path: str, tail: _Tail) -> _Tail | None:
        try:
            fd = open_log(path, trusted=False)
        except OSError:
            return None
        copy = _Tail(tail.path, fd, tail.dev, tail.ino, tail.gen, tail.offset, tail.fp,
                     tail.fp_len, tail.skipping, still_since=self._clock(), retired=True,
                     first=tail.first, last=tail.last)
        OPEN_FILES.opened(copy)
        if copy.same_start():
            return copy
        copy.close()
        return None

    # -- reading ----------------------------------------------------------------

    def _reopen_parked(self, tail: _Tail) -> Reopened:
        """Open a parked file again: at its path if the inode is the same, else rotated
        away in its directory (found by inode); "gone" only if it is nowhere."""
        failed = False
        for candidate in _candidates(tail.path, tail.ino, first_only=True):
            try:
                fd = open_log(candidate, trusted=candidate in self.patterns)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._problem(tail.path, _open_error(tail.path, exc))
                failed = True
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (tail.dev, tail.ino):
                tail.fd = fd
                _Tail.fd_moves += 1
                OPEN_FILES.opened(tail)
                self._problem(tail.path, None)
                return "open"
            os.close(fd)
        return "failed" if failed else "gone"

    def _has_news(self, tail: _Tail) -> bool:
        """Might a parked file have something to read (or be rotated)? Without opening it."""
        try:
            st = os.stat(tail.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != (tail.dev, tail.ino) or st.st_size != tail.offset

    def _ready(self, tail: _Tail) -> bool:
        """Is ``tail`` open to be read (a parked one reopened if it may have news)?"""
        if tail.fd >= 0:
            OPEN_FILES.used(tail)
            return True
        if not tail.retired and not self._has_news(tail):
            tail.seen_size = tail.offset  # nothing past it (same inode, same size)
            return False
        reopened = self._reopen_parked(tail)
        if reopened == "gone" and tail.retired:
            log.warning('source "%s": %s (inode %d) is gone while parked; what was appended '
                        "after offset %d was not read", self.name, tail.path, tail.ino,
                        tail.offset)
            self._retired.remove(tail)
        return reopened == "open"

    def _read_tail(self, tail: _Tail, budget: int, chunks: list[Chunk], now: float) -> int:
        """Append ``tail``'s new whole lines to ``chunks``; the number of bytes consumed.

        The first ``pread`` asks for up to :data:`FIRST_READ` bytes: a shorter answer
        says where the file ends, so the usual read (a few lines) costs that one system
        call, with no ``fstat``. A file truncated and written again past our offset
        between two reads cannot be told by its size: the bytes before our offset, read
        with that first block (:meth:`_Tail.read_on`), can, with nothing hashed.
        """
        self._read_since.append(tail)  # its checkpoint entry may move (see checkpoint_text)
        if not self._ready(tail):
            return 0
        want = min(max(self._first, tail.expect + tail.expect // 2), self._first_most,
                   max(budget, self._cap + 1))
        if len(self._buffer) < want + BEHIND:
            self._buffer = bytearray(want + BEHIND)
        block = tail.read_on(want, self._buffer)
        if block is not None and len(block) < want:
            size = tail.offset + len(block)  # the end of the file, as the pread met it
        else:
            size = os.fstat(tail.fd).st_size  # more than one block, or not our bytes
        if tail.retired and (size < tail.offset or block is None):
            # a rotated-away file rewritten (the next copytruncate reuses app.log.1): not ours
            log.info('source "%s": %s was rewritten after rotation; done with it', self.name,
                     tail.path)
            tail.close()
            self._retired.remove(tail)
            return 0
        retired = len(self._retired)
        if size < tail.offset:
            self._truncated(tail, f"shrank to {size} bytes")
        elif block is None:
            # truncated and grown past our offset between two reads: the size cannot tell
            self._truncated(tail, "has other bytes before our offset")
        consumed = 0
        if len(self._retired) > retired:  # its copytruncate copy: read that first
            consumed = self._read_tail(self._retired[0], budget, chunks, now)
            budget -= consumed
            block = None
        if size != tail.seen_size:
            tail.seen_size, tail.still_since = size, now
        consumed += self._read_blocks(tail, size, budget, block, chunks)
        if tail.offset < size and now - tail.still_since >= self._quiet:
            consumed += self._emit_partial(tail, chunks)
        tail.expect = consumed
        return consumed

    def _want(self, tail: _Tail, size: int, budget: int) -> int:
        """How much to ``pread`` next: at least cap + 1 bytes, so a whole line or a cut fits."""
        return min(self._block, size - tail.offset, max(budget, self._cap + 1))

    def _read_blocks(self, tail: _Tail, size: int, budget: int, block: bytes | None,
                     chunks: list[Chunk]) -> int:
        """Whole lines from ``tail.offset`` up to ``size`` (``block``: the first, read already)."""
        consumed = 0
        tail.partial = False
        # after the first block, only while the budget left can hold a line of any length:
        # a sliver of budget would cost a whole extra chunk (and match call) for a few lines
        while tail.offset < size and budget - consumed > (self._cap if consumed else 0):
            data = block if block is not None else os.pread(
                tail.fd, self._want(tail, size, budget - consumed), tail.offset)
            block = None
            if not data:
                break
            if all_whole(data, self._cap, tail.skipping):  # split_lines' first case, inline
                self._add(tail, ((0, data),), chunks)
                tail.advance(data, len(data))
                consumed += len(data)
                continue
            split = split_lines(data, self._cap, tail.skipping)
            self._add(tail, split.pieces, chunks)
            tail.advance(data, split.consumed)
            tail.skipping = split.skipping
            consumed += split.consumed
            if split.consumed == 0:
                tail.partial = True
                break  # a partial last line
        return consumed

    def _add(self, tail: _Tail, pieces: Iterable[tuple[int, bytes]], chunks: list[Chunk]) -> None:
        for at, data in pieces:
            if tail.fp is None:
                tail.settle_fingerprint(force=True)
            chunks.append(Chunk(self.name, tail.path, data, tail.stream, tail.offset + at))

    def _emit_partial(self, tail: _Tail, chunks: list[Chunk]) -> int:
        """Return a partial last line as a line (quiet, or its file rotated away)."""
        size = os.fstat(tail.fd).st_size
        if tail.offset >= size:
            return 0
        data = os.pread(tail.fd, min(size - tail.offset, self._cap + 1), tail.offset)
        if b"\n" in data:
            return 0  # grew meanwhile: whole lines come with the next read
        if tail.skipping:
            tail.skipping = False  # the end of a line already cut and returned
        else:
            piece = cut_line(data, self._cap) if len(data) > self._cap else data + b"\n"
            self._add(tail, [(0, piece)], chunks)
        tail.advance(data, len(data))
        return len(data)

    # -- restart ----------------------------------------------------------------

    def _restore(self, checkpoint: Mapping[str, Any]) -> None:
        self._known_patterns = set(checkpoint.get("patterns", ()))
        self._gens = {str(k): int(v) for k, v in dict(checkpoint.get("gens", {})).items()}
        self._gens_json = None
        now = self._clock()
        for entry in checkpoint.get("files", ()):
            tail = self._reopen(entry, now)
            if tail is None:
                log.warning('source "%s": %s (inode %s) is gone since the last run; what was '
                            "appended to it after offset %s was not read", self.name,
                            entry.get("path"), entry.get("ino"), entry.get("offset"))
            elif tail.retired or tail.path != entry["path"]:
                tail.retired = True
                self._retired.append(tail)
            else:
                self._current[tail.path] = tail

    def _reopen(self, entry: Mapping[str, Any], now: float) -> _Tail | None:
        """Find the file of a checkpoint entry: at its path, else rotated in its directory.

        If it cannot be opened now (out of descriptors, permissions), it is kept parked
        at its offset and opened later: never forgotten, never read again from 0.
        """
        path = str(entry["path"])
        for candidate in _candidates(path, int(entry["ino"])):
            try:
                fd = open_log(candidate, trusted=candidate in self.patterns)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if candidate != path:
                    continue
                self._problem(path, _open_error(path, exc))
                return _Tail(path, -1, int(entry["dev"]), int(entry["ino"]), int(entry["gen"]),
                             int(entry["offset"]), entry.get("fp"), int(entry.get("fp_len", 0)),
                             bool(entry.get("skip")), still_since=now,
                             retired=bool(entry.get("retired")))
            st = os.fstat(fd)
            tail = _Tail(path if candidate == path else candidate, fd, st.st_dev, st.st_ino,
                         int(entry["gen"]), int(entry["offset"]), entry.get("fp"),
                         int(entry.get("fp_len", 0)), bool(entry.get("skip")),
                         still_since=now, retired=bool(entry.get("retired")))
            OPEN_FILES.opened(tail)
            if (st.st_dev, st.st_ino) == (entry["dev"], entry["ino"]):
                if not tail.same_start():
                    # truncated (copytruncate) or a reused inode: both start a new generation
                    self._truncated(tail, "starts with other bytes since the last run")
                elif st.st_size < tail.offset:
                    self._truncated(tail, "shrank while logwatch was stopped")
                return tail
            tail.close()
        return None


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0


def _candidates(path: str, ino: int, *, first_only: bool = False) -> Iterable[str]:
    """``path`` itself, then files in its directory with inode ``ino`` (rotated copies).

    ``first_only``: the directory is listed only if ``path`` is no longer that inode.
    """
    yield path
    if first_only:
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == ino:
                return
    with contextlib.suppress(OSError), os.scandir(os.path.dirname(path) or ".") as entries:
        yield from [e.path for e in entries
                    if e.path != path and e.inode() == ino and not COMPRESSED.search(e.name)]


def _absent(path: str) -> bool:
    """Is there positively nothing at ``path``? (An error other than ENOENT says no.)"""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _last_line_end(fd: int, size: int, cap: int) -> tuple[int, bytes]:
    """Where ``start_at = "end"`` starts: after the last newline (a line being written is
    read); and the bytes before it (at most BEHIND) that the next read checks."""
    if size == 0:
        return 0, b""
    length = min(size, cap + 1)
    tail = os.pread(fd, length, size - length)
    end = tail.rfind(b"\n") + 1 or length
    return size - length + end, tail[max(end - BEHIND, 0) : end]


# ---------------------------------------------------------------------------
# status


def file_rows(name: str, checkpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per followed file: path, offset, size and lag (bytes not yet read), read from disk now.

    A file being finished after a rotation is looked for by its inode (``app.log.1``);
    lag is None when the file is gone.
    """
    rows = []
    for entry in checkpoint.get("files", ()):
        path, offset = str(entry.get("path")), int(entry.get("offset", 0))
        ident = (entry.get("dev"), entry.get("ino"))
        row: dict[str, Any] = {"source": name, "path": path, "offset": offset, "size": None,
                               "lag": None, "open": not entry.get("parked")}
        candidates = _candidates(path, int(entry.get("ino", -1))) if entry.get("retired") else [
            path]
        for candidate in candidates:
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == ident:
                row.update(path=candidate, size=st.st_size, lag=max(st.st_size - offset, 0))
                break
            if not entry.get("retired"):  # replaced: all of the new file is still to read
                row.update(size=st.st_size, lag=st.st_size)
        rows.append(row)
    return rows


