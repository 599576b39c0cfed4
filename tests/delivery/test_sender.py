"""Senders against the fake Discord + Telegram: order, pacing, outages, dead rows, secrets."""

from __future__ import annotations

import io
import logging
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import Config, DiscordDestination, TelegramDestination, load_config
from logwatch.delivery import outbox
from logwatch.delivery.destinations.discord import Discord
from logwatch.delivery.destinations.telegram import Telegram, list_chats
from logwatch.delivery.destinations.types import Window
from logwatch.delivery.sender import (
    Sender,
    Signal,
    build_senders,
    destination_status,
    send_test,
)
from logwatch.errors import DeliveryError
from logwatch.models import Alert
from logwatch.secret import Secret
from logwatch.state import State, get_value
from tests.fakeapi import (
    BOT_TOKEN,
    CHAT_ID,
    WEBHOOK_TOKEN,
    FakeAPI,
    hostile_alert,
    make_alert,
    telegram_html_problems,
)
from tests.helpers import REPO, wait_for, write
from tests.helpers import logwatch as logwatch_cli

DISCORD_PACE = (Window(5, 0.2),)
TELEGRAM_PACE = (Window(1, 0.05), Window(20, 1.0))
FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "probe_interval": 0.2}


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    """The fake services with rate-limit windows ten times faster than the real ones."""
    with FakeAPI(discord_window=(5, 0.2), telegram_window=(1, 0.05),
                 telegram_group_window=(20, 1.0)) as server:
        yield server


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    """A fresh state database."""
    st = State(tmp_path / "state")
    yield st
    st.close()


@pytest.fixture
def senders() -> Iterator[list[Sender]]:
    """Senders to stop at the end of the test, whatever happened."""
    started: list[Sender] = []
    yield started
    for sender in started:
        sender.stop(0)


def discord_sender(url: str, state: State, senders: list[Sender], *,
                   pace: tuple[Window, ...] = DISCORD_PACE, **options: Any) -> Sender:
    """A started sender for destination "hook"."""
    dest = Discord(DiscordDestination("hook", Secret(url)), pace=pace, timeout=2.0)
    sender = Sender(dest, state, **{**FAST, **options})
    senders.append(sender)
    sender.start()
    return sender


def telegram_sender(fake: FakeAPI, state: State, senders: list[Sender], *,
                    chat_id: int = CHAT_ID, token: str = BOT_TOKEN, **options: Any) -> Sender:
    """A started sender for destination "ops"."""
    config = TelegramDestination("ops", Secret(token), chat_id, api_url=fake.base)
    sender = Sender(Telegram(config, pace=TELEGRAM_PACE, timeout=2.0), state,
                    **{**FAST, **options})
    senders.append(sender)
    sender.start()
    return sender


def enqueue(state: State, alerts: list[Alert], senders: list[Sender] | None = None) -> None:
    """Commit alerts to the outbox and wake the senders."""
    with state.transaction() as conn:
        outbox.enqueue(conn, alerts)
    for sender in senders or ():
        sender.wake()


def count(state: State, name: str, status: str) -> int:
    """Rows of destination ``name`` in ``status``."""
    return outbox.counts(state.conn).get(name, {}).get(status, 0)


def numbers(fake: FakeAPI) -> list[int]:
    """Event numbers in the order the fake Discord accepted them."""
    return [int(e["title"].split()[-1]) for body in fake.bodies("discord")
            for e in body["embeds"]]


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- order, batching, pacing ---------------------------------------------------------


def test_thousand_alerts_in_order_batched_within_the_rate_limit(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """1,000 alerts to one webhook at 5 requests per window: all, in order, batched, <= one 429."""
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(1000)])
    discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 1000, 30, message="1000 delivered")
    assert numbers(fake) == list(range(1000))
    assert len(fake.received) <= 110
    assert fake.rate_limited <= 1
    assert fake.violations == []


