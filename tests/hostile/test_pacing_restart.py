"""Pacing survives a restart: a kill -9 and a fresh start cost no avoidable 429."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from logwatch.delivery import pacing
from logwatch.delivery.destinations.types import Window
from logwatch.delivery.sender import Pacer, Sender
from logwatch.state import State
from tests.daemon.test_service import ALPHA, append, make_config
from tests.delivery.test_sender import count, discord_sender, enqueue
from tests.fakeapi import FakeAPI, iter_embeds, make_alert
from tests.helpers import Daemon, wait_for, write

WINDOW = (5, 4.0)


def _delivered(state: State, expected: int) -> bool:
    return count(state, "hook", "delivered") == expected


def _received(fake: FakeAPI, expected: int) -> bool:
    return len(fake.received) == expected


def test_saved_times_come_back_as_the_same_moments() -> None:
    """Monotonic -> wall -> monotonic in another process (another clock origin): same ages."""
    saved = pacing.to_saved([100.0, 101.5], 103.0, mono=102.0, wall=5000.0)
    assert saved == {"sent": [4998.0, 4999.5], "blocked_until": 5001.0}
    sent, blocked = pacing.from_saved(saved, mono=7.0, wall=5000.5, cap=60.0, keep=5)
    assert sent == [pytest.approx(4.5), pytest.approx(6.0)]
    assert blocked == pytest.approx(7.5)


@pytest.mark.parametrize(("saved", "sent", "blocked"), [
    ({"sent": [9e99], "blocked_until": 9e99}, [10.0], 10.0 + 60.0),  # the future: now, capped
    ({"sent": [-9e99, math.nan, "x", True]}, [10.0 - 60.0], 0.0),  # ancient: at most the cap
    ({"sent": list(range(100))}, [10.0 - 60.0] * 3, 0.0),  # only the last ``keep``
    ([1, 2], [], 0.0),
    ({"sent": "x", "blocked_until": math.inf}, [], 0.0),
])
def test_saved_pacing_is_read_back_clamped(saved: object, sent: list[float],
                                           blocked: float) -> None:
    """Whatever the database holds: finite times, none in the future, no block past the cap."""
    assert pacing.from_saved(saved, mono=10.0, wall=1000.0, cap=60.0, keep=3) == (sent, blocked)


def test_a_restarted_pacer_remembers_the_window() -> None:
    """Five requests, saved, loaded by a new pacer: it waits for the window like the old one."""
    first = Pacer((Window(5, 2.0),))
    for _ in range(5):
        first.record(time.monotonic())
    second = Pacer((Window(5, 2.0),))
    second.load(first.save(), cap=60.0)
    assert second.delay(time.monotonic()) > 1.5


def test_a_request_in_the_saved_pace_and_the_delivered_rows_counts_once() -> None:
    """Four requests saved with the pace and their rows' ``done`` times just after: four, so
    a fifth may go at once; a fifth in the rows alone, after the save: the window is full."""
    first = Pacer((Window(5, 60.0),))
    for _ in range(4):
        first.record(time.monotonic() - 10.0)
    saved = first.save()
    done = [t + 0.002 for t in saved["sent"]]
    second = Pacer((Window(5, 60.0),))
    second.load(saved, cap=60.0, delivered=done)
    assert second.delay(time.monotonic()) == 0.0
    third = Pacer((Window(5, 60.0),))
    third.load(saved, cap=60.0, delivered=[*done, max(done) + 1.0])
    assert third.delay(time.monotonic()) > 45


def test_a_new_sender_on_the_same_state_causes_no_429(
        tmp_path: Path, senders: list[Sender]) -> None:
    """Five single sends, the sender and its database closed, a new one: the server sees no 429."""
    with FakeAPI(discord_window=WINDOW) as fake:
        state = State(tmp_path / "state")
        first = discord_sender(fake.discord_url(), state, senders, pace=(Window(*WINDOW),))
        for n in range(5):
            enqueue(state, [make_alert(n, to=("hook",))], [first])
            wait_for(partial(_delivered, state, n + 1), 10, message=f"{n + 1} delivered")
        first.stop(0)
        state.close()
        again = State(tmp_path / "state")
        enqueue(again, [make_alert(n, to=("hook",)) for n in range(5, 10)])
        discord_sender(fake.discord_url(), again, senders, pace=(Window(*WINDOW),))
        wait_for(lambda: count(again, "hook", "delivered") == 10, 20, message="10 delivered")
        again.close()
        assert fake.rate_limited == 0


def _saved_pace(db: Path) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT value FROM kv WHERE ns = 'destination' AND key = 'oncall'"
                           ).fetchone()
    return dict(json.loads(row[0]).get("pace", {})) if row else {}


@pytest.mark.slow
def test_kill_9_and_restart_of_the_daemon_causes_no_429(tmp_path: Path) -> None:
    """The issue's case, for real: ``run`` sends five, is killed, restarts, sends more; no 429.

    Discord's window here is 5 per 4 s (the daemon paces itself at 5 per 2 s), so only
    the bucket state (``X-RateLimit-Reset-After``) kept across the restart avoids the 429.
    The kill comes between two requests, as it mostly does; a request in flight at the
    kill is one the next run cannot know about.
    """
    with FakeAPI(discord_window=WINDOW) as fake:
        extra = '[destinations.oncall]\ntype = "discord"\nurl = "${FAKE_DISCORD}"\n'
        config = make_config(tmp_path, ALPHA, extra=extra)
        log = write(tmp_path / "app.log", "")
        db = tmp_path / "state" / "state.sqlite3"
        env = {"FAKE_DISCORD": fake.discord_url()}
        with Daemon(config, env=env) as daemon:
            daemon.wait_stderr("sends to oncall")
            for n in range(5):
                append(log, f"alpha {n}")
                wait_for(partial(_received, fake, n + 1), 10, message=f"{n + 1} received")
            wait_for(lambda: "blocked_until" in _saved_pace(db), 10, message="pace saved")
            daemon.kill()
        with Daemon(config, env=env) as daemon:
            daemon.wait_stderr("sends to oncall")
            append(log, *(f"alpha {n}" for n in range(5, 8)))
            wait_for(lambda: len(fake.received) == 6, 20, message="the sixth request")
            assert daemon.stop() == 0
        assert [e["title"] for e in iter_embeds(fake)] == [f"alpha {n}" for n in range(8)]
        assert fake.rate_limited == 0
