"""The file tailer: start positions, restarts, identities, line handling, bad input, errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwatch.config import Config, JournalSource, SourceConfig
from logwatch.sources import build_sources, checkpoint_rows, source_kind
from logwatch.sources.files import FileSource
from logwatch.sources.lines import CUT_MARK, split_lines
from tests.sources.conftest import Reader, make_settings

Follow = Callable[..., Reader]


def append(path: Path, data: bytes) -> None:
    """Append bytes to a file (creating it)."""
    with path.open("ab") as f:
        f.write(data)


def numbered(first: int, count: int) -> bytes:
    """``n\\n`` lines."""
    return b"".join(b"%d\n" % n for n in range(first, first + count))


# -- where reading starts -------------------------------------------------------


class TestStartAt:
    """``start_at`` applies to files seen at the first start; later files are read whole."""

    def test_end_skips_existing_lines(self, tmp_path: Path, follow: Follow) -> None:
        """start_at = "end": only lines appended after startup."""
        log = tmp_path / "a.log"
        log.write_bytes(b"old 1\nold 2\n")
        reader = follow([log])
        append(log, b"new 1\n")
        reader.until(lambda: reader.lines == [b"new 1\n"])

    def test_end_keeps_a_line_being_written(self, tmp_path: Path, follow: Follow) -> None:
        """A partial last line at startup is read whole once its newline comes."""
        log = tmp_path / "a.log"
        log.write_bytes(b"old\nhalf a ")
        reader = follow([log])
        append(log, b"line\n")
        reader.until(lambda: reader.lines == [b"half a line\n"])

    def test_beginning_reads_everything(self, tmp_path: Path, follow: Follow) -> None:
        """start_at = "beginning": the whole file."""
        log = tmp_path / "a.log"
        log.write_bytes(b"old 1\nold 2\n")
        reader = follow([log], start_at="beginning")
        reader.until(lambda: reader.lines == [b"old 1\n", b"old 2\n"])

    def test_late_file_is_read_from_its_start(self, tmp_path: Path, follow: Follow) -> None:
        """A missing file is waited for (and said so), then read whole."""
        log = tmp_path / "later.log"
        reader = follow([log])
        assert any("missing" in line and str(log) in line for line in reader.source.describe())
        log.write_bytes(b"first\nsecond\n")
        reader.until(lambda: reader.lines == [b"first\n", b"second\n"])

    def test_new_file_of_a_known_glob_at_restart(self, tmp_path: Path, follow: Follow) -> None:
        """A file that appeared while logwatch was stopped is read whole, not from its end."""
        reader = follow([tmp_path / "*.log"])
        checkpoint = reader.source.checkpoint()
        reader.source.close()
        (tmp_path / "b.log").write_bytes(b"while stopped\n")
        again = follow([tmp_path / "*.log"], checkpoint)
        again.until(lambda: again.lines == [b"while stopped\n"])


def test_glob_ignores_rotated_and_compressed(tmp_path: Path, follow: Follow) -> None:
    """``*.log`` and ``syslog*`` pick the live files only."""
    names = ["a.log", "a.log.1", "a.log.2.gz", "syslog", "syslog.1", "syslog.2.gz",
             "syslog-20240101", "syslog.xz", "b.log.zst"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    reader = follow([tmp_path / "*.log", tmp_path / "syslog*"])
    followed = sorted(Path(t.path).name for t in reader.source._current.values())
    assert followed == ["a.log", "syslog"]
    append(tmp_path / "a.log.1", b"rotated\n")
    append(tmp_path / "syslog", b"live\n")
    reader.until(lambda: reader.lines == [b"live\n"])


# -- restart and identity -----------------------------------------------------------


class TestRestart:
    """A new Source opened from a checkpoint continues exactly where the old one stopped."""

    def test_continues_exactly(self, tmp_path: Path, follow: Follow) -> None:
        """Read part, checkpoint, write more, restart: each line once, same keys on replay."""
        log = tmp_path / "a.log"
        log.write_bytes(numbered(0, 100))
        first = follow([log], start_at="beginning", max_line_length=16)
        first.read_once(max_bytes=50)
        checkpoint = first.source.checkpoint()
        done = len(first.lines)
        assert 0 < done < 100
        first.read_once()  # read but "not committed": a crash here replays it
        first.source.close()
        append(log, numbered(100, 100))
        second = follow([log], checkpoint, max_line_length=16)
        second.until(lambda: len(second.lines) >= 200 - done)
        assert first.lines[:done] + second.lines == numbered(0, 200).splitlines(keepends=True)
        assert second.keys[: 100 - done] == first.keys[done:], "a replay must give the same keys"

    def test_drains_a_file_rotated_while_stopped(self, tmp_path: Path, follow: Follow) -> None:
        """Rotated (renamed) while stopped: the rest of the old file, then the new one."""
        log = tmp_path / "a.log"
        log.write_bytes(numbered(0, 10))
        first = follow([log], start_at="beginning")
        first.until(lambda: len(first.lines) == 10)
        checkpoint = first.source.checkpoint()
        first.source.close()
        append(log, numbered(10, 5))
        log.rename(tmp_path / "a.log.1")
        log.write_bytes(numbered(15, 5))
        second = follow([log], checkpoint)
        second.until(lambda: len(second.lines) == 10)
        assert second.lines == numbered(10, 10).splitlines(keepends=True)

    def test_copytruncate_while_stopped(self, tmp_path: Path, follow: Follow) -> None:
        """Copied and truncated while stopped: the unread rest comes from the copy, then new."""
        log = tmp_path / "a.log"
        log.write_bytes(numbered(0, 10))
        first = follow([log], start_at="beginning")
        first.until(lambda: len(first.lines) == 10)
        checkpoint = first.source.checkpoint()
        first.source.close()
        append(log, numbered(10, 5))
        (tmp_path / "a.log.1").write_bytes(log.read_bytes())
        log.write_bytes(b"")
        append(log, numbered(15, 5))
        second = follow([log], checkpoint)
        second.until(lambda: len(second.lines) == 10)
        assert second.lines == numbered(10, 10).splitlines(keepends=True)
        second.assert_unique_keys()
        assert second.keys[0] == f"{first.chunks[0].stream}@{len(numbered(0, 10))}", (
            "lines from the copy keep the keys they had in the original")

    def test_reused_inode_is_a_new_file(self, tmp_path: Path, follow: Follow) -> None:
        """Same device and inode but other first bytes: read from 0 under a new stream."""
        log = tmp_path / "a.log"
        log.write_bytes(b"new file, first line\nsecond\n")
        st = log.stat()
        stale = {"kind": "files", "patterns": [str(log)], "gens": {str(log): 0}, "files": [
            {"path": str(log), "dev": st.st_dev, "ino": st.st_ino, "gen": 0, "offset": 21,
             "fp": "0123456789abcdef", "fp_len": 20, "skip": False}]}
        reader = follow([log], stale)
        reader.until(lambda: len(reader.lines) == 2)
        assert reader.lines == [b"new file, first line\n", b"second\n"]
        assert reader.keys[0] != f"{st.st_dev:x}:{st.st_ino}:0123456789abcdef:0@0"
        assert reader.chunks[0].stream.endswith(":1"), "the path's next generation"

    @pytest.mark.parametrize(("old", "new"), [
        (b"old line one\nold line two\n", b"brand new first line\nand more than before\n"),
        # a banner as first line: the first line alone cannot tell, the bytes before our
        # offset (read with the data) can
        (b"myapp starting\nold one\n", b"myapp starting\nnew one, longer than before\nnew\n"),
        # our offset deep in the file, past the BEHIND bytes checked
        (b"".join(b"old line %04d\n" % n for n in range(100)),
         b"".join(b"new line %04d\n" % n for n in range(120))),
    ], ids=["other-first-line", "same-first-line", "far"])
    def test_truncated_and_regrown_between_reads(self, tmp_path: Path, follow: Follow,
                                                 old: bytes, new: bytes) -> None:
        """Truncated and grown past our offset before we look: the bytes tell, every new
        line is read from 0 under new keys."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], use_inotify=False, poll_interval=3600)
        append(log, old)
        count = old.count(b"\n")
        reader.until(lambda: len(reader.lines) == count)
        log.write_bytes(new)
        reader.until(lambda: len(reader.lines) == count + new.count(b"\n"))
        assert b"".join(reader.lines[count:]) == new
        reader.assert_unique_keys()


