"""journald priorities: the ``<N>`` prefix when stderr is the journal, and only then."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logwatch.journald import JournalFormatter, stderr_is_journal, syslog_priority
from tests.helpers import REPO

LOG_SOME = """
import logging
from logwatch.cli import setup_logging
setup_logging(verbose=True)
log = logging.getLogger("logwatch.demo")
log.debug("d"); log.info("i"); log.warning("w"); log.error("e"); log.critical("c")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
"""


def record(level: int, msg: str = "hello", exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("inner")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("logwatch.x", level, __file__, 1, msg, None, exc_info)


class TestFormatter:
    """What a record looks like on the journal's stream."""

    @pytest.mark.parametrize(("level", "prefix"), [
        (logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"),
        (logging.ERROR, "<3>"), (logging.CRITICAL, "<2>"), (logging.INFO + 5, "<6>"),
        (logging.WARNING + 1, "<4>"), (logging.NOTSET, "<7>"),
    ])
    def test_level_to_priority(self, level: int, prefix: str) -> None:
        """error 3, warning 4, info 6, debug 7; a custom level takes the level below it."""
        assert JournalFormatter("%(message)s").format(record(level)) == f"{prefix}hello"
        assert syslog_priority(level) == int(prefix[1])

    def test_every_line_prefixed(self) -> None:
        """A traceback stays at the record's priority, line by line; a newline in the message
        (log text from outside) is escaped, so it cannot forge a line of its own."""
        text = JournalFormatter("%(levelname)s %(message)s").format(
            record(logging.ERROR, "two\n<2>lines", exc=True))
        lines = text.split("\n")
        assert len(lines) > 4
        assert all(line.startswith("<3>") for line in lines)
        assert lines[0] == "<3>ERROR two\\x0a<2>lines"
        assert lines[-1] == "<3>ValueError: inner"


class TestDetection:
    """$JOURNAL_STREAM counts only when it names stderr itself."""

    def test_matching_stream(self, tmp_path: Path) -> None:
        with (tmp_path / "f").open("w") as f:
            st = os.fstat(f.fileno())
            assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f.fileno())
            assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"},
                                         f.fileno())

    @pytest.mark.parametrize("value", ["", "garbage", "1:x", ":", "12"])
    def test_unset_or_malformed(self, value: str) -> None:
        assert not stderr_is_journal({"JOURNAL_STREAM": value} if value else {})


def run_logging(tmp_path: Path, journal_stream: str | None) -> list[str]:
    """Run a process that logs at every level with stderr to a real file; its lines."""
    err = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with err.open("w") as f:
        if journal_stream == "match":
            st = os.fstat(f.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal_stream is not None:
            env["JOURNAL_STREAM"] = journal_stream
        subprocess.run([sys.executable, "-c", LOG_SOME], stderr=f, env=env, cwd=REPO,
                       check=True, timeout=60)
    return err.read_text().splitlines()


class TestProcess:
    """``setup_logging`` in a real process."""

    def test_journal_gets_priorities(self, tmp_path: Path) -> None:
        """journald would file each line at its level, the traceback with its error."""
        lines = run_logging(tmp_path, "match")
        assert lines[:5] == [
            "<7>DEBUG logwatch.demo: d", "<6>INFO logwatch.demo: i",
            "<4>WARNING logwatch.demo: w", "<3>ERROR logwatch.demo: e",
            "<2>CRITICAL logwatch.demo: c",
        ]
        assert lines[5] == "<3>ERROR logwatch.demo: boom"
        assert all(line.startswith("<3>") for line in lines[5:])
        assert lines[-1] == "<3>ZeroDivisionError: division by zero"

    @pytest.mark.parametrize("stream", [None, "1:2"])
    def test_terminal_or_inherited_variable(self, tmp_path: Path, stream: str | None) -> None:
        """No journal (or a variable inherited from a parent): timestamps, no prefix."""
        lines = run_logging(tmp_path, stream)
        assert lines[0].endswith(" DEBUG logwatch.demo: d")
        assert not any(line.startswith("<") for line in lines)
        assert lines[0][:4].isdigit()  # asctime
