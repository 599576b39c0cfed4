"""A damaged, locked or unreadable state database: one clear line, never a traceback or a loop."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from logwatch.state import DB_NAME, State, put_value
from tests.helpers import REPO, Daemon, logwatch, write
from tests.hostile.users import as_user, other_user, python_as

CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "{start_at}"
hostname = "hostile"
poll_interval = "100ms"

[destinations.term]
type = "console"

[sources.app]
files = ["{log}"]

[[rules]]
id = "boom"
match = 'BOOM (?P<n>\\d+)'
title = "boom {{n}}"
"""


def make_config(tmp_path: Path, start_at: str = "end") -> Path:
    """The config, with state in tmp_path/state and the log tmp_path/app.log."""
    return write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", log=tmp_path / "app.log", start_at=start_at))


def filled_state(tmp_path: Path) -> Path:
    """A state database of many pages (a real one after a while), closed."""
    state = State(tmp_path / "state")
    with state.transaction() as conn:
        for i in range(2000):
            put_value(conn, "policy", f"t/rule/{i}", {"hits": list(range(20))})
    state.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.close()
    return tmp_path / "state" / DB_NAME


def damage(db: Path) -> None:
    """One bad page in the middle of the kv table."""
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\xde\xad\xbe\xef" * 1024)


def test_a_second_daemon_on_the_same_state_refuses_naming_the_first(tmp_path: Path) -> None:
    """Two daemons would deliver every alert twice: the second says who holds the state."""
    config = make_config(tmp_path)
    write(tmp_path / "app.log", "")
    with Daemon(config) as first:
        first.wait_stderr("sends to term")
        second = logwatch("run", "-c", str(config), timeout=30)
        assert second.returncode == 1
        assert second.stderr == (f"logwatch: state_dir {tmp_path / 'state'} is in use by another "
                                 f"logwatch run (pid {first.proc.pid}); stop it first\n")
        assert first.stop() == 0
    with Daemon(config) as third:  # the lock went with the first process
        third.wait_stderr("sends to term")
        assert third.stop() == 0


def test_the_first_run_saves_its_position_at_once(tmp_path: Path) -> None:
    """start_at = "end", nothing read, stopped; a line written meanwhile is alerted next time."""
    config = make_config(tmp_path)
    log = write(tmp_path / "app.log", "BOOM 1 before logwatch ever ran\n")
    with Daemon(config) as first:
        first.wait_stderr("sends to term")
        assert first.stop() == 0
    with log.open("a") as f:
        f.write("BOOM 2 while logwatch was stopped\n")
    with Daemon(config) as second:
        second.wait_stdout("boom 2")
        assert second.stop() == 0
        assert "boom 1" not in second.stdout


def test_a_damaged_database_is_moved_aside_and_alerted(tmp_path: Path) -> None:
    """quick_check at start: one error line, a fresh state from start_at, an alert, running."""
    damage(filled_state(tmp_path))
    config = make_config(tmp_path, start_at="beginning")
    write(tmp_path / "app.log", "BOOM 1 read again from the beginning\n")
    with Daemon(config) as daemon:
        daemon.wait_stdout("state database damaged")
        daemon.wait_stdout("boom 1")
        assert daemon.stop() == 0
        errors = [line for line in daemon.stderr.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and "the state database was damaged" in errors[0]
        assert "Traceback" not in daemon.stderr
    aside = list((tmp_path / "state").glob(f"{DB_NAME}.damaged-*"))
    assert len(aside) == 1


@pytest.mark.parametrize("harm", ["damaged", "truncated", "garbage"])
def test_status_on_a_broken_database_is_one_line(tmp_path: Path, harm: str) -> None:
    """No traceback from ``status``, whatever happened to the file."""
    db = filled_state(tmp_path)
    if harm == "damaged":
        damage(db)
    elif harm == "truncated":
        os.truncate(db, db.stat().st_size // 3)
    else:
        db.write_bytes(os.urandom(8192))
    result = logwatch("status", "-c", str(make_config(tmp_path)))
    assert "Traceback" not in result.stderr
    if result.returncode:  # a page status does not read may be the damaged one
        assert result.returncode == 1
        assert result.stderr.startswith(f"logwatch: {db}: ")
        assert result.stderr.count("\n") == 1


def test_status_as_a_user_who_cannot_read_the_state_is_one_line(shared: Path) -> None:
    """The state is 0700 root's: another user gets a sentence, not PermissionError."""
    user = other_user()
    python, env = python_as(user)
    tmp_path = shared
    filled_state(tmp_path)
    config = make_config(tmp_path)
    config.chmod(0o644)
    result = subprocess.run([python, "-m", "logwatch", "status", "-c", str(config)],
                            capture_output=True, text=True, cwd=REPO, check=False, timeout=60,
                            env=env, **as_user(user))  # type: ignore[call-overload]
    assert result.returncode == 1, result.stderr
    assert result.stderr == (f"logwatch: {tmp_path / 'state' / DB_NAME}: cannot read the state "
                             "database: Permission denied\n")


def test_a_state_file_that_is_not_sqlite_is_one_line_for_run(tmp_path: Path) -> None:
    """Garbage where the database should be: moved aside as damaged, daemon running."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / DB_NAME).write_bytes(b"not a database at all" * 500)
    write(tmp_path / "app.log", "")
    with Daemon(make_config(tmp_path)) as daemon:
        daemon.wait_stdout("state database damaged")
        assert daemon.stop() == 0
    assert sqlite3.connect(tmp_path / "state" / DB_NAME).execute(
        "PRAGMA quick_check").fetchone() == ("ok",)