# -- lines ---------------------------------------------------------------------------


class TestLines:
    """Partial, over-long, invalid and binary lines."""

    def test_partial_line_after_quiet(self, tmp_path: Path, follow: Follow) -> None:
        """A line without its newline is held, then returned after the quiet period."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], quiet=0.2)
        append(log, b"whole\nno newline yet")
        reader.until(lambda: len(reader.lines) == 1)
        assert reader.lines == [b"whole\n"]
        reader.until(lambda: len(reader.lines) == 2)
        assert reader.lines[1] == b"no newline yet\n"
        append(log, b"\nnext\n")  # the newline that came late is an empty line, not a repeat
        reader.until(lambda: len(reader.lines) == 4)
        assert reader.lines[2:] == [b"\n", b"next\n"]

    def test_over_long_line_is_cut_and_marked(self, tmp_path: Path, follow: Follow) -> None:
        """Cut at max_line_length, marked, the rest skipped, the next line intact."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], max_line_length=100)
        append(log, b"short\n" + b"A" * 1000 + b"\nafter\n")
        reader.until(lambda: len(reader.lines) == 3)
        assert reader.lines[0] == b"short\n"
        assert reader.lines[1] == b"A" * 100 + CUT_MARK % 100 + b"\n"
        assert reader.lines[2] == b"after\n"
        assert reader.keys[1].endswith("@6"), "the cut line keeps its own offset"

    def test_over_long_line_still_being_written(self, tmp_path: Path, follow: Follow) -> None:
        """Cut as soon as it passes the cap; what follows of it later is skipped, restart too."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log], max_line_length=100)
        append(log, b"B" * 150)
        reader.until(lambda: len(reader.lines) == 1)
        checkpoint = reader.source.checkpoint()
        reader.source.close()
        append(log, b"B" * 500 + b"\nnext\n")
        again = follow([log], checkpoint, max_line_length=100)
        again.until(lambda: len(again.lines) == 1)
        assert reader.lines[0].startswith(b"B" * 100 + b" [logwatch")
        assert again.lines == [b"next\n"]

    def test_invalid_utf8_and_nul_pass_as_bytes(self, tmp_path: Path, follow: Follow) -> None:
        """Bytes are delivered as they are; the matcher decodes with replacement."""
        log = tmp_path / "a.log"
        log.write_bytes(b"")
        reader = follow([log])
        data = b"bad \xff\xfe utf8\n\x00\x00nul\x00\nok\n"
        append(log, data)
        reader.until(lambda: len(reader.lines) == 3)
        assert b"".join(reader.lines) == data

    def test_binary_file_does_not_stall(self, tmp_path: Path, follow: Follow) -> None:
        """A megabyte of newline-free random bytes is cut, skipped, and reading goes on."""
        log = tmp_path / "a.bin"
        log.write_bytes(b"")
        reader = follow([log], max_line_length=4096)
        append(log, os.urandom(1 << 20).replace(b"\n", b"\x00") + b"\nafter\n")
        reader.until(lambda: reader.lines[-1:] == [b"after\n"])
        assert len(reader.lines) == 2

    @pytest.mark.parametrize(("given", "expected"), [
        ((b"a\nb\nc", 10, False), ([(0, b"a\nb\n")], 4, False)),
        ((b"rest\nx\n", 10, True), ([(5, b"x\n")], 7, False)),
        ((b"no newline", 4, True), ([], 10, True)),
        ((b"12345678\nok\n", 4, False), ([(0, b"1234" + CUT_MARK % 4 + b"\n"), (9, b"ok\n")], 12,
                                        False)),
        ((b"ok\n123456", 4, False), ([(0, b"ok\n"), (3, b"1234" + CUT_MARK % 4 + b"\n")], 9,
                                     True)),
    ])
    def test_split_lines(self, given: tuple[bytes, int, bool],
                         expected: tuple[list[tuple[int, bytes]], int, bool]) -> None:
        """The pure line splitter: pieces, bytes consumed, still skipping."""
        split = split_lines(*given)
        assert (list(split.pieces), split.consumed, split.skipping) == expected

    @given(lines=st.lists(st.integers(0, 40), max_size=30), cap=st.integers(1, 12))
    def test_split_lines_caps_exactly_the_over_long_lines(self, lines: list[int],
                                                          cap: int) -> None:
        """Whole lines in any mix of lengths: only those over ``cap`` are cut, nothing lost."""
        data = b"".join(b"x" * n + b"\n" for n in lines)
        split = split_lines(data, cap, False)
        expected = [b"x" * n + b"\n" if n <= cap else b"x" * cap + CUT_MARK % cap + b"\n"
                    for n in lines]
        assert b"".join(piece for _, piece in split.pieces) == b"".join(expected)
        assert split.consumed == len(data) and not split.skipping
        at = 0
        starts = []
        for n in lines:
            starts.append(at)
            at += n + 1
        cut = {start for start, n in zip(starts, lines, strict=True) if n > cap}
        assert {at for at, piece in split.pieces if CUT_MARK % cap in piece} == cut


# -- errors ----------------------------------------------------------------------------


def test_unreadable_file_reported_once_and_retried(tmp_path: Path, follow: Follow,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """EACCES is logged once, the other file still flows, and the file is read once allowed.

    Tests run as root, which ignores file modes, so ``os.open`` refuses the file here.
    """
    secret, other = tmp_path / "secret.log", tmp_path / "other.log"
    secret.write_bytes(b"s1\n")
    other.write_bytes(b"")
    real_open = os.open
    denied = {str(secret)}

    def fake_open(path: str | os.PathLike[str], flags: int, *args: int, **kw: int) -> int:
        if os.fspath(path) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    with caplog.at_level(logging.WARNING, "logwatch.sources.files"):
        reader = follow([tmp_path / "*.log"])
        for n in range(1, 4):
            append(other, b"o%d\n" % n)
            wanted = b"o%d\n" % n
            reader.until(lambda: wanted in reader.lines)  # noqa: B023  (used at once)
    warnings = [r.getMessage() for r in caplog.records if "secret.log" in r.getMessage()]
    assert len(warnings) == 1
    assert "Permission denied" in warnings[0]
    assert any("Permission denied" in line for line in reader.source.describe())
    denied.clear()
    reader.until(lambda: b"s1\n" in reader.lines)


def test_unlistable_directory_is_a_problem(tmp_path: Path, follow: Follow,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory that cannot be listed is reported (not silently 'no match')."""
    real_scandir = os.scandir
    locked = tmp_path / "locked"
    locked.mkdir()

    def fake_scandir(path: str | os.PathLike[str] = ".") -> object:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    reader = follow([locked / "*.log"])
    assert any("cannot list" in line for line in reader.source.describe())


