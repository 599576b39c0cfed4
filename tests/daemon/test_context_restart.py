"""Events that span lines survive a crash: the earlier line's fields are saved with the
checkpoint, so a hit read after ``kill -9`` and a restart still takes them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import Daemon, wait_for, write

CONFIG = """
[logwatch]
state_dir = "{state}"
start_at = "beginning"
poll_interval = "0.05s"

[destinations.console]
type = "console"
format = "json"

[sources.auth]
files = ["{log}"]

[[rules]]
id = "too-many"
source = "auth"
match = 'sshd\\[(?P<pid>\\d+)\\]: Disconnecting: Too many authentication failures'
context = {{ key = "{{pid}}", from = 'sshd\\[(?P<pid>\\d+)\\]: Connection from (?P<ip>[\\d.]+) port', require = true }}
title = "out of attempts: {{ip}}"
"""


def remembered(state: Path) -> int:
    db = state / "state.sqlite3"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM kv WHERE ns = 'context'").fetchone()[0])
    except sqlite3.OperationalError:  # the daemon is still creating the schema
        return 0


def test_context_survives_kill_9(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "auth.log"
    write(log, "Nov 23 21:50:10 h sshd[4242]: Connection from 203.0.113.9 port 50022 on "
               "10.0.0.1 port 22\nNov 23 21:50:11 h CRON[1]: noise\n")
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=state, log=log))
    daemon = Daemon(config)
    try:
        wait_for(lambda: remembered(state), message="the connection line saved")
        daemon.kill()
    finally:
        daemon.close()
    with log.open("a", encoding="utf-8") as f:
        f.write("Nov 23 21:50:19 h sshd[4242]: Disconnecting: Too many authentication "
                "failures for root [preauth]\n")
    again = Daemon(config)
    try:
        out = again.wait_stdout('"title":"out of attempts: 203.0.113.9"')
        assert out.count('"kind":"alert"') == 1
        assert again.stop() == 0
    finally:
        again.close()
