"""What following files costs: what a read looks at, pending(), the checkpoint's encoding.

The guarantees (no line lost or read twice around rotation and truncation) are
tested in test_files.py and test_rotation.py; here, that the cheap paths stay
cheap and still see what they must.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch.sources.descriptors import OpenFiles
from logwatch.sources.files import FIRST_READ, FileSource, _Tail
from logwatch.state import encode
from tests.sources.conftest import Reader, make_settings

Follow = Callable[..., Reader]


def append(path: Path, data: bytes) -> None:
    """Append bytes to a file (creating it)."""
    with path.open("ab") as f:
        f.write(data)


def wait_readable(source: FileSource) -> None:
    """Until the inotify descriptor has events queued (the writes above were seen)."""
    fd = source.fileno()
    assert fd is not None and select.select([fd], [], [], 5.0)[0]


def source_of(reader: Reader) -> FileSource:
    source = reader.source
    assert isinstance(source, FileSource)
    return source


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts of the file system calls a read makes (os.stat, lstat, fstat, pread: a
    ``preadv`` counts as a ``pread``)."""
    counts: Counter[str] = Counter()
    for name in ("stat", "lstat", "fstat", "pread", "preadv"):
        real = getattr(os, name)

        def counting(*args: object, _real: Callable[..., object] = real,
                     _name: str = name.removesuffix("v"), **kwargs: object) -> object:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    return counts


# -- what a read looks at ----------------------------------------------------------------


