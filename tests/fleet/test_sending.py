"""The sender's side of fleet dedup: the owner's summary, the status line, pacing waits."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from logwatch.commands.status import format_fleet
from logwatch.config import Config, DiscordDestination, load_config
from logwatch.delivery import outbox
from logwatch.delivery.destinations.discord import Discord
from logwatch.delivery.destinations.types import Outcome, Window
from logwatch.delivery.outbox import Row
from logwatch.delivery.sender import Sender
from logwatch.fleet.claims import Tally
from logwatch.fleet.link import FleetLink
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.sending import FleetSending, fleet_summary
from logwatch.fleet.store import FleetStore
from logwatch.secret import Secret
from logwatch.state import State
from tests.fakeapi import FakeAPI, make_alert
from tests.fleet.redisserver import RedisServer
from tests.helpers import Daemon, wait_for, write


def test_the_owner_summary_counts_every_host() -> None:
    """Local hits plus the tally; the title names the hosts, the message lists them."""
    summary = make_alert(1, kind="summary", title="2 more 'SSH failure from 1.2.3.4' suppressed",
                         message="2 more 'SSH failure from 1.2.3.4' suppressed at 10:00:00",
                         count=2, fields={"key": "1.2.3.4"})
    out = fleet_summary(summary, Tally("own", "web-1", (("web-2", 3), ("web-3", 1))))
    assert out.count == 6
    assert out.title == "6 more 'SSH failure from 1.2.3.4' on 3 hosts"
    assert out.message.endswith("'SSH failure from 1.2.3.4' also seen on 2 hosts "
                                "(web-2, web-3): 4 hits.")
    assert out.fields == {"key": "1.2.3.4", "hosts": "3"}


def test_status_shows_the_link_and_its_trouble() -> None:
    """Connected with latency; or unavailable since, with the last error."""
    up = {"url": "redis://10.0.0.5:6379/0", "namespace": "logwatch", "connected": True,
          "latency_ms": 0.4, "last_error": None, "failed_open": 0}
    assert format_fleet(up) == "fleet: redis://10.0.0.5:6379/0 (namespace logwatch) " \
                               "connected, 0.4 ms"
    down = {**up, "connected": False, "down_since": 1_700_000_000.0,
            "last_error": "ConnectionError: refused", "failed_open": 7}
    text = format_fleet(down)
    assert "UNAVAILABLE since" in text and "ConnectionError: refused" in text
    assert "duplicates possible): 7" in text
    assert "no link state yet" in format_fleet(None)


SENDING_CONFIG = """\
[logwatch]
hostname = "web-1"
state_dir = "{state}"
start_at = "beginning"
poll_interval = "0.2s"

[fleet]
url = "{redis}"
namespace = "test"

[destinations.hook]
type = "discord"
url = "{hook}"

[sources.app]
files = ["{log}"]

[[rules]]
id = "numbered"
match = 'ERROR event (?P<n>\\S+)'
title = "event {{n}}"
dedup = {{ by = "{{n}}", for = "{window}" }}
"""


def owner_config(tmp_path: Path) -> Config:
    """The hosts' config (one Discord hook, one rule with ``dedup``)."""
    return load_config(write(tmp_path / "logwatch.toml", SENDING_CONFIG.format(
        state=tmp_path / "s", redis="redis://127.0.0.1:1/0", log=tmp_path / "app.log",
        hook="https://discord.example/api/webhooks/1/abc", window="1h"), mode=0o600))


def sent_by_one_counted_by_another(tmp_path: Path, store: FleetStore,
                                   window: tuple[Window, ...]) -> FleetSending:
    """Host web-1 sends "event 1" (its claim), web-2 finds it sent and counts one hit into
    web-1's tally; web-1's FleetSending."""
    config = owner_config(tmp_path)
    owner = FleetSending(store, "web-1", config, "hook", window)
    sent = owner.sort([Row(1, make_alert(1), 0, 0.0)])
    assert sent.rows and sent.slot
    owner.settle(sent, sent.rows, Outcome("ok"))
    counted = FleetSending(store, "web-2", config, "hook", window).sort(
        [Row(1, make_alert(1, host="web-2"), 0, 0.0)])
    assert not counted.rows and "web-1 sent it" in counted.skipped[0][1]
    return owner


def test_a_summary_waiting_for_the_fleet_pace_keeps_its_tally(
        tmp_path: Path, store: FleetStore) -> None:
    """The owner's summary held back by the shared window still carries the other hosts."""
    owner = sent_by_one_counted_by_another(tmp_path, store, (Window(1, 0.3),))
    summary = Row(2, make_alert(1, kind="summary", title="0 more 'event 1' suppressed",
                                count=0, fields={"key": "1"}), 0, 0.0)
    held = owner.sort([summary])
    assert not held.rows and held.wait > 0  # the window is full: try again later
    later = wait_for(lambda: owner.sort([summary]).rows, 5.0, message="the window to pass")
    assert later[0].alert.title == "1 more 'event 1' on 2 hosts"


