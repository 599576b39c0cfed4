"""``logwatch status``: a read-only report that needs no secret and says what to do."""

from __future__ import annotations

import json
from pathlib import Path

from logwatch.delivery import outbox
from logwatch.state import State, put_value
from tests.fakeapi import make_alert
from tests.helpers import Daemon, logwatch, wait_for, write

CONFIG = """\
[logwatch]
state_dir = "{state}"

[destinations.hook]
type = "discord"
url_file = "{hook}"

[destinations.ops]
type = "telegram"
token = "${{NOT_SET_IN_THIS_SHELL}}"
chat_id = {chat}

[sources.app]
files = ["{log}"]

[[rules]]
id = "numbered"
match = 'ERROR event (?P<n>\\d+)'
"""


def make_config(tmp_path: Path, chat: int = -100200) -> Path:
    """A config whose secrets are not readable here: an unset ${VAR}, a missing file."""
    return write(tmp_path / "c.toml", CONFIG.format(
        state=tmp_path / "state", hook=tmp_path / "missing-hook", chat=chat,
        log=tmp_path / "app.log"))


def status(config: Path, *args: str) -> str:
    result = logwatch("status", "-c", str(config), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_needs_no_secret_and_says_no_state_yet(tmp_path: Path) -> None:
    """Secrets that cannot be read in the caller's shell are no reason to fail a report."""
    out = status(make_config(tmp_path))
    assert "daemon: not running" in out
    assert "no state yet" in out


def test_before_the_first_line_names_the_sources(tmp_path: Path) -> None:
    """No checkpoint yet: each configured source is listed as not read, not an empty list."""
    config = make_config(tmp_path)
    State(tmp_path / "state").close()
    out = status(config)
    assert "app          nothing read yet" in out
    assert "nothing sent yet" in out


def test_says_whether_the_daemon_runs(tmp_path: Path) -> None:
    """Running (with its pid) while it runs; not running after it stopped."""
    write(tmp_path / "app.log", "")
    config = write(tmp_path / "run.toml", f'[logwatch]\nstate_dir = "{tmp_path / "state"}"\n'
                   f'[sources.app]\nfiles = ["{tmp_path / "app.log"}"]\n')
    with Daemon(config, notify=True) as daemon:
        daemon.wait_ready()
        assert f"daemon: running (pid {daemon.proc.pid})" in status(config)
        report = json.loads(status(config, "--json"))
        assert (report["running"], report["pid"]) == (True, daemon.proc.pid)
        assert daemon.stop() == 0
    assert "daemon: not running" in status(config)
    assert json.loads(status(config, "--json"))["running"] is False


def test_chat_migration_note_goes_once_the_config_has_the_new_id(tmp_path: Path) -> None:
    """The "update chat_id" advice is shown only while the config still has the old id."""
    state = State(tmp_path / "state")
    with state.transaction() as conn:
        put_value(conn, "destination", "ops",
                  {"migrated_from": -100200, "migrated_chat_id": -100300})
    state.close()
    assert "chat migrated to (update chat_id in the config): -100300" in status(
        make_config(tmp_path, chat=-100200))
    assert "chat migrated" not in status(make_config(tmp_path, chat=-100300))


def test_dead_rows_are_named_with_the_key_to_fix(tmp_path: Path) -> None:
    """Each dead alert by number and title, and which setting to fix, then `retry`."""
    config = make_config(tmp_path)
    state = State(tmp_path / "state")
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("hook",)) for n in (1, 2)])
        outbox.finish(conn, [1, 2], "dead", "unknown webhook")
    state.close()
    out = status(config)
    assert "dead: #1 numbered: event 1" in out and "dead: #2 numbered: event 2" in out
    assert f"fix url_file ({tmp_path / 'missing-hook'})" in out
    assert "`logwatch retry hook`" in out


def test_the_pid_file_of_a_dead_daemon_is_not_running(tmp_path: Path) -> None:
    """kill -9 leaves the pid file behind; the lock went with the process."""
    write(tmp_path / "app.log", "")
    config = write(tmp_path / "run.toml", f'[logwatch]\nstate_dir = "{tmp_path / "state"}"\n'
                   f'[sources.app]\nfiles = ["{tmp_path / "app.log"}"]\n')
    with Daemon(config, notify=True) as daemon:
        daemon.wait_ready()
        daemon.kill()
    assert (tmp_path / "state" / "lock").exists()
    wait_for(lambda: "daemon: not running" in status(config), 5, message="not running")