# -- the registry, status --------------------------------------------------------------


def _config(tmp_path: Path, table: SourceConfig) -> Config:
    return Config(tmp_path / "logwatch.toml", make_settings(tmp_path), {}, {table.name: table}, ())


def test_files_if_any_exists_else_journal(tmp_path: Path) -> None:
    """Both configured: the files when one exists, the journal otherwise."""
    table = SourceConfig("auth", (str(tmp_path / "auth.log"),), JournalSource(match=("A=1",)))
    assert source_kind(table) == "journal"
    fallback = build_sources(_config(tmp_path, table), lambda: None)
    # one banner line says what is read instead of what (the command line is for --verbose)
    assert fallback[0].describe()[0] == (
        f'source "auth": journal from now, A=1 (none of {tmp_path / "auth.log"} exists)')
    (tmp_path / "auth.log").write_bytes(b"")
    assert source_kind(table) == "files"
    assert source_kind(SourceConfig("j", (), JournalSource())) == "journal"
    sources = build_sources(_config(tmp_path, table), lambda: None)
    assert [type(s).__name__ for s in sources] == ["FileSource"]


def test_checkpoint_rows(tmp_path: Path, follow: Follow) -> None:
    """status rows: offset, size and lag from disk; a missing file has no size."""
    log, gone = tmp_path / "a.log", tmp_path / "b.log"
    log.write_bytes(b"one\n")
    gone.write_bytes(b"x\n")
    reader = follow([log, gone], start_at="beginning")
    reader.until(lambda: len(reader.lines) == 2)
    checkpoint = reader.source.checkpoint()
    append(log, b"two\n")
    gone.unlink()
    rows = {r["path"]: r for r in checkpoint_rows("src", checkpoint)}
    assert rows[str(log)] == {"source": "src", "path": str(log), "offset": 4, "size": 8, "lag": 4,
                              "open": True}
    assert rows[str(gone)]["lag"] is None
    assert checkpoint_rows("j", {"kind": "journal", "cursor": "s=1"}) == [
        {"source": "j", "cursor": "s=1"}]


