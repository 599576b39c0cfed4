"""A sender thread never dies: it is restarted, counted and reported; poisoned state heals."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from logwatch.commands.status import collect_status, format_status
from logwatch.config import DiscordDestination, load_config
from logwatch.delivery import outbox
from logwatch.delivery.destinations.discord import Discord
from logwatch.delivery.destinations.types import Message, Outcome, Window
from logwatch.delivery.sender import NS, Sender, destination_status
from logwatch.secret import Secret
from logwatch.state import State, put_value
from logwatch.supervisor import describe_crash, supervise
from tests.delivery.test_sender import FAST, count, discord_sender, enqueue
from tests.fakeapi import WEBHOOK_TOKEN, FakeAPI, make_alert
from tests.helpers import wait_for, write


class Flaky(Discord):
    """A real Discord destination whose first ``crashes`` sends raise a bug-like error."""

    def __init__(self, url: str, crashes: int, make: Callable[[str], Exception]) -> None:
        super().__init__(DiscordDestination("hook", Secret(url)), pace=(Window(5, 0.2),),
                         timeout=2.0)
        self.crashes = crashes
        self.make = make

    def send(self, message: Message) -> Outcome:
        """Raise while crashes are left, then really send."""
        if self.crashes > 0:
            self.crashes -= 1
            raise self.make(self.config.url.reveal())
        return super().send(message)


def test_a_crashing_sender_is_restarted_counted_reported_and_delivers(
        tmp_path: Path, fake: FakeAPI, state: State, senders: list[Sender],
        caplog: pytest.LogCaptureFixture) -> None:
    """Three crashes (their messages holding the URL): one line each, restarts 3, all sent."""
    caplog.set_level(logging.INFO)
    dest = Flaky(fake.discord_url(), 3, lambda url: RuntimeError(f"boom at {url}\nsecond line"))
    sender = Sender(dest, state, backoff_base=FAST["backoff_base"],
                    backoff_cap=FAST["backoff_cap"])
    senders.append(sender)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(4)])
    sender.start()
    wait_for(lambda: count(state, "hook", "delivered") == 4, 15, message="4 delivered")
    assert sender.running
    assert sender.restarts == 3
    crashes = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crashes) == 3
    assert all("RuntimeError: boom at ***" in line and "\n" not in line for line in crashes)
    assert "(at test_sender_survives.py:" in crashes[0]
    info = destination_status(state.conn)["hook"]
    assert info["restarts"] == 3
    assert "sender crashed: RuntimeError" in info["last_error"]
    config = write(tmp_path / "logwatch.toml", f'[logwatch]\nstate_dir = "{tmp_path / "state"}"\n')
    shown = format_status(collect_status(load_config(config)))
    assert "sender restarts: 3" in shown
    assert "sender crashed: RuntimeError" in shown
    assert WEBHOOK_TOKEN not in caplog.text + shown + str(info)


def test_a_delivery_that_cannot_be_marked_is_a_crash_not_a_post_a_second(
        fake: FakeAPI, state: State, senders: list[Sender],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one UPDATE that marks a delivery fails (a full disk): the state's failure, as a
    failed COMMIT is: counted, named by ``status``, retried with the loop's backoff, the
    message posted once more when marking works again (not every second meanwhile)."""
    real, failures = outbox.finish, [1]

    def finish_on_a_full_disk(conn: sqlite3.Connection, seqs: Iterable[int], status: str,
                              *args: Any, **kwargs: Any) -> None:
        if failures[0] and not conn.in_transaction:  # the fast path's own statement
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        real(conn, seqs, status, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "finish", finish_on_a_full_disk)
    enqueue(state, [make_alert(0, to=("hook",))])
    sender = discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="delivered")
    assert failures == [0]
    assert sender.restarts == 1
    assert len(fake.received) == 2
    assert "cannot commit: database or disk is full" in str(
        destination_status(state.conn)["hook"]["last_error"])


