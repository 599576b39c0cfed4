"""ESC, BEL and other control characters from file names and log lines never reach a terminal raw."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from logwatch.terminal import EscapingFormatter, escape_controls
from tests.helpers import Daemon, logwatch, write

EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u2028"


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[31mred", "\\x1b[31mred"),
    ("bell\x07", "bell\\x07"),
    ("two\nlines\r", "two\\x0alines\\x0d"),
    ("c1 \x9b", "c1 \\x9b"),
    ("sep\u2028", "sep\\u2028"),
    ("tab\tand ünïcode", "tab\tand ünïcode"),
])
def test_escape_controls(raw: str, shown: str) -> None:
    """Controls become visible escapes; tabs and ordinary Unicode stay."""
    assert escape_controls(raw) == shown


def test_log_records_are_escaped() -> None:
    """The formatter escapes the message built from attacker-controlled arguments."""
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "file %s: %s", ("a\x1bb", EVIL),
                               None)
    text = EscapingFormatter("%(levelname)s %(message)s").format(record)
    assert text.startswith("WARNING file a\\x1bb: ")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "beginning"
poll_interval = "100ms"

[sources.app]
files = ["{glob}"]

[[rules]]
id = "boom"
match = 'BOOM'
"""


def _raw_controls(text: str) -> list[str]:
    return sorted({repr(c) for c in text if (ord(c) < 32 and c not in "\n\t")
                   or 0x7F <= ord(c) <= 0x9F or c == "\u2028"})


def test_daemon_log_status_and_test_samples_are_escaped(tmp_path: Path) -> None:
    """A file named with escapes and a line full of them: logs, status and test show escapes."""
    logs = tmp_path / "logs"
    evil_file = write(logs / f"a{EVIL}.log", f"BOOM {EVIL} here\n")
    config = write(tmp_path / "logwatch.toml",
                   CONFIG.format(state=tmp_path / "state", glob=logs / "*.log"))
    with Daemon(config) as daemon:
        daemon.wait_stderr("following")
        assert daemon.stop() == 0
        assert _raw_controls(daemon.stderr) == []
        assert "\\x1b]0;pwned\\x07" in daemon.stderr
    status = logwatch("status", "-c", str(config))
    assert status.returncode == 0, status.stderr
    assert _raw_controls(status.stdout) == [] and "\\x1b]0;pwned" in status.stdout
    assert str(evil_file) in json.loads(logwatch("status", "--json", "-c", str(config)).stdout
                                        )["sources"][0]["path"]  # --json stays exact
    replay = logwatch("test", "-c", str(config), str(evil_file))
    assert replay.returncode == 0, replay.stderr
    assert _raw_controls(replay.stdout) == [] and "BOOM \\x1b]0;pwned" in replay.stdout
    alerts = logwatch("test", "--alerts", "-c", str(config), str(evil_file))
    assert _raw_controls(alerts.stdout) == []


def test_a_dry_run_preview_escapes_log_text(tmp_path: Path) -> None:
    """`run --dry-run` prints what Telegram would get: the line's ESC and BEL escaped."""
    import io

    from logwatch.config import TelegramDestination
    from logwatch.delivery import outbox
    from logwatch.delivery.destinations.telegram import Telegram
    from logwatch.delivery.sender import Sender
    from logwatch.secret import Secret
    from logwatch.state import State
    from tests.fakeapi import make_alert

    state = State(tmp_path / "state")
    out = io.StringIO()
    dest = Telegram(TelegramDestination("ops", Secret("1:x"), 1, api_url="http://127.0.0.1:9"))
    sender = Sender(dest, state, dry_run=True, out=out)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(1, to=("ops",), line=f"sshd[1]: user {EVIL}")])
    sender.step()
    state.close()
    shown = out.getvalue()
    assert "would send 1 alert(s)" in shown
    assert "\\x1b]0;pwned\\x07" in shown
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in shown)