@pytest.mark.slow
def test_thousand_alerts_at_discords_real_rate_limit(
        state: State, senders: list[Sender]) -> None:
    """The same at Discord's real 5 requests / 2 s, unscaled: about 40 s of batched sending."""
    with FakeAPI(discord_window=(5, 2.0)) as fake:
        enqueue(state, [make_alert(n, to=("hook",)) for n in range(1000)])
        discord_sender(fake.discord_url(), state, senders, pace=(Window(5, 2.0),))
        wait_for(lambda: count(state, "hook", "delivered") == 1000, 90, interval=0.2,
                 message="1000 delivered")
        assert numbers(fake) == list(range(1000))
        assert len(fake.received) <= 110
        assert fake.rate_limited <= 1
        assert fake.violations == []


def test_pace_follows_the_rate_limit_headers(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """With a pace looser than the server's, X-RateLimit-Remaining/Reset-After keep us under it."""
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(300)])
    discord_sender(fake.discord_url(), state, senders, pace=(Window(1000, 0.2),))
    wait_for(lambda: count(state, "hook", "delivered") == 300, 30, message="300 delivered")
    assert numbers(fake) == list(range(300))
    assert fake.rate_limited <= 1


def test_alerts_queued_while_running_keep_their_order(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Rows committed in several transactions while the sender works go out in seq order."""
    sender = discord_sender(fake.discord_url(), state, senders)
    for start in range(0, 60, 7):
        enqueue(state, [make_alert(n, to=("hook",)) for n in range(start, min(start + 7, 60))],
                [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 60, 20, message="60 delivered")
    assert numbers(fake) == list(range(60))


def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The destinations of every outbox.pending call from now on."""
    reads: list[str] = []
    real = outbox.pending

    def pending(conn: Any, destination: str, limit: int, **options: Any) -> list[outbox.Row]:
        reads.append(destination)
        return real(conn, destination, limit, **options)

    monkeypatch.setattr(outbox, "pending", pending)
    return reads


def test_a_wake_while_paced_reads_nothing_until_the_pace_opens(
        fake: FakeAPI, state: State, senders: list[Sender], monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits while the pace is closed wake the sender, which reads no outbox row before the
    pace opens (the daemon wakes it after every commit); then they all go, in order."""
    reads = counted_reads(monkeypatch)
    sender = discord_sender(fake.discord_url(), state, senders, pace=(Window(1, 3.0),))
    enqueue(state, [make_alert(0, to=("hook",))], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="the first delivered")
    before = len(reads)
    for n in range(1, 21):
        enqueue(state, [make_alert(n, to=("hook",))], [sender])
        wait_for(lambda: not sender._wake.is_set(), 5, message="the wake taken")
    assert len(reads) == before
    wait_for(lambda: count(state, "hook", "delivered") == 21, 10, message="all delivered")
    assert numbers(fake) == list(range(21))


def test_a_wake_while_paced_leaves_the_thread_asleep(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Once the sender knows its pace is closed, a commit's wake does not wake its thread (it
    looks by itself when the pace opens); the rows still all go, in order."""
    sender = discord_sender(fake.discord_url(), state, senders, pace=(Window(1, 3.0),))
    enqueue(state, [make_alert(0, to=("hook",))], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="the first delivered")
    enqueue(state, [make_alert(1, to=("hook",))], [sender])
    wait_for(lambda: sender._not_before > time.monotonic(), 5, message="the pace seen closed")
    for n in range(2, 6):
        enqueue(state, [make_alert(n, to=("hook",))], [sender])
        assert not sender._wake.is_set()
    wait_for(lambda: count(state, "hook", "delivered") == 6, 10, message="all delivered")
    assert numbers(fake) == list(range(6))


def test_a_sender_that_sent_everything_waits_for_a_wake(
        fake: FakeAPI, state: State, senders: list[Sender], monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer rows than a message holds all went out: the outbox is not read again to find it
    empty; the next commit's wake sends at once."""
    reads = counted_reads(monkeypatch)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    sender = discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 3, 10, message="3 delivered")
    enqueue(state, [make_alert(3, to=("hook",))], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 4, 10, message="the 4th delivered")
    assert len(reads) == 2
    assert numbers(fake) == list(range(4))


def test_a_send_commits_once(
        fake: FakeAPI, state: State, senders: list[Sender], monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's rows and the pace it used are settled in one transaction, both kept (the
    pace as the rows' ``done`` when they were all delivered and the bucket has room)."""
    commits: list[str] = []
    real = state.transaction

    @contextmanager
    def counted() -> Iterator[sqlite3.Connection]:
        with real() as conn:
            yield conn
        commits.append(threading.current_thread().name)

    monkeypatch.setattr(state, "transaction", counted)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(35)])
    discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 35, 20, message="35 delivered")
    assert len(fake.received) >= 4
    # 429s and a bucket's pause in a transaction with the pace row; the rest one UPDATE
    assert fake.rate_limited <= commits.count("sender-hook") <= (
        len(fake.received) + fake.rate_limited)
    assert len(outbox.recent_done(state.conn, "hook", 100)) == len(fake.received)


