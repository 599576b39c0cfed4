"""The journal source, against a stand-in ``journalctl`` on PATH, and the real one if it can."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import JournalSource
from logwatch.sources.journal import JournalFollower, journalctl_args, parse_entry
from logwatch.state import encode
from tests.sources.conftest import Reader, make_settings

FAKE = Path(__file__).with_name("fake_journalctl.py")


def entry(n: int, message: Any = None, **fields: Any) -> dict[str, Any]:
    """A journal entry as ``journalctl --output=json`` prints it."""
    base = {"__CURSOR": f"s=abc;i={n:x}", "__REALTIME_TIMESTAMP": str(1_700_000_000_000_000 + n),
            "SYSLOG_IDENTIFIER": "sshd", "_PID": str(1000 + n),
            "MESSAGE": f"message {n}" if message is None else message}
    base.update(fields)
    return base


class FakeJournal:
    """The recorded journal the stand-in prints, and the argv it was run with."""

    def __init__(self, root: Path) -> None:
        self.path = root / "journal.jsonl"
        self.args_path = root / "args.jsonl"
        self.path.write_text("")

    def add(self, *entries: dict[str, Any] | str) -> None:
        """Append entries (a str is written as is: garbage)."""
        with self.path.open("a", encoding="utf-8") as f:
            for e in entries:
                f.write((e if isinstance(e, str) else json.dumps(e)) + "\n")

    def runs(self) -> list[list[str]]:
        """The argv of every run so far."""
        if not self.args_path.exists():
            return []
        return [json.loads(line) for line in self.args_path.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeJournal:
    """A ``journalctl`` stand-in first on PATH."""
    return install_fake(tmp_path, monkeypatch)


def install_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeJournal:
    """Put the ``journalctl`` stand-in first on PATH; the journal it prints."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "journalctl"
    program.write_text(f"#!{sys.executable}\n" + FAKE.read_text())
    program.chmod(0o755)
    journal = FakeJournal(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_JOURNAL", str(journal.path))
    monkeypatch.setenv("FAKE_JOURNAL_ARGS", str(journal.args_path))
    return journal


@pytest.fixture
def follow_journal(tmp_path: Path) -> Iterator[Callable[..., Reader]]:
    """Build and open a JournalFollower in a Reader; closed at teardown."""
    opened: list[JournalFollower] = []

    def start(checkpoint: Any = None, journal: JournalSource | None = None,
              command: tuple[str, ...] = ("journalctl",), **settings: Any) -> Reader:
        reader = Reader(None)
        source = JournalFollower("auth", journal or JournalSource(),
                                 make_settings(tmp_path, **settings), reader.wake,
                                 command=command, backoff=(0.05, 0.2))
        reader.source = source
        source.open(checkpoint)
        opened.append(source)
        return reader

    yield start
    for source in opened:
        source.close()


class TestEntries:
    """How an entry becomes a line."""

    @pytest.mark.parametrize(("fields", "lines"), [
        ({"MESSAGE": "Failed password for root"}, [b"sshd[1001]: Failed password for root\n"]),
        ({"_PID": None, "MESSAGE": "no pid"}, [b"sshd: no pid\n"]),
        ({"_PID": None, "SYSLOG_PID": "7", "MESSAGE": "x"}, [b"sshd[7]: x\n"]),
        ({"SYSLOG_IDENTIFIER": None, "_COMM": "cron", "MESSAGE": "y"}, [b"cron[1001]: y\n"]),
        ({"MESSAGE": list(b"bytes \xff\x00 here")}, [b"sshd[1001]: bytes \xff\x00 here\n"]),
        ({"MESSAGE": "two\nlines\n"}, [b"sshd[1001]: two\n", b"sshd[1001]: lines\n"]),
        ({"MESSAGE": None}, [b"sshd[1001]: \n"]),
    ])
    def test_format(self, fields: dict[str, Any], lines: list[bytes]) -> None:
        """``IDENTIFIER[PID]: MESSAGE``, binary messages decoded, one line per message line."""
        raw = {k: v for k, v in entry(1, **fields).items() if v is not None}
        parsed = parse_entry(json.dumps(raw).encode(), 1000)
        assert parsed is not None
        assert list(parsed.lines) == lines
        assert parsed.cursor == "s=abc;i=1"
        assert parsed.time == pytest.approx(1_700_000_000.000001)

    @pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"MESSAGE": "no cursor"}', b""])
    def test_garbage_is_none(self, raw: bytes) -> None:
        """What is not an entry is skipped, not a crash."""
        assert parse_entry(raw, 1000) is None

    def test_long_message_is_cut(self) -> None:
        """max_line_length applies to journal lines too."""
        parsed = parse_entry(json.dumps(entry(1, "z" * 500)).encode(), 100)
        assert parsed is not None
        assert parsed.lines[0].startswith(b"sshd[1001]: zzz")
        assert b"cut]" in parsed.lines[0]

    def test_args(self) -> None:
        """Cursor, start_at, units and matches reach journalctl."""
        journal = JournalSource(match=("SYSLOG_FACILITY=4",), units=("ssh.service",))
        assert journalctl_args(journal, None, "end")[-3:] == [
            "--lines=0", "--unit=ssh.service", "SYSLOG_FACILITY=4"]
        assert "--no-tail" in journalctl_args(journal, None, "beginning")
        with_cursor = journalctl_args(journal, "s=1", "end")
        assert "--after-cursor=s=1" in with_cursor
        assert "--lines=0" not in with_cursor