def test_close_stops_the_watcher(tmp_path: Path) -> None:
    """inotify runs without a thread (one descriptor); close() closes it and every file."""
    import threading

    log = tmp_path / "a.log"
    log.write_bytes(b"")
    before, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    source = FileSource("t", [str(log)], make_settings(tmp_path), lambda: None)
    source.open(None)
    assert threading.active_count() == before
    assert source.fileno() is not None
    assert len(os.listdir("/proc/self/fd")) == fds + 2  # inotify and a.log
    source.close()
    assert len(os.listdir("/proc/self/fd")) == fds


def test_checkpoint_rows_find_a_rotated_file(tmp_path: Path, follow: Follow) -> None:
    """A file still being finished after rotation is shown under its new name."""
    log = tmp_path / "a.log"
    log.write_bytes(b"one\n")
    reader = follow([log], start_at="beginning", quiet=3600, use_inotify=False)
    reader.until(lambda: len(reader.lines) == 1)
    log.rename(tmp_path / "a.log.1")
    log.write_bytes(b"")
    reader.until(lambda: len(reader.source.checkpoint()["files"]) == 2)
    rows = checkpoint_rows("src", reader.source.checkpoint())
    assert sorted((Path(r["path"]).name, r["lag"]) for r in rows) == [("a.log", 0), ("a.log.1", 0)]


