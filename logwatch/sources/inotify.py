"""inotify (through watchdog) as a wake-up for the file tailer, never as the truth.

The tailer's periodic scan alone delivers everything, because inotify queues
overflow silently; a :class:`Watcher` only makes it look sooner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterable
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

#: what watchdog reports to us: no renames, hence no creations (it asks inotify for
#: both together). Watchdog holds every event queued behind an IN_MOVED_FROM for up
#: to half a second while it looks for the IN_MOVED_TO (always for a move out of the
#: directory, and for a rename inside it when its reading thread comes in between):
#: no wake-up at all meanwhile, time enough for a file renamed over ours to be
#: replaced again, unread. The first write or close at the path shows a new file
#: as well; one moved in and never written to waits for the periodic check.
EVENTS: list[type[FileSystemEvent]] = [FileModifiedEvent, FileClosedEvent, FileDeletedEvent,
                                        DirDeletedEvent]
#: what watchdog's inotify emitter logs at ERROR when an event arrives while it stops
_STOPPING_NOISE = "called when the thread is inactive"


class _StopNoise(logging.Filter):
    """Drop watchdog's "thread is inactive" error: an event that raced our own stop.

    Stopping an emitter clears its inotify handle before removing the watches, so an
    event already read (a file written during the stop) finds no handle and watchdog
    logs an ERROR, though nothing is wrong: we are stopping and drop events anyway.
    No stop order avoids it (each emitter stops that way), so it is filtered here.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return _STOPPING_NOISE not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_StopNoise())


class Watcher:
    """Watchdog observer on the followed directories: only a wake-up, never the truth."""

    def __init__(self, notify: Callable[[str | None], None],
                 followed: Callable[[str], bool]) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._watches: dict[str, tuple[tuple[int, int], Any]] = {}
        self._handler = _Handler(notify, followed)
        self._failed: set[str] = set()
        self._observer.start()

    def update(self, dirs: Iterable[str]) -> None:
        """Watch ``dirs``; re-watch a directory that was replaced, drop one that is gone."""
        wanted = set(dirs)
        for directory in list(self._watches):
            ident, watch = self._watches[directory]
            if directory not in wanted or _dir_ident(directory) != ident:
                # watchdog raises if inotify already dropped the watch (directory deleted)
                with contextlib.suppress(Exception):
                    self._observer.unschedule(watch)
                del self._watches[directory]
        for directory in wanted - set(self._watches):
            new_ident = _dir_ident(directory)
            if new_ident is None:
                continue
            try:
                watch = self._observer.schedule(self._handler, directory, recursive=False,
                                                event_filter=EVENTS)
            except OSError as exc:
                if directory not in self._failed:  # e.g. fs.inotify.max_user_watches reached
                    log.warning("cannot watch %s with inotify (%s); the periodic check covers it",
                                directory, exc)
                    self._failed.add(directory)
                continue
            self._failed.discard(directory)
            self._watches[directory] = (new_ident, watch)

    def stop(self) -> None:
        """Drop every watch (emitters stopped and joined), then stop and join the observer."""
        with contextlib.suppress(Exception):  # a watch inotify dropped already (dir deleted)
            self._observer.unschedule_all()
        self._watches.clear()
        self._observer.stop()
        self._observer.join(timeout=5)


def _dir_ident(directory: str) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Handler(FileSystemEventHandler):
    """Wake the service for events on followed paths (a deleted directory: rescan)."""

    def __init__(self, notify: Callable[[str | None], None],
                 followed: Callable[[str], bool]) -> None:
        super().__init__()
        self._notify = notify
        self._followed = followed

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Called by watchdog's thread for every event in a watched directory."""
        if event.is_directory:
            self._notify(None)
            return
        path = os.fsdecode(event.src_path)
        if self._followed(path):
            self._notify(path)