class TestFollow:
    """Following the stand-in journalctl."""

    def test_reads_with_cursor_keys_and_times(self, fake: FakeJournal,
                                              follow_journal: Callable[..., Reader]) -> None:
        """start_at = beginning: every entry, keyed by its cursor, timed by the journal."""
        fake.add(entry(1), entry(2, "two\nlines"))
        reader = follow_journal(start_at="beginning")
        reader.until(lambda: len(reader.lines) == 3)
        assert reader.lines == [b"sshd[1001]: message 1\n", b"sshd[1002]: two\n",
                                b"sshd[1002]: lines\n"]
        assert reader.keys == ["journal:s=abc;i=1", "journal:s=abc;i=2", "journal:s=abc;i=2#1"]
        assert reader.chunks[0].line_time(0) == pytest.approx(1_700_000_000.000001)
        fake.add(entry(3))
        reader.until(lambda: len(reader.lines) == 4)
        assert reader.source.checkpoint() == {"kind": "journal", "cursor": "s=abc;i=3"}

    def test_pending_and_checkpoint_text(self, fake: FakeJournal,
                                         follow_journal: Callable[..., Reader]) -> None:
        """pending() is true while entries are queued, false once read; checkpoint_text()
        is the stored form of checkpoint()."""
        fake.add(entry(1))
        reader = follow_journal(start_at="beginning")
        deadline = time.monotonic() + 15
        while not reader.source.pending():
            assert time.monotonic() < deadline, "the entry never came"
            reader.woken.wait(0.05)
        reader.until(lambda: len(reader.lines) == 1)
        assert not reader.source.pending()
        assert reader.source.checkpoint_text() == encode(reader.source.checkpoint())

    def test_start_at_end_and_matches(self, fake: FakeJournal,
                                      follow_journal: Callable[..., Reader]) -> None:
        """First sight with start_at = end: --lines=0, then only new entries."""
        fake.add(entry(1))
        reader = follow_journal(journal=JournalSource(match=("_COMM=sshd",)))
        reader.until(lambda: fake.runs() != [])
        fake.add(entry(2))
        reader.until(lambda: len(reader.lines) == 1)
        assert reader.lines == [b"sshd[1002]: message 2\n"]
        assert fake.runs()[0][-2:] == ["--lines=0", "_COMM=sshd"]

    def test_restart_after_cursor(self, fake: FakeJournal,
                                  follow_journal: Callable[..., Reader]) -> None:
        """A new follower opened from the checkpoint continues after its cursor."""
        fake.add(entry(1), entry(2))
        first = follow_journal(start_at="beginning")
        first.until(lambda: len(first.lines) == 2)
        checkpoint = first.source.checkpoint()
        first.source.close()
        fake.add(entry(3))
        second = follow_journal(checkpoint, start_at="beginning")
        second.until(lambda: len(second.lines) == 1)
        assert second.lines == [b"sshd[1003]: message 3\n"]
        assert "--after-cursor=s=abc;i=2" in fake.runs()[-1]

    def test_garbage_warned_once(self, fake: FakeJournal, follow_journal: Callable[..., Reader],
                                 caplog: pytest.LogCaptureFixture) -> None:
        """Lines that are not entries are skipped with one warning."""
        fake.add("garbage one", entry(1), "{broken", entry(2))
        with caplog.at_level(logging.WARNING, "logwatch.sources.journal"):
            reader = follow_journal(start_at="beginning")
            reader.until(lambda: len(reader.lines) == 2)
        assert [r.getMessage() for r in caplog.records if "not a JSON" in r.getMessage()] != []
        assert len([r for r in caplog.records if "not a JSON" in r.getMessage()]) == 1

    def test_restarts_when_journalctl_exits(self, fake: FakeJournal,
                                            monkeypatch: pytest.MonkeyPatch,
                                            follow_journal: Callable[..., Reader],
                                            caplog: pytest.LogCaptureFixture) -> None:
        """journalctl dies: a warning with its stderr, a restart after the last entry, no repeat."""
        monkeypatch.setenv("FAKE_JOURNAL_EXIT_AFTER", "2")
        fake.add(entry(1), entry(2), entry(3))
        with caplog.at_level(logging.WARNING, "logwatch.sources.journal"):
            reader = follow_journal(start_at="beginning")
            reader.until(lambda: len(reader.lines) == 3)
        assert [line[:-1].split(b" ")[-1] for line in reader.lines] == [b"1", b"2", b"3"]
        assert any("giving up on purpose" in r.getMessage() for r in caplog.records)
        assert "--after-cursor=s=abc;i=2" in fake.runs()[1]

    def test_banner_says_where_it_resumes(self, fake: FakeJournal,
                                          follow_journal: Callable[..., Reader]) -> None:
        """From a checkpoint made before any entry came: since that moment, not "from now"."""
        since = 1_700_000_000.0
        reader = follow_journal({"kind": "journal", "cursor": None, "since": since},
                                JournalSource(match=("A=1",)))
        shown = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
        assert reader.source.describe()[0] == f'source "auth": journal since {shown}, A=1'
        fresh = follow_journal(None, JournalSource(units=("ssh.service",)))
        assert fresh.source.describe()[0] == 'source "auth": journal from now, --unit=ssh.service'

    def test_missing_journalctl(self, fake: FakeJournal, tmp_path: Path,
                                follow_journal: Callable[..., Reader],
                                caplog: pytest.LogCaptureFixture) -> None:
        """Not installed: a clear warning, retried, and followed once it appears."""
        fake.add(entry(1))
        missing = str(tmp_path / "bin" / "not-yet")
        with caplog.at_level(logging.WARNING, "logwatch.sources.journal"):
            reader = follow_journal(command=(missing,), start_at="beginning")
            assert any("not found" in line for line in reader.source.describe())
            reader.until(lambda: reader.source.restarts >= 2)
            shutil.copy(tmp_path / "bin" / "journalctl", missing)
            reader.until(lambda: len(reader.lines) == 1)
        cannot = [r for r in caplog.records if "cannot run" in r.getMessage()]
        assert len(cannot) == 1, "the same failure is warned about once"