class TestReadCost:
    """Between two periodic checks, a write of a few lines costs one pread of that file."""

    def test_a_write_costs_one_pread(self, tmp_path: Path, follow: Follow,
                                                       calls: Counter[str]) -> None:
        """IN_MODIFY says the same file has more data: its path is not stat'ed, its first
        line not read again (the bytes before our offset come with the data), and the
        short answer of the pread says where the file ends (no fstat)."""
        logs = [tmp_path / f"app{n:02d}.log" for n in range(20)]
        for log in logs:
            log.write_bytes(b"first line\n")
        reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
        reader.read_once()
        for round_ in range(3):
            for log in logs[:5]:
                append(log, b"line %d\n" % round_)
            wait_readable(source_of(reader))
            calls.clear()
            reader.read_once()
            assert calls["stat"] + calls["lstat"] == 0, calls
            assert calls["fstat"] == 0, calls
            assert calls["pread"] == 5, calls
        assert len(reader.lines) == 15

    def test_more_than_a_first_read_is_read_whole(self, tmp_path: Path, follow: Follow,
                                                  calls: Counter[str]) -> None:
        """A backlog longer than FIRST_READ: the full answer costs an fstat for the size,
        then the rest comes in blocks; or in budget-sized reads: every line once, in order."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], poll_interval=3600, rescan_interval=3600)
        reader.read_once()
        data = b"".join(b"backlog line %06d\n" % n for n in range(20_000))
        assert len(data) > 3 * FIRST_READ
        append(log, data)
        wait_readable(source_of(reader))
        calls.clear()
        reader.read_once(max_bytes=len(data) + 1)
        assert b"".join(reader.lines) == data
        assert calls["fstat"] == 1, calls
        append(log, data)
        for _ in range(100):  # budget-sized reads: what is left is read next, no event needed
            if not reader.read_once(max_bytes=FIRST_READ // 3):
                break
        assert b"".join(reader.lines) == data + data
        reader.assert_unique_keys()

    def test_a_steady_writer_costs_one_pread_a_read(self, tmp_path: Path, follow: Follow,
                                                     calls: Counter[str]) -> None:
        """Reads longer than FIRST_READ, write after write: after the first, each read asks
        for as much as the last one returned and more, so it costs one pread and no fstat
        (the short answer says where the file ends); every line once, in order."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], poll_interval=3600, rescan_interval=3600)
        reader.read_once()
        written = b""
        for round_ in range(4):
            data = b"".join(b"round %d line %06d\n" % (round_, n) for n in range(5_000))
            assert len(data) > FIRST_READ
            append(log, data)
            written += data
            wait_readable(source_of(reader))
            calls.clear()
            reader.read_once()
            if round_:
                assert (calls["pread"], calls["fstat"]) == (1, 0), calls
        assert b"".join(reader.lines) == written
        reader.assert_unique_keys()

    def test_what_the_budget_left_is_read_even_once_parked(self, tmp_path: Path,
                                                          follow: Follow,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
        """A file left half read by the budget, then parked (another file took its
        descriptor), is read on without another event or the periodic check."""
        monkeypatch.setattr("logwatch.sources.files.OPEN_FILES", OpenFiles(size=1))
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
        data = b"".join(b"line %05d\n" % n for n in range(5000))
        append(log, data)
        wait_readable(source_of(reader))
        reader.read_once(max_bytes=1000)
        (tmp_path / "b.log").write_bytes(b"b\n")  # followed at once: a.log is parked
        wait_readable(source_of(reader))
        for _ in range(100):
            if not reader.read_once(max_bytes=FIRST_READ // 2):
                break
        assert b"".join(line for line in reader.lines if line != b"b\n") == data

    def test_a_read_with_nothing_new_touches_no_file(self, tmp_path: Path, follow: Follow,
                                                     calls: Counter[str]) -> None:
        """The service reads until nothing comes: that last read costs no system call on a file."""
        for n in range(20):
            (tmp_path / f"app{n:02d}.log").write_bytes(b"x\n")
        reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
        reader.read_once()
        calls.clear()
        assert reader.read_once() == 0
        assert sum(calls.values()) == 0, calls

    def test_a_rename_over_is_still_checked(self, tmp_path: Path, follow: Follow) -> None:
        """A name event (here IN_MOVED_TO) still has its path's identity checked at once."""
        log = tmp_path / "a.log"
        log.write_bytes(b"old\n")
        reader = follow([log], poll_interval=3600, rescan_interval=3600,
                        start_at="beginning")
        reader.until(lambda: reader.lines == [b"old\n"])
        new = tmp_path / "a.log.tmp"
        new.write_bytes(b"new\n")
        new.rename(log)
        reader.until(lambda: reader.lines == [b"old\n", b"new\n"])
        reader.assert_unique_keys()


class TestRestart:
    """The bytes before the offset are not in the checkpoint."""

    def test_after_a_restart_the_first_line_is_checked_once(self, tmp_path: Path,
                                                            follow: Follow) -> None:
        """The bytes before the offset are not in the checkpoint: after a restart the
        first line is checked (once), then reading goes on exactly."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        first = follow([log])
        append(log, b"one\ntwo\n")
        first.until(lambda: len(first.lines) == 2)
        checkpoint = first.source.checkpoint()
        first.source.close()
        append(log, b"three\n")
        second = follow([log], checkpoint)
        second.until(lambda: second.lines == [b"three\n"])
        append(log, b"four\n")
        second.until(lambda: second.lines == [b"three\n", b"four\n"])


# -- pending() ---------------------------------------------------------------------------


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


Clocked = Callable[..., tuple[Reader, Clock, Path]]


def settle(reader: Reader) -> None:
    """Read until a read returns nothing."""
    while reader.read_once():
        pass


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[Clocked]:
    """Follow ``a.log`` (empty; or ``patterns``), read to its end, on a clock the test
    moves: quiet 2 s, no periodic check unless told."""
    opened: list[FileSource] = []

    def start(patterns: list[Path] | None = None, **settings: object
              ) -> tuple[Reader, Clock, Path]:
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        values: dict[str, object] = {"poll_interval": 3600, "rescan_interval": 3600}
        values.update(settings)
        clock = Clock()
        reader = Reader(None)
        source = FileSource("test", [str(p) for p in patterns or [log]],
                            make_settings(tmp_path, **values), reader.wake, quiet=2.0,
                            clock=clock)
        reader.source = source
        source.open(None)
        opened.append(source)
        assert source.pending(), "each file is read once after the start"
        settle(reader)
        assert not source.pending()
        return reader, clock, log

    yield start
    for source in opened:
        source.close()


class TestPending:
    """``pending()``: False only when a read now would find nothing new."""

    def test_busy_after_a_write(self, clocked: Clocked) -> None:
        """The write's inotify event makes it true; the read makes it false again.
        ``queued=False`` leaves the event to the descriptor that announces it."""
        reader, _, log = clocked()
        append(log, b"new\n")
        deadline = time.monotonic() + 5
        while not reader.source.pending():  # the inotify event is on its way
            assert time.monotonic() < deadline, "a write never made pending() true"
        assert not reader.source.pending(queued=False)
        assert reader.read_once() == 1
        assert not reader.source.pending()

    def test_a_partial_line_is_due_once_quiet(self, clocked: Clocked) -> None:
        """A line being written waits for its newline (an event) or for quiet, not a poll."""
        reader, clock, log = clocked()
        append(log, b"half a line")
        wait_readable(source_of(reader))
        assert reader.read_once() == 0
        assert not reader.source.pending(), "nothing to read before quiet"
        clock.now += 2.0
        assert reader.source.pending()
        assert reader.read_once() == 1
        assert reader.lines == [b"half a line\n"]
        assert not reader.source.pending()

    def test_what_the_budget_left_is_due_at_once(self, tmp_path: Path,
                                                 clocked: Clocked) -> None:
        """Files named but not read for the budget are pending without another event."""
        logs = [tmp_path / f"app{n}.log" for n in range(3)]
        for log in logs:
            log.write_bytes(b"")
        reader, _, _ = clocked([tmp_path / "app*.log"])
        for log in logs:
            append(log, b"a line\n")
        wait_readable(source_of(reader))
        assert reader.read_once(max_bytes=1) == 1
        assert reader.source.pending()
        settle(reader)
        assert len(reader.lines) == 3
        assert not reader.source.pending()

    def test_the_periodic_check_makes_it_due(self, clocked: Clocked) -> None:
        """Without inotify, files are looked at when the check is due (poll_interval / 2)."""
        reader, clock, log = clocked(use_inotify=False, poll_interval=1.0)
        append(log, b"line\n")
        assert not reader.source.pending()
        clock.now += 0.5
        assert reader.source.pending()
        assert reader.read_once() == 1

    def test_a_rotated_file_being_finished_is_pending(self, clocked: Clocked) -> None:
        """A file rotated away sends no event we follow: it is read until quiet."""
        reader, clock, log = clocked()
        log.rename(log.with_name("a.log.1"))
        log.write_bytes(b"")
        wait_readable(source_of(reader))
        settle(reader)
        assert reader.source.pending()
        clock.now += 2.0
        settle(reader)
        assert not reader.source.pending()


# -- the checkpoint's encoding -----------------------------------------------------------


def assert_text_is_the_checkpoint(source: FileSource) -> None:
    text = source.checkpoint_text()
    assert text == encode(source.checkpoint())
    assert json.loads(text) == source.checkpoint()


def tails_through(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """The paths of the files whose ``_Tail.<method>`` is called from now on, in order."""
    paths: list[str] = []
    real = getattr(_Tail, method)

    def counting(tail: _Tail) -> object:
        paths.append(tail.path)
        return real(tail)

    monkeypatch.setattr(_Tail, method, counting)
    return paths


def test_checkpoint_text_is_the_stored_form_through_a_life(tmp_path: Path, follow: Follow,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """checkpoint_text() is exactly state.encode(checkpoint()) after reads, a partial line
    returned, a cut line, a truncation, a rotation, parked files, odd path characters."""
    directory = tmp_path / 'odd "dir" é\\'
    directory.mkdir()
    logs = [directory / f"app{n}.log" for n in range(3)]
    for log in logs:
        log.write_bytes(b"")
    monkeypatch.setattr("logwatch.sources.files.OPEN_FILES", OpenFiles(size=8))
    reader = follow([directory / "*.log"], quiet=0.2, max_line_length=100)
    source = source_of(reader)
    assert_text_is_the_checkpoint(source)
    append(logs[0], b"one\ntwo\n")
    reader.until(lambda: len(reader.lines) == 2)
    assert_text_is_the_checkpoint(source)
    append(logs[1], b"x" * 150)  # cut, the rest skipped
    reader.until(lambda: len(reader.lines) == 3)
    assert_text_is_the_checkpoint(source)
    append(logs[2], b"no newline")  # returned once quiet
    reader.until(lambda: len(reader.lines) == 4)
    assert_text_is_the_checkpoint(source)
    logs[0].write_bytes(b"")  # truncated
    append(logs[0], b"again\n")
    reader.until(lambda: len(reader.lines) == 5)
    assert_text_is_the_checkpoint(source)
    logs[1].rename(directory / "app1.log.1")  # rotated: finished, then dropped
    logs[1].write_bytes(b"fresh\n")
    reader.until(lambda: len(reader.lines) == 6)
    assert_text_is_the_checkpoint(source)
    for tail in list(source._current.values()):  # parked, as past the descriptor limit
        tail.close()
    assert_text_is_the_checkpoint(source)
    assert '"parked":true' in source.checkpoint_text()


def test_checkpoint_text_encodes_only_what_changed(tmp_path: Path, follow: Follow,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After a read of 1 of 50 files, no entry is formatted again (its offset is written
    into the text kept around it); after its truncation, that one entry is."""
    logs = [tmp_path / f"app{n:02d}.log" for n in range(50)]
    for log in logs:
        log.write_bytes(b"a first line, fingerprinted\n")
    reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
    source = source_of(reader)
    reader.read_once()
    source.checkpoint_text()
    formatted = tails_through(monkeypatch, "_format")
    append(logs[7], b"one line\n")
    reader.until(lambda: len(reader.lines) == 1)
    assert_text_is_the_checkpoint(source)
    assert formatted == []
    logs[7].write_bytes(b"")  # truncated: another generation
    append(logs[7], b"again\n")
    reader.until(lambda: len(reader.lines) == 2)
    assert_text_is_the_checkpoint(source)
    assert formatted == [str(logs[7])]


def test_checkpoint_text_looks_only_at_the_files_read(tmp_path: Path, follow: Follow,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Between scans, a commit after a read of 1 of 50 files looks at that file's entry
    only (the other 49 are not even compared), and the text is still the checkpoint."""
    logs = [tmp_path / f"app{n:02d}.log" for n in range(50)]
    for log in logs:
        log.write_bytes(b"")
    reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
    source = source_of(reader)
    reader.read_once()  # the first read looks at every file
    source.checkpoint_text()
    looked = tails_through(monkeypatch, "encoded")
    append(logs[7], b"one line\n")
    reader.until(lambda: len(reader.lines) == 1)
    assert_text_is_the_checkpoint(source)
    assert looked == [str(logs[7])]


def test_checkpoint_text_sees_files_parked_for_another_source(
        tmp_path: Path, follow: Follow, monkeypatch: pytest.MonkeyPatch) -> None:
    """The descriptor pool is the process's: another source's files opening past its size
    park this source's files, unread: their entries say so at this source's next commit."""
    monkeypatch.setattr("logwatch.sources.files.OPEN_FILES", OpenFiles(size=4))
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for directory in (mine, theirs):
        directory.mkdir()
        for n in range(3):
            append(directory / f"app{n}.log", b"")
    reader = follow([mine / "*.log"], poll_interval=3600, rescan_interval=3600)
    source = source_of(reader)
    append(mine / "app0.log", b"one\n")
    reader.until(lambda: len(reader.lines) == 1)
    assert '"parked"' not in source.checkpoint_text()
    follow([theirs / "*.log"], poll_interval=3600, rescan_interval=3600)  # 3 more open
    assert_text_is_the_checkpoint(source)
    assert '"parked":true' in source.checkpoint_text()


def test_checkpoint_text_after_a_scan_that_saw_a_truncation(tmp_path: Path, follow: Follow
                                                             ) -> None:
    """A periodic check may restart a file nobody read since (truncated, other first
    line): its entry moves with no read of it, and the text follows."""
    logs = [tmp_path / f"app{n}.log" for n in range(3)]
    for log in logs:
        append(log, b"")
    reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
    source = source_of(reader)
    for log in logs:
        append(log, b"first line\n")
    reader.until(lambda: len(reader.lines) == 3)
    assert_text_is_the_checkpoint(source)
    logs[1].write_bytes(b"other\n")  # another first line, shorter than our offset
    source._scan(time.monotonic())
    assert_text_is_the_checkpoint(source)
    assert json.loads(source.checkpoint_text())["files"][1]["offset"] == 0


def test_reads_without_a_commit_keep_no_growing_list(tmp_path: Path, follow: Follow) -> None:
    """A source read again and again with no commit taking its checkpoint (nothing
    matched, a failing state disk) remembers a bounded list of files read; the text is
    still the checkpoint."""
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    reader = follow([log], poll_interval=3600, rescan_interval=3600)
    source = source_of(reader)
    for n in range(200):
        append(log, b"line %d\n" % n)
        reader.until(lambda n=n: len(reader.lines) == n + 1)
    assert len(source._read_since) <= 4 * 1 + 64 + 1
    assert_text_is_the_checkpoint(source)