def test_a_crash_loop_backs_off_and_stop_still_ends_it(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """A sender that always crashes keeps restarting, loses nothing, and stops on request."""
    dest = Flaky(fake.discord_url(), 10**6, lambda url: ValueError("always"))
    sender = Sender(dest, state, backoff_base=0.01, backoff_cap=0.1)
    enqueue(state, [make_alert(1, to=("hook",))])
    sender.start()
    wait_for(lambda: sender.restarts >= 5, 10, message="5 restarts")
    started = time.monotonic()
    sender.stop(1.0)
    assert not sender.running
    assert time.monotonic() - started < 1.5
    assert count(state, "hook", "pending") == 1  # nothing lost, nothing dead


def test_supervise_reports_backs_off_and_returns_when_the_loop_ends() -> None:
    """Two failures then a normal end: two reports, pauses 1 then 2 (x base), two restarts."""
    runs: list[int] = []
    reports: list[tuple[str, int]] = []
    pauses: list[float] = []

    def loop() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise KeyError("token-123")

    def pause(delay: float) -> bool:
        pauses.append(delay)
        return False

    total = supervise("t", loop, report=lambda line, n: reports.append((line, n)), pause=pause,
                      redact=lambda text: text.replace("token-123", "***"), base=0.5, cap=10)
    assert (total, len(runs), pauses) == (2, 3, [0.5, 1.0])
    assert [n for _, n in reports] == [1, 2]
    assert reports[0][0].startswith("KeyError: '***' (at test_sender_survives.py:")


def test_a_crash_while_reporting_does_not_kill_the_supervisor() -> None:
    """The state database is what fails: the report raises, the loop still restarts."""
    runs: list[int] = []

    def loop() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise OSError("disk")

    def report(line: str, n: int) -> None:
        raise RuntimeError("database is locked")

    assert supervise("t", loop, report=report, pause=lambda d: False, base=0.0) == 1
    assert len(runs) == 2


def test_describe_crash_is_one_printable_line() -> None:
    """Control characters and extra lines from an exception's text are not printed."""
    line = describe_crash(ValueError("a\x1b[31mb\nsecond"), lambda t: t)
    assert line == "ValueError: a?[31mb"


@pytest.mark.parametrize("stored", [1e300, math.inf, 4e9])
def test_a_poisoned_next_try_heals_at_start(
        fake: FakeAPI, state: State, senders: list[Sender], stored: float) -> None:
    """Rows stored with an absurd next_try (the old 1e12 bug) are delivered after a restart."""
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    with state.transaction() as conn:
        conn.execute("UPDATE outbox SET next_try = ?", (stored,))
    discord_sender(fake.discord_url(), state, senders, max_retry_wait=0.2)
    wait_for(lambda: count(state, "hook", "delivered") == 3, 10, message="3 delivered")


@pytest.mark.parametrize("saved", [
    [1, 2],
    "text",
    {"failing_since": "yesterday", "last_error": 42, "restarts": -1,
     "pace": {"sent": ["x", None, 1e300, -1e300, math.nan], "blocked_until": 1e300}},
    {"pace": [1, 2], "migrated_chat_id": "abc", "migrated_from": 1},
    {"failing_since": 10**400, "pace": {"sent": [10**400], "blocked_until": -10**400}},
    {"pace": {"sent": list(range(10**4)), "blocked_until": "never"}},
])
def test_damaged_destination_state_is_ignored_not_fatal(
        fake: FakeAPI, state: State, senders: list[Sender], saved: object) -> None:
    """Whatever the kv row holds, the sender starts, delivers, and the status is readable."""
    with state.transaction() as conn:
        put_value(conn, NS, "hook", saved)
    enqueue(state, [make_alert(1, to=("hook",))])
    sender = discord_sender(fake.discord_url(), state, senders, max_retry_wait=0.2)
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="delivered")
    assert sender.restarts == 0
    assert destination_status(state.conn)["hook"]["delivered"] == 1


@pytest.mark.parametrize("saved", [[1], {"failing_since": 1e300, "restarts": "many"},
                                   {"failing_since": "x", "last_error": {"a": 1}}])
def test_status_reads_damaged_destination_state(state: State, saved: object) -> None:
    """``status`` on a kv row no version wrote: a readable line, no exception."""
    with state.transaction() as conn:
        put_value(conn, NS, "hook", saved)
    info = destination_status(state.conn)["hook"]
    assert info["restarts"] == 0
    assert info["failing_since"] is None or "unreadable" in info["failing_since"]


def test_the_stored_retry_time_never_exceeds_the_cap(state: State) -> None:
    """clamp_next_try moves only what is later than the limit (or NULL-like), nothing else."""
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    with state.transaction() as conn:
        conn.executemany("UPDATE outbox SET next_try = ? WHERE seq = ?",
                         [(5.0, 1), (math.inf, 2), (1e12, 3)])
        assert outbox.clamp_next_try(conn, "hook", 100.0) == 2
    assert [r.next_try for r in outbox.pending(state.conn, "hook", 10)] == [5.0, 100.0, 100.0]
