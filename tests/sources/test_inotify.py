"""inotify on the main loop: what the Watcher reports, and that an overflow asks for a full check."""

from __future__ import annotations

import os
import select
import struct
from pathlib import Path

import pytest

from logwatch.sources.inotify import (
    IN_CREATE,
    IN_MODIFY,
    IN_Q_OVERFLOW,
    Watcher,
    distinct_events,
    parse_events,
)


class Seen:
    """The notify callback: paths named, and how many full checks were asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.rescans = 0

    def __call__(self, path: str | None) -> None:
        if path is None:
            self.rescans += 1
        else:
            self.paths.append(path)


def watcher_on(directory: Path, seen: Seen) -> Watcher:
    watcher = Watcher(seen, lambda path: path.endswith(".log"))
    watcher.update([str(directory)])
    return watcher


def readable(watcher: Watcher) -> bool:
    return bool(select.select([watcher.fileno()], [], [], 5.0)[0])


def test_parse_events_reads_the_kernel_struct() -> None:
    """``struct inotify_event``: wd, mask, cookie, len, then a NUL-padded name."""
    data = (struct.pack("iIII", 3, IN_MODIFY, 0, 16) + b"a.log".ljust(16, b"\0")
            + struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0))
    assert parse_events(data) == [(3, IN_MODIFY, b"a.log"), (-1, IN_Q_OVERFLOW, b"")]


def test_distinct_events_drops_repeats_only() -> None:
    """Identical events (a busy file's writes) are kept once; any other difference (the
    mask, the name, the watch) keeps an event."""
    def event(wd: int, mask: int, name: bytes) -> bytes:
        return struct.pack("iIII", wd, mask, 0, 16) + name.ljust(16, b"\0")

    data = (event(3, IN_MODIFY, b"a.log") * 3 + event(3, IN_MODIFY, b"b.log")
            + event(4, IN_MODIFY, b"a.log") + event(3, IN_CREATE, b"a.log")
            + struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0) + event(3, IN_MODIFY, b"b.log"))
    assert parse_events(distinct_events(data)) == [
        (3, IN_MODIFY, b"a.log"), (3, IN_MODIFY, b"b.log"), (4, IN_MODIFY, b"a.log"),
        (3, IN_CREATE, b"a.log"), (-1, IN_Q_OVERFLOW, b"")]


def test_followed_paths_are_named_once_per_drain(tmp_path: Path) -> None:
    """Writes, a creation and a rename into the directory name the followed paths, once each."""
    seen = Seen()
    watcher = watcher_on(tmp_path, seen)
    try:
        log = tmp_path / "a.log"
        for _ in range(3):
            with log.open("ab") as out:
                out.write(b"x\n")
        (tmp_path / "other.txt").write_bytes(b"not followed\n")
        (tmp_path / "new.tmp").write_bytes(b"")
        (tmp_path / "new.tmp").rename(tmp_path / "b.log")  # moved in, never written
        assert readable(watcher)
        watcher.drain()
        assert sorted(seen.paths) == [str(log), str(tmp_path / "b.log")]
        assert seen.rescans == 0
        watcher.drain()  # nothing new: nothing named, no blocking
        assert len(seen.paths) == 2
    finally:
        watcher.stop()


def test_an_overflowed_queue_asks_for_a_full_check(tmp_path: Path) -> None:
    """More events than the kernel queues (fs.inotify.max_queued_events): IN_Q_OVERFLOW is seen
    (watchdog dropped it), so the tailer checks every file instead of trusting the events."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        pytest.skip(f"fs.inotify.max_queued_events is {limit}: too many writes to overflow it")
    seen = Seen()
    watcher = watcher_on(tmp_path, seen)
    fds = [os.open(tmp_path / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
           for name in "ab"]
    try:
        for n in range(limit + 10):  # alternate: identical consecutive events are merged
            os.write(fds[n % 2], b"x")
        watcher.drain()
        assert seen.rescans == 1
        assert watcher.overflows == 1
    finally:
        for fd in fds:
            os.close(fd)
        watcher.stop()


def test_a_deleted_directory_asks_for_a_full_check(tmp_path: Path) -> None:
    """The watched directory itself going away is not a path event: check everything."""
    directory = tmp_path / "logs"
    directory.mkdir()
    seen = Seen()
    watcher = watcher_on(directory, seen)
    try:
        directory.rmdir()
        assert readable(watcher)
        watcher.drain()
        assert seen.rescans == 1
    finally:
        watcher.stop()


def test_writes_are_told_apart_from_names(tmp_path: Path) -> None:
    """With ``written``, a path only written to goes there; a creation, a rename or a
    deletion (the name may hold another file now) goes to ``notify``, even when the same
    drain also saw writes to it."""
    named, written = Seen(), Seen()
    watcher = Watcher(named, lambda path: path.endswith(".log"), written=written)
    watcher.update([str(tmp_path)])
    busy, fresh = tmp_path / "busy.log", tmp_path / "fresh.log"
    busy.write_bytes(b"")
    try:
        watcher.drain()
        named.paths.clear()
        for _ in range(3):
            with busy.open("ab") as out:
                out.write(b"x\n")
        fresh.write_bytes(b"created, then written\n")
        assert readable(watcher)
        watcher.drain()
        assert written.paths == [str(busy)]
        assert named.paths == [str(fresh)]
        busy.unlink()
        assert readable(watcher)
        watcher.drain()
        assert named.paths == [str(fresh), str(busy)]
        assert written.paths == [str(busy)]
    finally:
        watcher.stop()


def test_a_read_of_one_event_is_told_as_the_general_walk_tells_it(tmp_path: Path) -> None:
    """The usual read holds one event (a file's repeated writes, merged by the kernel): a
    write to a followed file goes to ``written``, one to a file not followed nowhere, a lone
    creation to ``notify``."""
    named, written = Seen(), Seen()
    watcher = Watcher(named, lambda path: path.endswith(".log"), written=written)
    watcher.update([str(tmp_path)])
    busy, fresh = tmp_path / "busy.log", tmp_path / "fresh.log"
    busy.write_bytes(b"")
    (tmp_path / "other.txt").write_bytes(b"")
    fds = [os.open(path, os.O_WRONLY | os.O_APPEND) for path in (busy, tmp_path / "other.txt")]
    try:
        watcher.drain()
        named.paths.clear()
        for fd in fds:
            for _ in range(3):  # an open descriptor: IN_MODIFY thrice, one event queued
                os.write(fd, b"x\n")
            assert readable(watcher)
            watcher.drain()
            assert (written.paths, named.paths) == ([str(busy)], [])
        fds.append(os.open(fresh, os.O_WRONLY | os.O_CREAT, 0o600))  # IN_CREATE alone
        assert readable(watcher)
        watcher.drain()
        assert (written.paths, named.paths) == ([str(busy)], [str(fresh)])
    finally:
        for fd in fds:
            os.close(fd)
        watcher.stop()


def test_many_events_are_read_in_one_go(tmp_path: Path) -> None:
    """Thousands of writes to a few files, drained at once: every event is read (the
    queue is left empty) and each path is named once per read() of events, not per write."""
    seen = Seen()
    watcher = watcher_on(tmp_path, seen)
    fds = [os.open(tmp_path / f"{n}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
           for n in range(4)]
    try:
        watcher.drain()
        seen.paths.clear()
        for n in range(4000):  # more than one read() of events (64 KiB: ~2,000 of these)
            os.write(fds[n % 4], b"x")
        watcher.drain()
        assert not select.select([watcher.fileno()], [], [], 0)[0], "events left unread"
        assert len(seen.paths) <= 4 * 4
        assert set(seen.paths) == {str(tmp_path / f"{n}.log") for n in range(4)}
        assert seen.rescans == 0
    finally:
        for fd in fds:
            os.close(fd)
        watcher.stop()
