"""inotify, read on the main loop's ``select``: a wake-up for the file tailer, never the truth.

One inotify descriptor per file source, watching the followed directories, and
no thread: the service waits on :meth:`Watcher.fileno` next to its self-pipe,
and the tailer calls :meth:`Watcher.drain` at each read, which names the
followed paths that were written, created, moved or deleted: a path only
written to (``IN_MODIFY``, ``IN_CLOSE_WRITE``) apart from one whose name now
holds another file or none (create, moved to or from, delete), since only the
latter needs its identity checked. An overflowed
queue (``IN_Q_OVERFLOW``) or a watched directory that went away asks for a full
check at once, so the tailer can trust inotify between its (rare) periodic
checks. Where inotify is not available (not Linux, no watches left) the
periodic check alone delivers everything, later.

libc is called through ctypes: ``inotify_init1``, ``inotify_add_watch`` and
``inotify_rm_watch`` are three calls, not worth a dependency.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import stat
import struct
from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

#: what each watched directory reports: data (modify, close), a name that now holds
#: another file or none (create, moved to / from, delete) and the directory itself
#: going away. Without watchdog's pairing of moves there is no delay to fear, so
#: renames are asked for: a file renamed over ours is switched to at once.
MASK = (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#: events that end a watch or lose some: check everything
_RESCAN = IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF
#: events that only say data changed: the name still holds the same file
_WRITTEN = IN_MODIFY | IN_CLOSE_WRITE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
_LENGTH = struct.Struct("I")  # len alone, at _LENGTH_AT
_LENGTH_AT = 12
#: one read() of events: room for about 500 events with short names
_READ_SIZE = 64 << 10
#: a read() that returned less than this emptied the queue (room for one more event was left)
_DRAINED = _READ_SIZE - _EVENT.size - 256
#: paths remembered per (watch, name) at most
_PATHS_KEPT = 4096


class _Libc:
    """The three libc calls, or :class:`OSError` where they do not exist."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name, use_errno=True)
            self.init1 = libc.inotify_init1
            self.add_watch = libc.inotify_add_watch
            self.rm_watch = libc.inotify_rm_watch
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, f"inotify is not available here ({exc})") from exc
        self.init1.argtypes = [ctypes.c_int]
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def parse_events(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(wd, mask, name)`` of each ``struct inotify_event`` in ``data``."""
    return [(wd, mask, name.rstrip(b"\0")) for wd, mask, name in iter_events(data)]


def iter_events(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """:func:`parse_events`, one event at a time, each name with its NUL padding."""
    at, size, unpack = 0, len(data), _EVENT.unpack_from
    while at + _EVENT.size <= size:
        wd, mask, _cookie, length = unpack(data, at)
        at += _EVENT.size
        yield wd, mask, data[at : at + length]
        at += length


def distinct_events(data: bytes) -> bytes:
    """The events of ``data`` each once (the first of identical ones; order is not kept
    otherwise): a write is one ``IN_MODIFY``, so a busy file repeats the same bytes."""
    records: dict[bytes, None] = {}
    at, size, length_at = 0, len(data), _LENGTH.unpack_from
    while at + _EVENT.size <= size:
        end = at + _EVENT.size + length_at(data, at + _LENGTH_AT)[0]
        records[data[at:end]] = None
        at = end
    return b"".join(records)


class Watcher:
    """An inotify descriptor on the followed directories: only a wake-up, never the truth.

    ``notify(path)`` is called from :meth:`drain` for each followed path named by an
    event, ``notify(None)`` when everything must be checked (overflow, a directory
    gone or replaced). With ``written``, a path named only by writes (the same file,
    more data) goes to ``written(path)`` instead, and ``notify`` hears only of names
    that may now hold another file. Raises :class:`OSError` where inotify cannot be had.
    """

    def __init__(self, notify: Callable[[str | None], None],
                 followed: Callable[[str], bool], *,
                 written: Callable[[str], None] | None = None) -> None:
        self._libc = _Libc()
        self._fd = _check(self._libc.init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")
        self._notify = notify
        self._written = written or notify
        self._followed = followed
        self._watches: dict[str, tuple[tuple[int, int], int]] = {}
        self._dirs: dict[int, str] = {}
        #: (watch, name) -> path, so a busy file's events do not build its path each time
        self._paths: dict[tuple[int, bytes], str] = {}
        self._failed: set[str] = set()
        self.overflows = 0

    def fileno(self) -> int:
        """The descriptor to wait on: readable when events are queued."""
        return self._fd

    def update(self, dirs: Iterable[str]) -> None:
        """Watch ``dirs``; re-watch a directory that was replaced, drop one that is gone."""
        wanted = set(dirs)
        for directory in list(self._watches):
            ident, wd = self._watches[directory]
            if directory not in wanted or _dir_ident(directory) != ident:
                self._libc.rm_watch(self._fd, wd)  # EINVAL if the kernel dropped it: fine
                del self._watches[directory]
                self._dirs.pop(wd, None)
                self._paths.clear()  # the kernel may give wd to another directory
        for directory in wanted - set(self._watches):
            self._watch(directory)

    def _watch(self, directory: str) -> None:
        ident = _dir_ident(directory)
        if ident is None:
            return
        try:
            wd = _check(self._libc.add_watch(self._fd, os.fsencode(directory), MASK),
                        "inotify_add_watch")
        except OSError as exc:
            if directory not in self._failed:  # e.g. fs.inotify.max_user_watches reached
                log.warning("cannot watch %s with inotify (%s); the periodic check covers it",
                            directory, exc.strerror)
                self._failed.add(directory)
            return
        self._failed.discard(directory)
        self._watches[directory] = (ident, wd)
        self._dirs[wd] = directory

    def drain(self) -> None:
        """Read every queued event and report the followed paths they name."""
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:  # should not happen; the periodic check is the truth
                log.warning("reading inotify events failed (%s); checking every file",
                            exc.strerror)
                self._notify(None)
                return
            if not data:
                return
            self._dispatch(data)
            if len(data) < _DRAINED:
                return  # the queue was empty: a second read() would only say so

    def _dispatch(self, data: bytes) -> None:
        """Report the events of one read(): each followed path once, names before writes.

        A busy file sends one identical event per write: repeats are dropped as raw
        bytes first (:func:`distinct_events`), then events are merged by (watch, name),
        so only the first of a path's events costs a parse, a join and a lookup.
        """
        if len(self._paths) > _PATHS_KEPT:
            self._paths.clear()  # names come and go (temporary files): keep it bounded
        if len(data) > _EVENT.size:
            wd, mask, _cookie, length = _EVENT.unpack_from(data)
            if _EVENT.size + length == len(data) and not mask & ~_WRITTEN:
                # the usual read: one write to one file (the kernel merges a file's repeated
                # writes while none is read), told without the general walk below
                self._report((wd, data[_EVENT.size :]), mask)
                return
        masks: dict[tuple[int, bytes], int] = {}
        rescan = False
        for wd, mask, name in iter_events(distinct_events(data)):
            if mask & _RESCAN:
                if mask & IN_Q_OVERFLOW:
                    self.overflows += 1
                    log.info("inotify queue overflowed; checking every followed file")
                rescan = True
            elif name and not mask & IN_ISDIR:
                key = (wd, name)
                masks[key] = masks.get(key, 0) | mask
        for key, mask in masks.items():
            self._report(key, mask)
        if rescan:
            self._notify(None)

    def _report(self, key: tuple[int, bytes], mask: int) -> None:
        """Tell of the events ``mask`` on ``key`` (watch, padded name), if its path is followed."""
        path = self._paths.get(key) or self._path(*key)
        if path and self._followed(path):
            (self._notify if mask & ~_WRITTEN else self._written)(path)

    def _path(self, wd: int, name: bytes) -> str:
        """The path an event names (``name`` as padded in the event; "" if its watch is
        gone), remembered."""
        directory = self._dirs.get(wd)
        if directory is None:
            return ""
        path = os.path.join(directory, os.fsdecode(name.rstrip(b"\0")))
        self._paths[wd, name] = path
        return path

    def stop(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._watches.clear()
            self._dirs.clear()
            self._paths.clear()


def _dir_ident(directory: str) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
