"""The daemon as a real process: dry run, reload, drain on SIGTERM, status, delivery."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.fakeapi import FakeAPI, iter_embeds
from tests.helpers import Daemon, logwatch, wait_for, write

BASE = """
[logwatch]
state_dir = "{state}"
hostname = "svc-test"
poll_interval = "100ms"
drain_timeout = "{drain}"
storm = {{ rate = 100000 }}  # every alert on its own in these tests

[sources.app]
files = ["{log}"]
"""

ALPHA = """
[[rules]]
id = "alpha"
match = 'alpha (?P<n>\\d+)'
title = "alpha {n}"
severity = "warning"
"""

BETA = """
[[rules]]
id = "beta"
match = 'beta (?P<n>\\d+)'
title = "beta {n}"
"""


def make_config(tmp_path: Path, rules: str, *, drain: str = "10s", extra: str = "") -> Path:
    text = BASE.format(state=tmp_path / "state", log=tmp_path / "app.log", drain=drain)
    return write(tmp_path / "logwatch.toml", text + extra + rules)


def append(path: Path, *lines: str) -> None:
    with path.open("a") as out:
        out.writelines(line + "\n" for line in lines)


def test_dry_run_prints_alerts_for_appended_lines(tmp_path: Path) -> None:
    """`run --dry-run` follows a file from its end and prints each alert; it keeps no state."""
    log = write(tmp_path / "app.log", "alpha 0 was before the start\n")
    config = make_config(tmp_path, ALPHA)
    with Daemon(config, "--dry-run") as daemon:
        banner = daemon.wait_stderr("sends to console")
        assert "dry run" in banner and str(log) in banner
        append(log, "noise", "x alpha 1 y", "alpha 2")
        out = daemon.wait_stdout("alpha 2")
        assert "[WARNING]" in out and "alpha 1" in out
        assert "alpha 0" not in out  # the file is followed from its end
        assert daemon.stop() == 0
    assert not (tmp_path / "state").exists()


def test_a_backlog_is_read_at_once_not_after_the_first_poll(tmp_path: Path) -> None:
    """`start_at = "beginning"`: the lines already there are handled before any sleep."""
    log = write(tmp_path / "app.log", "".join(f"alpha {n}\n" for n in range(2000)))
    text = BASE.format(state=tmp_path / "state", log=log, drain="10s").replace(
        'poll_interval = "100ms"', 'poll_interval = "1h"\ninotify = false\nstart_at = "beginning"')
    config = write(tmp_path / "logwatch.toml", text + ALPHA)
    with Daemon(config, "--dry-run") as daemon:
        daemon.wait_stdout("alpha 1999")  # nothing wakes it: only the first read can


def test_startup_says_what_is_missing(tmp_path: Path) -> None:
    """A configured file that does not exist yet is named and waited for, then read."""
    config = make_config(tmp_path, ALPHA)
    with Daemon(config, "--dry-run") as daemon:
        banner = daemon.wait_stderr("sends to console")
        assert "app.log" in banner
        append(tmp_path / "app.log", "alpha 7")  # appears after startup: read from its start
        daemon.wait_stdout("alpha 7")


def test_sighup_with_a_valid_config_switches_rules_and_keeps_offsets(tmp_path: Path) -> None:
    """SIGHUP re-reads the config; the new rule applies, no line is read twice."""
    log = write(tmp_path / "app.log", "")
    config = make_config(tmp_path, ALPHA)
    with Daemon(config) as daemon:
        daemon.wait_stderr("sends to console")
        append(log, "alpha 1")
        daemon.wait_stdout("alpha 1")
        config.write_text(config.read_text() + BETA)
        daemon.send(signal.SIGHUP)
        daemon.wait_stderr("reload: ")
        daemon.wait_stderr("sends to console", timeout=20)
        append(log, "beta 2", "alpha 3")
        out = daemon.wait_stdout("alpha 3")
        assert "beta 2" in out
        assert titles(out).count("alpha 1") == 1
        assert daemon.stop() == 0


def test_sighup_with_an_invalid_config_keeps_the_old_one(tmp_path: Path) -> None:
    """A broken new config is reported line by line and the old one keeps running."""
    log = write(tmp_path / "app.log", "")
    config = make_config(tmp_path, ALPHA)
    with Daemon(config) as daemon:
        daemon.wait_stderr("sends to console")
        config.write_text(config.read_text() + '\n[[rules]]\nid = "bad"\nmatch = "(unclosed"\n')
        daemon.send(signal.SIGHUP)
        err = daemon.wait_stderr("still running the old one")
        assert 'rules[1] "bad": match: bad regex' in err
        append(log, "alpha 5")
        daemon.wait_stdout("alpha 5")
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0


def titles(console: str) -> list[str]:
    """The titles of the alerts the console printed ("[SEVERITY] date time TITLE")."""
    return [line.split(" ", 3)[3] for line in console.splitlines() if line.startswith("[")]


def outbox_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, alert FROM outbox ORDER BY seq").fetchall()
    return [(status, json.loads(alert)["title"]) for status, alert in rows]


@pytest.mark.slow
def test_sigterm_with_500_pending_drains_then_keeps_the_rest(tmp_path: Path) -> None:
    """SIGTERM against a slow API: some delivered in the drain time, the rest kept; none lost."""
    with FakeAPI(discord_window=(5, 1.0)) as fake:
        extra = ('[destinations.oncall]\ntype = "discord"\nurl = "${FAKE_DISCORD}"\n')
        config = make_config(tmp_path, ALPHA, drain="2s", extra=extra)
        log = write(tmp_path / "app.log", "")
        env = {"FAKE_DISCORD": fake.discord_url()}
        with Daemon(config, env=env) as daemon:
            daemon.wait_stderr("sends to oncall")
            append(log, *(f"alpha {n}" for n in range(500)))
            db = tmp_path / "state" / "state.sqlite3"
            wait_for(lambda: len(outbox_rows(db)) == 500, 20, message="500 outbox rows")
            wait_for(lambda: fake.received, 20, message="a first delivery")
            assert daemon.stop() == 0
        delivered_titles = [e["title"] for e in iter_embeds(fake)]
        rows = outbox_rows(db)
        assert {status for status, _ in rows} <= {"pending", "delivered"}
        assert 0 < len(delivered_titles) < 500
        assert [t for s, t in rows if s == "delivered"] == delivered_titles
        # the rest goes out, in order, after a restart
        with Daemon(config, env=env):
            wait_for(lambda: len(list(iter_embeds(fake))) >= 500, 60, message="all 500")
        titles = [e["title"] for e in iter_embeds(fake)]
        assert titles == [f"alpha {n}" for n in range(500)]


def test_status_while_running(tmp_path: Path) -> None:
    """`logwatch status` reads the live state: the followed file, its offset, the outbox."""
    log = write(tmp_path / "app.log", "")
    config = make_config(tmp_path, ALPHA)
    with Daemon(config) as daemon:
        daemon.wait_stderr("sends to console")
        append(log, "alpha 1", "noise")
        daemon.wait_stdout("alpha 1")
        size = log.stat().st_size

        def shows_offset() -> str | None:
            result = logwatch("status", "-c", str(config))
            return result.stdout if f"offset {size:,}" in result.stdout else None

        out = wait_for(shows_offset, 20, message="status with the new offset")
        assert str(log) in out and "0 bytes behind" in out
        assert "console" in out and "delivered" in out
        as_json = json.loads(logwatch("status", "-c", str(config), "--json").stdout)
        assert as_json["destinations"]["console"]["delivered"] >= 1
        assert daemon.stop() == 0


def test_a_line_reaches_the_fake_discord_and_telegram(tmp_path: Path) -> None:
    """End to end: a line appended to a followed file arrives at both services."""
    with FakeAPI(discord_window=(5, 0.2), telegram_window=(1, 0.05),
                 telegram_group_window=(20, 1.0)) as fake:
        token = tmp_path / "tg.token"
        write(token, fake_bot_token(), mode=0o600)
        extra = ('[destinations.oncall]\ntype = "discord"\nurl = "${FAKE_DISCORD}"\n'
                 f'[destinations.ops]\ntype = "telegram"\ntoken_file = "{token}"\n'
                 f'chat_id = {fake_chat_id()}\napi_url = "{fake.base}"\n')
        config = make_config(tmp_path, ALPHA, extra=extra)
        log = write(tmp_path / "app.log", "")
        with Daemon(config, env={"FAKE_DISCORD": fake.discord_url()}) as daemon:
            daemon.wait_stderr("sends to ops")
            append(log, "alpha 42 <@everyone>")
            wait_for(lambda: fake.bodies("discord") and fake.bodies("telegram"), 20,
                     message="both deliveries")
            assert daemon.stop() == 0
            assert "SECRET" not in daemon.stderr + daemon.stdout
        assert [e["title"] for e in iter_embeds(fake)] == ["alpha 42"]
        assert "alpha 42" in fake.bodies("telegram")[0]["text"]
        assert fake.violations == []


def fake_bot_token() -> str:
    from tests.fakeapi import BOT_TOKEN

    return BOT_TOKEN


def fake_chat_id() -> int:
    from tests.fakeapi import CHAT_ID

    return CHAT_ID


def test_a_failing_destination_is_announced_to_the_others_then_its_recovery(
    tmp_path: Path,
) -> None:
    """Discord down longer than failing_after: the console hears of it, then of the recovery."""
    with FakeAPI(discord_window=(5, 0.2)) as fake:
        extra = ('[destinations.oncall]\ntype = "discord"\nurl = "${FAKE_DISCORD}"\n'
                 '[destinations.term]\ntype = "console"\n')
        config = make_config(tmp_path, ALPHA.replace('severity = "warning"',
                                                     'severity = "warning"\nto = ["oncall"]'),
                             extra=extra)
        config.write_text(config.read_text().replace('drain_timeout', 'failing_after = "1s"\n'
                                                     'drain_timeout'))
        log = write(tmp_path / "app.log", "")
        with Daemon(config, env={"FAKE_DISCORD": fake.discord_url()}) as daemon:
            daemon.wait_stderr("sends to term")
            fake.down(4.0)
            append(log, "alpha 1")
            daemon.wait_stdout('destination "oncall" failing')
            out = daemon.wait_stdout('destination "oncall" recovered', timeout=30)
            assert titles(out).count('logwatch on svc-test: destination "oncall" failing') == 1
            wait_for(lambda: [e["title"] for e in iter_embeds(fake)] == ["alpha 1"], 20,
                     message="the held alert delivered after the outage")
            assert daemon.stop() == 0


def test_a_silent_source_is_reported_once_per_silence(tmp_path: Path) -> None:
    """`silent_after`: one warning per silence; new lines re-arm it."""
    config = make_config(tmp_path, ALPHA)
    config.write_text(config.read_text().replace('files = [', 'silent_after = "1s"\nfiles = ['))
    log = write(tmp_path / "app.log", "")
    with Daemon(config) as daemon:
        daemon.wait_stderr('source "app" has been silent for over 1s')
        append(log, "alpha 1")
        daemon.wait_stdout("alpha 1")
        wait_for(lambda: daemon.stderr.count("has been silent") == 2, 10,
                 message="a second warning after the second silence")
        assert daemon.stop() == 0
