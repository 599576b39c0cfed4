"""The steady state's cost: writes gathered into one commit, and a burst cut into bounded ones."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

from logwatch.daemon.service import ALERTS_PER_COMMIT, FIRST_PIECE
from tests.helpers import Daemon, wait_for, write

CONFIG = """
[logwatch]
state_dir = "{state}"
hostname = "batch-test"
batch_wait = "{batch_wait}"
storm = {{ rate = 1000000 }}  # every line its own alert

[destinations.term]
type = "console"

[sources.app]
files = ["{log}"]

[[rules]]
id = "numbered"
match = 'event (?P<n>\\d+)'
title = "event {{n}}"
"""


def start(tmp_path: Path, batch_wait: str) -> tuple[Daemon, Path, Path]:
    log = write(tmp_path / "app.log", "")
    config = write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", log=log, batch_wait=batch_wait))
    daemon = Daemon(config)
    daemon.wait_stderr("sends to term")
    return daemon, log, tmp_path / "state" / "state.sqlite3"


def transactions(db: Path, expected: int) -> Counter[float]:
    """Outbox rows per transaction (one enqueue, one ``created`` time), once all are in."""
    def rows() -> list[tuple[float]]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT created FROM outbox").fetchall()
    wait_for(lambda: len(rows()) >= expected, 30, message=f"{expected} outbox rows")
    found = rows()
    assert len(found) == expected  # none doubled
    return Counter(created for (created,) in found)


def test_writes_within_batch_wait_are_committed_together(tmp_path: Path) -> None:
    """Three writes 50 ms apart, each its own inotify event, make one transaction when
    batch_wait covers them (one match and one commit per burst, not per write)."""
    daemon, log, db = start(tmp_path, "600ms")
    with daemon:
        # a first line, committed: the daemon is past its start-up read, in its loop
        with log.open("a") as out:
            out.write("event 100\n")
        transactions(db, 1)
        for n in range(3):
            with log.open("a") as out:
                out.write(f"event {n}\n")
            time.sleep(0.05)  # spacing the writes, not waiting for anything
        assert sorted(transactions(db, 4).values()) == [1, 3]


def test_a_burst_is_committed_in_transactions_of_bounded_size(tmp_path: Path) -> None:
    """6,000 matching lines written at once: several transactions, none much above
    ALERTS_PER_COMMIT (a cap plus one piece), every alert exactly once."""
    daemon, log, db = start(tmp_path, "0s")
    line = "event {n} " + "x" * 90 + "\n"
    with daemon:
        with log.open("a") as out:
            out.write("".join(line.format(n=n) for n in range(6000)))
        sizes = transactions(db, 6000)
    assert len(sizes) >= 3
    assert max(sizes.values()) <= ALERTS_PER_COMMIT + FIRST_PIECE // 100