def test_a_request_that_only_delivers_saves_no_pace_row(
        state: State, senders: list[Sender]) -> None:
    """Rows delivered and a bucket with room: one UPDATE, the pace row not written."""
    with FakeAPI(discord_window=(50, 60.0)) as fake:
        enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
        discord_sender(fake.discord_url(), state, senders)
        wait_for(lambda: count(state, "hook", "delivered") == 3, 10, message="3 delivered")
        assert len(fake.received) == 1
    assert "pace" not in (get_value(state.conn, "destination", "hook") or {})
    assert len(outbox.recent_done(state.conn, "hook", 100)) == 1


def test_a_new_sender_paces_by_the_rows_it_delivered(state: State) -> None:
    """No pace row, five requests' rows delivered just now: a new sender waits for the window."""
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(12)])
    seqs = [row.seq for row in outbox.pending(state.conn, "hook", 12)]
    now = time.time()
    for n, part in enumerate((seqs[:2], seqs[2:3], seqs[3:6], seqs[6:7], seqs[7:10])):
        with state.transaction() as conn:
            outbox.finish(conn, part, "delivered", now=now - 5 + n)
    dest = Discord(DiscordDestination("hook", Secret("http://127.0.0.1:9/api/webhooks/1/x")),
                   pace=(Window(5, 60.0),))
    sender = Sender(dest, state, **FAST)
    assert sender._pacer.delay(time.monotonic()) > 50


