"""A catastrophic user regex: bounded time per batch, the watchdog fed, other rules alerting."""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import regex

from logwatch.matching import Matcher
from logwatch.matching.backtracking import has_nested_repeats
from logwatch.matching.matcher import TIMEOUTS_PER_CHUNK
from logwatch.rules import Rule
from logwatch.template import parse_template
from tests.helpers import Daemon, logwatch, wait_for, write

CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "beginning"
hostname = "hostile"
poll_interval = "100ms"
match_timeout = "250ms"
storm = {{ rate = 100000 }}

[destinations.term]
type = "console"

[sources.app]
files = ["{log}"]

[[rules]]
id = "evil"
match = '(a+)+$'
title = "evil"

[[rules]]
id = "boom"
match = 'BOOM (?P<n>\\d+)'
title = "boom <{{n}}>"
"""
#: 70 lines of 700 bytes that almost match ``(a+)+$`` from their start: each search is
#: exponential; each ends in a match, so that no prefilter spares the regex engine the search
EVIL_LINES = "".join("a" * 697 + "!a\n" for _ in range(70))


@pytest.mark.parametrize(("pattern", "nested"), [
    ("(a+)+$", True), (r"(\w+\s?)*$", True), ("(a*)*b", True), ("(?:x|y+)+z", True),
    (r"sshd\[\d+\]: Failed password for (?P<user>\S+)", False), ("(?:ab)+", False),
    (r"(?:\d+\.){3}\d+", False), ("(a{1,5})+", False), (r"\p{L}+", False),
])
def test_nested_repeats_are_recognised(pattern: str, nested: bool) -> None:
    """A repeat of something that repeats unboundedly; regex-only syntax is not guessed at."""
    assert has_nested_repeats(pattern) is nested


def test_check_warns_of_nested_repeats(tmp_path: Path) -> None:
    """``logwatch check`` names the rule before it runs at 3 a.m."""
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "s",
                                                             log=tmp_path / "a.log"))
    result = logwatch("check", "-c", str(config))
    notes = [line for line in result.stdout.splitlines() if "nested repeats" in line]
    assert len(notes) == 1 and '"evil"' in notes[0]


def _rule(rule_id: str, pattern: str) -> Rule:
    return Rule(id=rule_id, pattern=regex.compile(pattern), severity="warning",
                title=parse_template(rule_id), message=parse_template("{line}"), to=())


def test_one_chunk_costs_a_bounded_time_and_the_other_rules_still_match() -> None:
    """After a few stops the evil rule skips the rest of the chunk; on_slow is called."""
    pings: list[float] = []
    matcher = Matcher([_rule("evil", "(a+)+$"), _rule("boom", r"BOOM (?P<n>\d+)")],
                      timeout=0.05, on_slow=lambda: pings.append(time.monotonic()))
    data = (EVIL_LINES + "BOOM 1\n").encode()
    started = time.monotonic()
    found = list(matcher.scan(data))
    elapsed = time.monotonic() - started
    assert [m.rule.id for m in found] == ["boom"]
    assert matcher.timeouts["evil"] == TIMEOUTS_PER_CHUNK
    assert matcher.skipped["evil"] == 70 - TIMEOUTS_PER_CHUNK
    assert len(pings) == TIMEOUTS_PER_CHUNK
    assert elapsed < 70 * 0.05  # well under what searching every line would take


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.1)
    yield sock
    sock.close()


def test_the_watchdog_keeps_hearing_and_the_batch_is_committed(
    tmp_path: Path, notify_socket: socket.socket,
) -> None:
    """Under ``logwatch run`` with WatchdogSec=4s: WATCHDOG=1 never pauses 4 s, BOOM alerts,
    and the batch is committed (the offset covers every line: no crash loop at restart)."""
    log = write(tmp_path / "app.log", "BOOM 1\n" + EVIL_LINES + "BOOM 2\n")
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "state", log=log))
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"}
    pings: list[float] = []
    with Daemon(config, env=env) as daemon:
        deadline = time.monotonic() + 60
        while "boom <2>" not in daemon.stdout and time.monotonic() < deadline:
            try:
                message = notify_socket.recv(4096)
            except TimeoutError:
                continue
            if b"WATCHDOG=1" in message:
                pings.append(time.monotonic())
        daemon.wait_stdout("boom <2>")
        wait_for(lambda: _offset(tmp_path / "state" / "state.sqlite3") == log.stat().st_size,
                 message="the batch committed")
        assert daemon.stop() == 0
        assert "boom <1>" in daemon.stdout
        assert "stopped by the match timeout 3 times in one batch" in daemon.stderr
        assert "Traceback" not in daemon.stderr
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert pings and max(gaps, default=0) < 4.0, gaps


def _offset(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT value FROM kv WHERE ns = 'checkpoint' AND key = 'app'"
                               ).fetchone()
    except sqlite3.Error:
        return -1
    if row is None:
        return -1
    files = json.loads(row[0]).get("files", [])
    return int(files[0]["offset"]) if files else -1
