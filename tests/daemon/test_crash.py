"""Promise 1 end to end: kill -9 at random moments loses no line and invents none."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import Daemon, wait_for, write

CONFIG = """
[logwatch]
state_dir = "{state}"
start_at = "beginning"
hostname = "crash-test"
poll_interval = "100ms"
storm = {{ rate = 1000000 }}  # every event must be its own alert here

[destinations.term]
type = "console"

[sources.app]
files = ["{log}"]

[[rules]]
id = "numbered"
match = 'ERROR event (?P<n>\\d+)'
title = "event {{n}}"
"""


def outbox_numbers(db: Path) -> Counter[int]:
    """How many outbox rows each event number has."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT alert FROM outbox").fetchall()
    alerts = [json.loads(alert) for (alert,) in rows]
    return Counter(int(a["fields"]["n"]) for a in alerts if a["kind"] == "alert")


def checkpoint_offset(db: Path) -> int:
    """The committed offset of the followed file (0 before the first commit)."""
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT value FROM kv WHERE ns = 'checkpoint'").fetchall()
    except sqlite3.OperationalError:
        return 0
    text = "".join(value for (value,) in rows)
    return max((int(n) for n in _offsets(json.loads(text) if text else {})), default=0)


def _offsets(data: object) -> list[int]:
    """Every integer stored under a key named 'offset', however the checkpoint nests it."""
    found: list[int] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "offset" and isinstance(value, int):
                found.append(value)
            else:
                found.extend(_offsets(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(_offsets(value))
    return found


@pytest.mark.slow
def test_kill_9_at_random_moments_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    """A writer appends while logwatch is SIGKILLed eight times; every event has one row."""
    log = tmp_path / "app.log"
    state = tmp_path / "state"
    config = write(tmp_path / "c.toml", CONFIG.format(state=state, log=log))
    rng = random.Random(1234)
    total = 60000
    backlog = 40000  # written before the first start, so the kills land mid-batch
    done = threading.Event()

    def line(n: int) -> str:
        kind = "ERROR event" if n % 3 == 0 else "INFO  noise"
        return f"2026-11-28T03:00:00 app[1]: {kind} {n} " + "x" * rng.randrange(80) + "\n"

    log.write_text("".join(line(n) for n in range(backlog)))

    def writer() -> None:
        with log.open("a") as out:
            for n in range(backlog, total):
                out.write(line(n))
                out.flush()
                if n % 50 == 0:
                    done.wait(0.005)  # spread the writes over the kills
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(8):
            with Daemon(config, notify=True) as daemon:
                daemon.wait_ready()
                done.wait(rng.uniform(0.1, 1.5))
                daemon.kill()
        thread.join()
        with Daemon(config, notify=True) as daemon:
            daemon.wait_ready()  # else the checkpoint below may already hold mid-start-up
            size = log.stat().st_size
            wait_for(lambda: checkpoint_offset(state / "state.sqlite3") >= size, 60,
                     message="the last run to catch up")
            assert daemon.stop() == 0
    finally:
        done.set()
        thread.join()
    counts = outbox_numbers(state / "state.sqlite3")
    expected = set(range(0, total, 3))
    assert set(counts) == expected, f"missing: {sorted(expected - set(counts))[:10]}"
    assert max(counts.values()) == 1, "an event was inserted twice"


#: `logwatch run` with a SIGTERM that arrives while the config is being loaded (before
#: the service's own handlers exist), exactly as `systemctl stop` right after start
_TERM_DURING_START_UP = """
import os, signal, sys
import logwatch.daemon.service as service
from logwatch.cli import main

real_load = service.load_config
def load_then_term(path):
    os.kill(os.getpid(), signal.SIGTERM)
    return real_load(path)
service.load_config = load_then_term
sys.exit(main(["run", "-c", sys.argv[1]]))
"""


def test_sigterm_during_start_up_is_a_clean_stop(tmp_path: Path) -> None:
    """A stop asked while logwatch starts: it starts, stops at once, exit 0, the line kept."""
    log = write(tmp_path / "app.log", "2026-11-28T03:00:00 app[1]: ERROR event 3\n")
    state = tmp_path / "state"
    config = write(tmp_path / "c.toml", CONFIG.format(state=state, log=log))
    done = subprocess.run([sys.executable, "-c", _TERM_DURING_START_UP, str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "stopping" in done.stderr
    with Daemon(config, notify=True) as daemon:  # the next start reads the line it left
        daemon.wait_ready()
        wait_for(lambda: outbox_numbers(state / "state.sqlite3") == {3: 1}, 30,
                 message="event 3 in the outbox")
        assert daemon.stop() == 0