def test_ready_at_tells_the_main_loop_when_a_new_row_could_go(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Free: now. Behind rows that go first: never, until they are gone (``on_free``). Free
    but just sent, with the pace closed: when it opens. (The daemon commits alerts for a
    destination at once only when they could go now.)"""
    freed = threading.Event()
    sender = discord_sender(fake.discord_url(), state, senders, pace=(Window(1, 2.0),),
                            on_free=freed.set)
    wait_for(freed.is_set, 10, message="free once it found the outbox empty")
    now = time.monotonic()
    assert sender.ready_at(now) == now  # exactly: a later answer made the loop spin
    freed.clear()
    batch = sender.destination.max_batch
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(batch + 3)], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == batch, 10, message="one message")
    assert sender.ready_at(time.monotonic()) == math.inf  # 3 rows wait for the pace first
    assert not freed.is_set()
    wait_for(freed.is_set, 10, message="free once the 3 went")
    assert count(state, "hook", "delivered") == batch + 3
    now = time.monotonic()
    assert now < sender.ready_at(now) <= now + 2.0  # the pace


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("outage", [
    1.5,
    pytest.param(30.0, marks=pytest.mark.slow, id="30s"),  # as the issue asks: a real 30 s
])
def test_outage_then_everything_in_order(
        fake: FakeAPI, state: State, senders: list[Sender],
        caplog: pytest.LogCaptureFixture, outage: float) -> None:
    """The service drops every connection for a while: backoff, then all of it, in order."""
    caplog.set_level(logging.INFO)
    fake.down(outage)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(40)])
    sender = discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: sender.failing_since is not None, 10, message="failing")
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(40, 50)], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 50, outage + 20,
             message="50 delivered")
    assert numbers(fake) == list(range(50))
    wait_for(lambda: sender.failing_since is None, 5, message="healthy again")
    assert "retrying in" in caplog.text
    assert "delivering again" in caplog.text


def test_server_errors_and_429_are_retried(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """500, 503, a dropped connection and a 429: retried, nothing dead, nothing doubled."""
    for mode in ("500", "429", "drop", "503"):
        fake.fail(mode)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(25)])
    discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 25, 20, message="25 delivered")
    assert numbers(fake) == list(range(25))
    assert count(state, "hook", "dead") == 0


def test_unknown_webhook_is_dead_loud_once_and_holds_the_rest(
        fake: FakeAPI, state: State, senders: list[Sender],
        caplog: pytest.LogCaptureFixture) -> None:
    """404 10015: the batch is dead with its reason, one error line, failing; the rest waits."""
    fake.fail("unknown_webhook", times=3)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(15)])
    sender = discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "dead") == 10, 10, message="10 dead")
    assert sender.failing_since is not None
    assert sender.last_error is not None
    assert "unknown webhook" in sender.last_error
    # the probes that fail again kill nothing more; once the webhook answers, the rest goes
    wait_for(lambda: count(state, "hook", "delivered") == 5, 10, message="5 delivered")
    assert count(state, "hook", "dead") == 10
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert 'destination "hook"' in errors[0].getMessage()
    assert "unknown webhook" in errors[0].getMessage()
    wait_for(lambda: sender.failing_since is None, 5, message="healthy again")
    status = destination_status(state.conn)["hook"]
    assert (status["dead"], status["delivered"], status["pending"]) == (10, 5, 0)
    assert "unknown webhook" in status["last_dead_reason"]


def test_telegram_migration_is_followed_and_remembered(
        fake: FakeAPI, state: State, senders: list[Sender],
        caplog: pytest.LogCaptureFixture) -> None:
    """A group upgraded to a supergroup: resent there, remembered across a restart, warned."""
    caplog.set_level(logging.INFO)
    fake.chats = {-100777}
    fake.migrations = {-555: -100777}
    enqueue(state, [make_alert(1, to=("ops",))])
    first = telegram_sender(fake, state, senders, chat_id=-555)
    wait_for(lambda: count(state, "ops", "delivered") == 1, 10, message="delivered")
    first.stop(1)
    assert "set chat_id = -100777 in the config" in caplog.text
    assert destination_status(state.conn)["ops"]["migrated_chat_id"] == -100777
    fake.migrations = {}  # the old id would now be "chat not found"
    enqueue(state, [make_alert(2, to=("ops",))])
    telegram_sender(fake, state, senders, chat_id=-555)
    wait_for(lambda: count(state, "ops", "delivered") == 2, 10, message="both delivered")
    assert [r.target for r in fake.received] == ["-100777", "-100777"]


def test_telegram_batches_when_behind(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Fifty queued alerts go in a few messages, not fifty."""
    enqueue(state, [make_alert(n, to=("ops",)) for n in range(50)])
    telegram_sender(fake, state, senders)
    wait_for(lambda: count(state, "ops", "delivered") == 50, 20, message="50 delivered")
    texts = [b["text"] for b in fake.bodies("telegram")]
    assert len(texts) <= 5
    found = [int(n) for n in re.findall(r"<b>event (\d+)</b>", "\n".join(texts))]
    assert found == list(range(50))


def test_min_severity_skips_quieter_alerts(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """An info alert to a warning-and-above destination is skipped, not sent or lost."""
    enqueue(state, [make_alert(1, severity="info", to=("hook",)),
                    make_alert(2, severity="critical", to=("hook",))])
    discord_sender(fake.discord_url(), state, senders, min_severity="warning")
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="delivered")
    assert count(state, "hook", "skipped") == 1
    assert numbers(fake) == [2]


# -- hostile text ------------------------------------------------------------------------


def test_hostile_text_arrives_harmless_and_within_limits_at_both(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Mentions, markdown, HTML, entities and a 10,000-character tail: inert and within limits."""
    enqueue(state, [hostile_alert(n, to=("hook", "ops")) for n in range(3)])
    discord_sender(fake.discord_url(), state, senders)
    telegram_sender(fake, state, senders)
    wait_for(lambda: count(state, "hook", "delivered") == 3 and
             count(state, "ops", "delivered") == 3, 15, message="delivered to both")
    assert fake.violations == []
    for body in fake.bodies("discord"):
        assert body["allowed_mentions"] == {"parse": []}
        for embed in body["embeds"]:
            assert embed["title"].startswith(r"\@everyone \<\@&123\> \*\*bold\*\*")
            assert len(embed["description"]) <= 4096
            assert embed["description"].count("```") == 2
    for body in fake.bodies("telegram"):
        text = body["text"]
        assert len(text) <= 4096
        assert telegram_html_problems(text) == []
        assert "<b>x</b>" not in text
        assert "&lt;b&gt;x&lt;/b&gt;" in text
        assert "&amp;amp;" in text


# -- dry run and stopping ---------------------------------------------------------------


def test_dry_run_prints_the_payload_and_posts_nothing(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """--dry-run: the payload goes to stdout without the URL; rows count as delivered."""
    out = io.StringIO()
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    discord_sender(fake.discord_url(), state, senders, dry_run=True, out=out)
    wait_for(lambda: count(state, "hook", "delivered") == 3, 10, message="delivered")
    assert fake.requests == 0
    text = out.getvalue()
    assert "hook (discord) would send 3 alert(s)" in text
    assert '"title": "event 2"' in text
    assert WEBHOOK_TOKEN not in text


def test_stop_drains_what_is_due(fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """stop(timeout) delivers the pending rows before returning."""
    sender = discord_sender(fake.discord_url(), state, senders)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(25)], [sender])
    sender.stop(10)
    assert not sender.running
    assert count(state, "hook", "delivered") == 25


def test_stop_during_an_outage_keeps_the_rows(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """A destination that is down when we stop keeps its rows pending for the next start."""
    fake.down(60)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(5)])
    sender = discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: sender.failing_since is not None, 10, message="failing")
    sender.stop(0.3)
    assert not sender.running
    assert count(state, "hook", "pending") == 5


# -- kill -9 ------------------------------------------------------------------------------

CHILD = """
import sys, threading
from pathlib import Path
from logwatch.config import DiscordDestination
from logwatch.delivery.sender import Sender
from logwatch.delivery.destinations.discord import Discord
from logwatch.delivery.destinations.types import Window
from logwatch.secret import Secret
from logwatch.state import State, get_value

state = State(Path(sys.argv[1]))
dest = Discord(DiscordDestination("hook", Secret(sys.argv[2])), pace=(Window(5, 0.2),))
Sender(dest, state).start()
print("started", flush=True)
threading.Event().wait()
"""


def _run_child(script: Path, state_dir: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(script), str(state_dir), url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def test_kill_9_mid_stream_loses_nothing(tmp_path: Path, fake: FakeAPI) -> None:
    """SIGKILL a sender process mid-stream, restart: every alert arrives; duplicates only from
    the one message that was in flight."""
    state_dir = tmp_path / "state"
    st = State(state_dir)
    enqueue(st, [make_alert(n, to=("hook",)) for n in range(400)])
    st.close()
    script = write(tmp_path / "child.py", CHILD)
    child = _run_child(script, state_dir, fake.discord_url())
    try:
        wait_for(lambda: len(fake.received) >= 10, 20, message="10 messages")
        child.send_signal(signal.SIGKILL)
        child.wait()
        child = _run_child(script, state_dir, fake.discord_url())
        wait_for(lambda: sorted(set(numbers(fake))) == list(range(400)), 30,
                 message="all 400 received")
    finally:
        child.kill()
        child.wait()
    seen = Counter(numbers(fake))
    doubled = {n for n, c in seen.items() if c > 1}
    assert all(c <= 2 for c in seen.values())
    bodies = [{int(e["title"].split()[-1]) for e in b["embeds"]} for b in fake.bodies("discord")]
    # everything sent twice was in one message
    assert not doubled or any(doubled <= body for body in bodies)
    assert numbers(fake)[-1] == 399


# -- send-test -------------------------------------------------------------------------


def _config(tmp_path: Path, fake: FakeAPI, *, url: str | None = None,
            token: str = BOT_TOKEN, chat: int = CHAT_ID) -> Config:
    path = write(tmp_path / "logwatch.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"
hostname = "test-host"

[destinations.hook]
type = "discord"
url = "${{HOOK_URL}}"

[destinations.ops]
type = "telegram"
token = "${{BOT_TOKEN}}"
chat_id = {chat}
api_url = "{fake.base}"

[destinations.term]
type = "console"
""")
    return load_config(path, environ={"HOOK_URL": url or fake.discord_url(),
                                      "BOT_TOKEN": token})


@pytest.mark.parametrize(
    ("name", "mode", "arrived", "words"),
    [
        ("hook", None, True, "test message delivered"),
        ("hook", "unknown_webhook", False, "unknown webhook"),
        ("hook", "invalid_token", False, "invalid webhook token"),
        ("hook", "500", False, "Discord answered 500"),
        ("hook", "drop", False, "network"),
        ("ops", None, True, "test message delivered"),
        ("ops", "401", False, "bad token"),
        ("ops", "chat_not_found", False, "chat not found"),
        ("ops", "403", False, "removed from the chat"),
        ("ops", "429", False, "rate limited"),
        ("term", None, True, "printed"),
    ],
)
def test_send_test_explains_plainly(tmp_path: Path, fake: FakeAPI, *, name: str,
                                    mode: str | None, arrived: bool, words: str) -> None:
    """send-test says whether the message arrived and, if not, why in plain words."""
    if mode is not None:
        fake.fail(mode)
    ok, explanation = send_test(_config(tmp_path, fake), name)
    assert (ok, words in explanation) == (arrived, True), explanation
    assert "\n" not in explanation
    assert "SECRET" not in explanation


def test_send_test_network_down(tmp_path: Path, fake: FakeAPI) -> None:
    """Nothing listening: a network explanation naming the host, never the URL."""
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/1/{WEBHOOK_TOKEN}"
    ok, explanation = send_test(_config(tmp_path, fake, url=url), "hook")
    assert not ok
    assert "network" in explanation
    assert "cannot connect" in explanation
    assert WEBHOOK_TOKEN not in explanation


def test_send_test_follows_a_migration(tmp_path: Path, fake: FakeAPI) -> None:
    """A migrated group: delivered, and the user is told the new chat_id."""
    fake.chats = {-100999}
    fake.migrations = {-42: -100999}
    ok, explanation = send_test(_config(tmp_path, fake, chat=-42), "ops")
    assert ok
    assert "chat_id = -100999" in explanation


# -- secrets ------------------------------------------------------------------------------


def test_no_secret_anywhere_after_failing_every_way(
        tmp_path: Path, fake: FakeAPI, senders: list[Sender],
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """Every failure mode of both services, then grep everything captured for the secrets."""
    caplog.set_level(logging.DEBUG)
    config = _config(tmp_path, fake)
    state = State(tmp_path / "state")
    captured: list[str] = []
    built = build_senders(config, state)
    captured += [repr(s) for s in built.values()] + [repr(config), str(config.destinations)]
    for sender in built.values():
        sender.stop(0)
    # Discord: every failure in turn, the permanent ones last
    for mode in ("500", "drop", "429", "503", "unknown_webhook", "invalid_token", "403"):
        fake.fail(mode)
    enqueue(state, [hostile_alert(n, to=("hook",)) for n in range(12)])
    discord_sender(fake.discord_url(), state, senders, backoff_cap=0.05, probe_interval=0.05)
    wait_for(lambda: count(state, "hook", "pending") == 0, 20, message="hook settled")
    # a webhook URL nothing answers
    gone = Discord(DiscordDestination("gone", Secret(
        f"http://127.0.0.1:{free_port()}/api/webhooks/1/{WEBHOOK_TOKEN}")))
    captured.append(gone.send(gone.render([make_alert()])).reason)
    gone.close()
    # Telegram: failures, a migration, a bad token
    telegram_modes = ("500", "drop", "429", "401", "403", "chat_not_found")
    for mode in telegram_modes:
        fake.fail(mode)
    fake.chats.add(-100555)
    fake.migrations = {CHAT_ID: -100555}
    enqueue(state, [hostile_alert(n, to=("ops",)) for n in range(6)])
    telegram_sender(fake, state, senders, probe_interval=0.05)
    wait_for(lambda: count(state, "ops", "pending") == 0, 20, message="ops settled")
    for mode in ("unknown_webhook", "invalid_token", "drop"):
        fake.fail(mode)
        captured.append(send_test(config, "hook")[1])
    for mode in telegram_modes:
        fake.fail(mode)
        captured.append(send_test(config, "ops")[1])
    for token in ("999:bad", BOT_TOKEN):
        fake.webhook_set = token == BOT_TOKEN
        try:
            list_chats(TelegramDestination("ops", Secret(token), CHAT_ID, api_url=fake.base))
        except DeliveryError as exc:
            captured += [str(exc), repr(exc)]
    captured += [str(row) for row in state.conn.execute("SELECT error FROM outbox")]
    captured += [str(row) for row in state.conn.execute("SELECT value FROM kv")]
    captured.append(str(destination_status(state.conn)))
    captured += [repr(s) for s in senders]
    state.close()
    out = capsys.readouterr()
    everything = "\n".join([caplog.text, out.out, out.err, *captured])
    assert "unknown webhook" in everything  # the run did fail in these ways
    assert "chat not found" in everything
    for secret in (WEBHOOK_TOKEN, BOT_TOKEN, fake.discord_url(), "SECRET", "/bot"):
        assert secret not in everything, secret


# -- the CLI verbs that reach delivery -------------------------------------------------------


def test_cli_send_test_telegram_chats_and_status(
        tmp_path: Path, fake: FakeAPI, senders: list[Sender]) -> None:
    """send-test, telegram-chats and status for real, as subprocesses: plain, and no secret."""
    config = _config(tmp_path, fake)
    env = {"HOOK_URL": fake.discord_url(), "BOT_TOKEN": BOT_TOKEN}
    cfg = str(config.path)
    ok = logwatch_cli("send-test", "-v", "-c", cfg, "hook", env=env)
    assert (ok.returncode, ok.stdout.strip()) == (0, "hook: test message delivered")
    fake.fail("unknown_webhook")
    bad = logwatch_cli("send-test", "-c", cfg, "hook", env=env)
    assert bad.returncode == 1
    assert "unknown webhook" in bad.stdout
    fake.updates = [{"update_id": 1, "message": {"chat": {"id": -100123, "type": "supergroup",
                                                          "title": "On call"}}}]
    chats = logwatch_cli("telegram-chats", "-c", cfg, "ops", env=env)
    assert "-100123  supergroup  On call" in chats.stdout
    fake.webhook_set = True
    hooked = logwatch_cli("telegram-chats", "-c", cfg, "ops", env=env)
    assert hooked.returncode == 1
    assert "webhook is set" in hooked.stderr
    # a destination that failed for good, then status
    state = State(tmp_path / "state")
    fake.fail("invalid_token")
    enqueue(state, [make_alert(1, to=("hook",))])
    discord_sender(fake.discord_url(), state, senders)
    wait_for(lambda: count(state, "hook", "dead") == 1, 10, message="dead")
    state.close()
    status = logwatch_cli("status", "-c", cfg, env=env)
    assert "failing since" in status.stdout
    assert "invalid webhook token" in status.stdout
    for result in (ok, bad, chats, hooked, status):
        for secret in (WEBHOOK_TOKEN, BOT_TOKEN, "SECRET"):
            assert secret not in result.stdout + result.stderr


def test_a_signal_wakes_its_waiter_once_per_set() -> None:
    """Set before the wait or during it, a signal wakes one wait and is taken by it; sets
    that pile up wake once; clear forgets a set; a wait with nothing set times out."""
    signal_ = Signal()
    assert not signal_.wait(0.0)
    signal_.set()
    signal_.set()
    assert signal_.is_set()
    assert signal_.wait(5.0)
    assert not signal_.is_set()
    assert not signal_.wait(0.0)
    signal_.set()
    signal_.clear()
    assert not signal_.wait(0.0)
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: woke.set() if signal_.wait(30.0) else None)
    waiter.start()
    signal_.set()
    waiter.join(30.0)
    assert woke.is_set()