#: web-1's dedup summary of "event 1": nothing of its own, the tally is all it has
OWNER_SUMMARY = make_alert(2, kind="summary", title="0 more 'event 1' suppressed", count=0,
                           fields={"key": "1"})


def queued_summary(tmp_path: Path) -> State:
    """web-1's state with :data:`OWNER_SUMMARY` in its outbox."""
    state = State(tmp_path / "state")
    with state.transaction() as conn:
        outbox.enqueue(conn, [OWNER_SUMMARY])
    return state


def first_title_sent(fake: FakeAPI, state: State, fleet: FleetSending) -> str:
    """Run a sender of ``state`` to ``fake`` until it posts; the first embed's title."""
    dest = Discord(DiscordDestination("hook", Secret(fake.discord_url())), timeout=2.0)
    sender = Sender(dest, state, fleet=fleet, backoff_base=0.02, backoff_cap=0.2)
    sender.start()
    try:
        bodies = wait_for(fake.bodies, 10.0, message="the summary to be sent")
    finally:
        sender.stop(0)
        state.close()
    return str(bodies[0]["embeds"][0]["title"])


def test_a_retried_owner_summary_keeps_the_tally_it_took(
        tmp_path: Path, store: FleetStore) -> None:
    """The store gives the owner the others' tally once: a failed request must not lose it."""
    owner = sent_by_one_counted_by_another(tmp_path, store, (Window(100, 1.0),))
    state = queued_summary(tmp_path)
    with FakeAPI() as fake:
        fake.fail("500")  # the first request, which carries the tally, fails
        assert first_title_sent(fake, state, owner) == "1 more 'event 1' on 2 hosts"


def test_an_owner_summary_keeps_its_tally_across_a_crash_before_it_saved_it(
        tmp_path: Path, store: FleetStore) -> None:
    """The store gave the owner's summary the tally, and the process died before the
    summary with it was saved (kill -9, OOM): after the restart the same row asks again
    and gets the same tally."""
    owner = sent_by_one_counted_by_another(tmp_path, store, (Window(100, 1.0),))
    state = queued_summary(tmp_path)
    taken = owner.sort(outbox.pending(state.conn, "hook", 10))  # lost with the process
    assert taken.rows[0].alert.title == "1 more 'event 1' on 2 hosts"
    state.close()
    state = State(tmp_path / "state")  # the restart: what the outbox holds, a new sender
    assert outbox.pending(state.conn, "hook", 10)[0].alert == OWNER_SUMMARY
    restarted = FleetSending(store, "web-1", owner_config(tmp_path), "hook", (Window(100, 1.0),))
    with FakeAPI() as fake:
        assert first_title_sent(fake, state, restarted) == "1 more 'event 1' on 2 hosts"


#: run as the daemon's sitecustomize: the process dies (SIGKILL) the moment it would save
#: the owner's summary with the tally the store just gave it
DIE_AT_THE_SAVE = """\
import os, signal
import logwatch.delivery.outbox as outbox

def revise(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

outbox.revise = revise
"""


def test_a_killed_owner_daemon_sends_its_summary_with_the_tally_after_a_restart(
        tmp_path: Path, redis_server: RedisServer, make_link: Callable[..., FleetLink]) -> None:
    """A real ``logwatch run`` (web-1) sends "event 1"; web-2 counts a hit into its tally;
    at the end of the window web-1 takes the tally and is killed before it saves it; the
    restarted daemon sends the summary with the tally."""
    log = write(tmp_path / "app.log", "")
    hook_dir = tmp_path / "die"
    write(hook_dir / "sitecustomize.py", DIE_AT_THE_SAVE)
    with FakeAPI() as fake:
        # a window long enough for web-2 to count its hit into web-1's claim before it ends
        config = write(tmp_path / "logwatch.toml", SENDING_CONFIG.format(
            state=tmp_path / "state", redis=redis_server.url, hook=fake.discord_url(),
            log=log, window="6s"), mode=0o600)
        path = os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))
        with Daemon(config, env={"PYTHONPATH": path}) as dying:
            with log.open("a") as f:
                f.write("ERROR event 1\n")
            wait_for(fake.bodies, 20.0, message="the alert to be sent")
            counted = FleetSending(RedisStore(make_link("web-2")), "web-2", load_config(config),
                                   "hook", ()).sort([Row(1, make_alert(1, host="web-2"), 0, 0.0)])
            assert not counted.rows and "web-1 sent it" in counted.skipped[0][1]
            wait_for(lambda: dying.proc.poll() is not None, 30.0, message="web-1 to be killed")
            assert dying.proc.returncode == -signal.SIGKILL
        assert len(fake.bodies()) == 1  # the summary was not sent
        with Daemon(config) as restarted:
            wait_for(lambda: len(fake.bodies()) > 1, 20.0,
                     message=f"the summary; stderr:\n{restarted.stderr}")
    assert fake.bodies()[1]["embeds"][0]["title"] == "1 more 'event 1' on 2 hosts"
