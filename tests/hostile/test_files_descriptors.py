"""More files than the open-file limit: bounded descriptors, every line alerted exactly once."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch.sources import descriptors
from logwatch.sources.descriptors import OPEN_FILES
from logwatch.sources.files import FileSource
from tests.helpers import REPO, logwatch, wait_for, write
from tests.hostile.users import file_modes_apply
from tests.sources.conftest import Reader, make_settings

CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "beginning"
hostname = "hostile"
poll_interval = "200ms"
storm = {{ rate = 1000000 }}

[destinations.term]
type = "console"

[sources.many]
files = ["{logs}/*.log"]

[[rules]]
id = "boom"
match = 'BOOM (?P<f>\\d+)-(?P<n>\\d+)'
title = "boom <{{f}}-{{n}}>"
"""
FILES = 300
LIMIT = 256


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's descriptor pool, 10 files at most, for this test."""
    monkeypatch.setattr(OPEN_FILES, "_size", 10)


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Callable[..., Reader]]:
    """Open a FileSource on ``patterns`` in a Reader; closed at teardown."""
    opened: list[FileSource] = []

    def start(patterns: list[Path], **settings: object) -> Reader:
        reader = Reader(None)
        source = FileSource("t", [str(p) for p in patterns], make_settings(tmp_path, **settings),
                            reader.wake, quiet=0.3)
        reader.source = source
        source.open(None)
        opened.append(source)
        return reader

    yield start
    for source in opened:
        source.close()


def test_limit_stays_below_rlimit() -> None:
    """Room is left for SQLite, sockets and pipes."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert descriptors.limit() <= max(soft - descriptors.RESERVE, 8)


def test_forty_files_through_ten_descriptors(tmp_path: Path, small_pool: None,
                                             follow: Callable[..., Reader]) -> None:
    """Writes, a rotation and a truncation of parked files: every line once, ten open at most."""
    logs = [write(tmp_path / f"f{i:02}.log", f"f{i} line 0\n") for i in range(40)]
    reader = follow([tmp_path / "*.log"], start_at="beginning")
    reader.until(lambda: len(reader.lines) == 40)
    assert len(OPEN_FILES) <= 10
    for i, log in enumerate(logs):
        with log.open("a") as f:
            f.write(f"f{i} line 1\n")
    reader.until(lambda: len(reader.lines) == 80)
    assert len(OPEN_FILES) <= 10
    os.rename(logs[3], tmp_path / "f03.log.1")  # rotated while (probably) parked
    with (tmp_path / "f03.log.1").open("a") as f:
        f.write("f3 line 2 (late write to the rotated file)\n")
    write(logs[3], "f3 line 3 (the new file)\n")
    logs[5].write_text("f5 line 2 (after truncation)\n")
    reader.until(lambda: len(reader.lines) == 40 + 40 + 3)
    assert len(OPEN_FILES) <= 10
    counts = Counter(reader.texts())
    assert all(n == 1 for n in counts.values()), [t for t, n in counts.items() if n > 1]
    assert "f3 line 2 (late write to the rotated file)" in counts
    reader.assert_unique_keys()


def test_a_file_that_cannot_be_opened_is_not_gone(tmp_path: Path,
                                                  follow: Callable[..., Reader]) -> None:
    """EACCES on reopen (parked) keeps its offset: no re-read from 0 when it opens again."""
    log = write(tmp_path / "a.log", "one\n")
    reader = follow([tmp_path / "*.log"], start_at="beginning")
    reader.until(lambda: len(reader.lines) == 1)
    source = reader.source
    next(iter(source._current.values())).close()  # parked
    log.chmod(0)
    with log.open("a") as f:
        f.write("two\n")
    with file_modes_apply():  # as root, too: the reopen meets EACCES
        assert reader.read_once() == 0
        with pytest.raises(PermissionError):
            log.open()
    log.chmod(0o644)
    reader.until(lambda: len(reader.lines) == 2)
    assert reader.texts() == ["one", "two"]


def test_three_hundred_files_under_ulimit_256_alert_exactly_once(tmp_path: Path) -> None:
    """A real ``ulimit -n 256`` around ``logwatch run``: 600 lines, 600 alerts, no "gone"."""
    logs = tmp_path / "logs"
    for i in range(FILES):
        write(logs / f"app{i:03}.log", f"BOOM {i}-0\n")
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "state", logs=logs))
    # the limit is set inside the child, as `ulimit -n 256; logwatch run` would
    run = ("import resource, runpy, sys; "
           f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
           f"sys.argv = ['logwatch', 'run', '-c', {str(config)!r}]; "
           "runpy.run_module('logwatch', run_name='__main__')")
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", run], stdout=stdout, stderr=stderr,
                                cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: out.read_text().count("boom <") >= FILES, 60,
                 message=f"{FILES} first alerts")
        for i in range(FILES):
            with (logs / f"app{i:03}.log").open("a") as f:
                f.write(f"BOOM {i}-1\n")
        wait_for(lambda: out.read_text().count("boom <") >= 2 * FILES, 60,
                 message=f"{2 * FILES} alerts")
        status = logwatch("status", "-c", str(config))
        assert f"{FILES} files followed" in status.stdout, status.stdout
    finally:
        proc.terminate()
        proc.wait(30)
    text = out.read_text()
    counts = Counter(line for line in text.splitlines() if "boom <" in line)
    assert len(counts) == 2 * FILES and set(counts.values()) == {1}
    log_text = err.read_text()
    assert "is gone" not in log_text and "Too many open files" not in log_text
    assert "Traceback" not in log_text
    assert proc.returncode == 0