@pytest.mark.parametrize("replace", ["rename-over", "delete+create", "move-away+create"])
def test_inotify_sees_a_new_file_at_its_first_write(tmp_path: Path, follow: Follow,
                                                    replace: str) -> None:
    """Watchdog reports no renames or creations: a write at a path whose inode changed
    switches to the new file at once (here no periodic check comes during the test)."""
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    reader = follow([tmp_path / "*.log"], use_inotify=True, poll_interval=3600)
    append(log, b"old\n")
    reader.until(lambda: reader.lines == [b"old\n"])
    if replace == "rename-over":
        new = tmp_path / "a.log.tmp"
        new.write_bytes(b"")
        new.rename(log)
    elif replace == "delete+create":
        log.unlink()
    else:
        (tmp_path / "old").mkdir()
        log.rename(tmp_path / "old" / "a.log")
    append(log, b"new\n")
    reader.until(lambda: reader.lines == [b"old\n", b"new\n"])
    reader.assert_unique_keys()


def test_between_checks_only_the_files_inotify_names_are_read(
        tmp_path: Path, follow: Follow, monkeypatch: pytest.MonkeyPatch) -> None:
    """With inotify, a write to one of 50 files costs a look at that file, not at all 50
    (and no glob): the full check waits for ``rescan_interval`` or an overflow."""
    logs = [tmp_path / f"app{n:02d}.log" for n in range(50)]
    for log in logs:
        log.write_bytes(b"")
    reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
    reader.read_once()  # every file is looked at once after the start
    looked: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        looked.append(fd)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    append(logs[17], b"one line\n")
    reader.until(lambda: reader.lines == [b"one line\n"])
    assert 0 < len(looked) <= 3, len(looked)


def test_a_file_moved_into_a_followed_directory_is_read_at_once(tmp_path: Path,
                                                                follow: Follow) -> None:
    """A file renamed into place and never written to (IN_MOVED_TO) is followed without
    waiting for the periodic check."""
    (tmp_path / "logs").mkdir()
    reader = follow([tmp_path / "logs" / "*.log"], poll_interval=3600, rescan_interval=3600)
    staged = tmp_path / "staged"
    staged.write_bytes(b"moved in\n")
    staged.rename(tmp_path / "logs" / "b.log")
    reader.until(lambda: reader.lines == [b"moved in\n"])


def test_files_named_but_not_read_for_the_budget_are_read_next(tmp_path: Path,
                                                               follow: Follow) -> None:
    """A read that stops at its budget leaves the other named files for the next read,
    without another inotify event (or the periodic check) to name them again."""
    import select

    logs = [tmp_path / f"app{n}.log" for n in range(3)]
    for log in logs:
        log.write_bytes(b"")
    reader = follow([tmp_path / "*.log"], poll_interval=3600, rescan_interval=3600)
    reader.read_once()
    for n, log in enumerate(logs):
        append(log, b"line %d\n" % n)
    fd = reader.source.fileno()
    assert fd is not None and select.select([fd], [], [], 5.0)[0]
    for _ in range(5):
        reader.read_once(max_bytes=1)  # one file per read
    assert sorted(reader.lines) == [b"line 0\n", b"line 1\n", b"line 2\n"]
