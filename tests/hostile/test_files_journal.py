"""The journal reader against hostile entries: it never dies, and never dies silently."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import JournalSource
from logwatch.sources import journal as journal_module
from logwatch.sources.journal import JournalFollower, parse_entry
from tests.sources.conftest import Reader, make_settings
from tests.sources.test_journal import FakeJournal, entry, install_fake


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeJournal:
    """The stand-in journalctl, first on PATH."""
    return install_fake(tmp_path, monkeypatch)


@pytest.fixture
def opened() -> Iterator[list[JournalFollower]]:
    """Followers to close at teardown."""
    followers: list[JournalFollower] = []
    yield followers
    for follower in followers:
        follower.close()


def follow(tmp_path: Path, opened: list[JournalFollower], checkpoint: Any = None,
           **settings: Any) -> Reader:
    """A JournalFollower read the way the service reads it."""
    reader = Reader(None)
    source = JournalFollower("auth", JournalSource(), make_settings(tmp_path, **settings),
                             reader.wake, backoff=(0.05, 0.2))
    reader.source = source
    source.open(checkpoint)
    opened.append(source)
    return reader


@pytest.mark.parametrize("stamp", ["9" * 30, "9" * 400, "99999999999999999999", "0", "-5",
                                   "12abc", ""])
def test_an_absurd_timestamp_keeps_the_entry_with_no_time(stamp: str) -> None:
    """Out of range (or not a number): the entry is kept, timed "now" (None)."""
    parsed = parse_entry(json.dumps(entry(1, __REALTIME_TIMESTAMP=stamp)).encode(), 1000)
    assert parsed is not None
    assert parsed.lines == (b"sshd[1001]: message 1\n",)
    assert parsed.time is None


@pytest.mark.parametrize("field", ["MESSAGE", "SYSLOG_IDENTIFIER", "_PID", "__REALTIME_TIMESTAMP"])
@pytest.mark.parametrize("value", [{"a": 1}, [None, {"x": 1}], [300, -1], 1e308, float("nan"),
                                   True, [[1]]])
def test_any_odd_field_value_is_no_crash(field: str, value: Any) -> None:
    """Whatever a field holds, parse_entry returns an entry (or None), never raises."""
    raw = json.dumps(entry(1, **{field: value})).encode()
    parse_entry(raw, 1000)


def test_the_reader_survives_an_out_of_range_timestamp(journal: FakeJournal, tmp_path: Path,
                                                       opened: list[JournalFollower]) -> None:
    """The entry after the bad one still arrives: the reader thread did not die."""
    journal.add(entry(1, "bad time", __REALTIME_TIMESTAMP="9" * 400), entry(2, "after it"))
    reader = follow(tmp_path, opened, start_at="beginning")
    reader.until(lambda: len(reader.lines) == 2)
    assert reader.texts() == ["sshd[1001]: bad time", "sshd[1002]: after it"]
    assert reader.chunks[0].line_time(0) is None


def test_a_failing_reader_is_restarted_and_reported(
    journal: FakeJournal, tmp_path: Path, opened: list[JournalFollower],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in the reader (here: parse_entry raising once) restarts it, with a warning."""
    real = journal_module.parse_entry
    calls = {"n": 0}

    def flaky(raw: bytes, cap: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug")
        return real(raw, cap)

    monkeypatch.setattr(journal_module, "parse_entry", flaky)
    journal.add(entry(1), entry(2), entry(3))
    with caplog.at_level(logging.WARNING, logger="logwatch.sources.journal"):
        reader = follow(tmp_path, opened, start_at="beginning")
        reader.until(lambda: len(reader.lines) >= 3)
    assert reader.texts()[:1] == ["sshd[1001]: message 1"]
    assert "sshd[1003]: message 3" in reader.texts()
    assert opened[0].restarts >= 1
    assert "the reader failed (RuntimeError: a bug)" in caplog.text


def test_a_dead_reader_thread_is_started_again(journal: FakeJournal, tmp_path: Path,
                                               opened: list[JournalFollower],
                                               caplog: pytest.LogCaptureFixture) -> None:
    """If the thread is gone anyway, the next read() starts it again and says so."""
    reader = follow(tmp_path, opened, start_at="beginning")
    source = opened[0]
    source._stop.set()
    source.close()  # joins the thread
    source._stop.clear()
    source._thread = source._thread or _dead_thread()
    journal.add(entry(7, "after the restart"))
    with caplog.at_level(logging.ERROR, logger="logwatch.sources.journal"):
        reader.until(lambda: "sshd[1007]: after the restart" in reader.texts())
    assert "the journal reader thread stopped; restarting it" in caplog.text


def _dead_thread() -> Any:
    import threading

    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    return thread


def test_start_at_end_saves_a_position_before_the_first_entry(
    journal: FakeJournal, tmp_path: Path, opened: list[JournalFollower],
) -> None:
    """First run saw nothing; an entry logged while stopped is read by the next run."""
    journal.add(entry(1, "old, before the first run"))
    first = follow(tmp_path, opened)
    checkpoint = opened[0].checkpoint()
    assert checkpoint["cursor"] is None and checkpoint["since"] <= time.time()
    assert first.read_once() == 0
    opened.pop().close()
    later = int((checkpoint["since"] + 5) * 1e6)
    journal.add(entry(2, "written while stopped", __REALTIME_TIMESTAMP=str(later)))
    second = follow(tmp_path, opened, checkpoint=json.loads(json.dumps(checkpoint)))
    second.until(lambda: "sshd[1002]: written while stopped" in second.texts())
    assert "sshd[1001]: old, before the first run" not in second.texts()