#: run journald in a private mount namespace (tmpfs over its directories), log one entry
#: through its native socket, wait for it to be on disk, and copy the journal file out
MAKE_JOURNAL = r"""
set -e
for d in /run/log /run/systemd /var/log/journal; do mkdir -p $d; mount -t tmpfs none $d; done
mkdir -p /run/log/journal /run/systemd/journal
/lib/systemd/systemd-journald >/dev/null 2>&1 &
trap "kill $!" EXIT
i=0; until [ -S /run/systemd/journal/socket ]; do i=$((i+1)); [ $i -lt 200 ] || exit 4; sleep 0.02; done
python3 -c 'import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect("/run/systemd/journal/socket")
s.send(b"MESSAGE=Failed password for root from 192.0.2.7\nSYSLOG_IDENTIFIER=sshd\nSYSLOG_PID=42\n")'
i=0
until journalctl --directory=/run/log/journal -o cat 2>/dev/null | grep -q "192.0.2.7"; do
  i=$((i+1)); [ $i -lt 200 ] || exit 5; sleep 0.02
done
cp /run/log/journal/*/system.journal "$1"
"""


@pytest.fixture(scope="module")
def real_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real journal file written by systemd-journald (skip where that cannot run)."""
    journald = Path("/lib/systemd/systemd-journald")
    if (os.geteuid() != 0 or not journald.exists() or shutil.which("unshare") is None
            or shutil.which("journalctl") is None):
        pytest.skip("needs root, unshare, systemd-journald and journalctl")
    dest = tmp_path_factory.mktemp("journal") / "system.journal"
    done = subprocess.run(["unshare", "-m", "sh", "-c", MAKE_JOURNAL, "sh", str(dest)],
                          capture_output=True, timeout=30, check=False)
    if done.returncode != 0 or not dest.exists():
        pytest.skip(f"could not make a journal file: {done.stderr[-300:]!r}")
    return dest


def test_real_journalctl_file(real_journal: Path,
                              follow_journal: Callable[..., Reader]) -> None:
    """The real journalctl on a real journal file: our line format, cursor keys, restart."""
    command = ("journalctl", f"--file={real_journal}")
    reader = follow_journal(command=command, start_at="beginning")
    # _PID (the sender's real pid) wins over SYSLOG_PID, as in journalctl's own short format
    wanted = b"]: Failed password for root from 192.0.2.7\n"
    reader.until(lambda: any(line.endswith(wanted) for line in reader.lines))
    at = next(i for i, line in enumerate(reader.lines) if line.endswith(wanted))
    assert reader.lines[at].startswith(b"sshd[")
    assert reader.keys[at].startswith("journal:s=")
    reader.until(lambda: reader.source.checkpoint()["cursor"] == reader.keys[-1][8:].split("#")[0])
    reader.source.close()
    # from the cursor of the entry before ours, ours comes first: journal order, nothing older
    before = reader.keys[at - 1].removeprefix("journal:").split("#")[0]
    again = follow_journal({"kind": "journal", "cursor": before}, command=command)
    again.until(lambda: len(again.lines) > 0)
    assert again.lines[0] == reader.lines[at]
    assert again.keys[0] == reader.keys[at]
