"""``logwatch retry [DEST]``: dead alerts queued again, in order, with a count."""

from __future__ import annotations

from pathlib import Path

from logwatch.delivery import outbox
from logwatch.state import State
from tests.fakeapi import make_alert
from tests.helpers import logwatch, write

CONFIG = """\
[logwatch]
state_dir = "{state}"

[destinations.hook]
type = "discord"
url = "${{HOOK_URL_NOT_SET}}"

[destinations.other]
type = "console"
"""


def dead_state(tmp_path: Path) -> Path:
    """Three dead rows for hook (seq 1, 2, 4), one delivered, one dead for other."""
    state = State(tmp_path / "state")
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(1, to=("hook",)), make_alert(2, to=("hook",)),
                              make_alert(3, to=("hook",)), make_alert(4, to=("hook",)),
                              make_alert(5, to=("other",))])
        outbox.finish(conn, [1, 2, 4, 5], "dead", "unknown webhook")
        outbox.finish(conn, [3], "delivered")
    state.close()
    return write(tmp_path / "c.toml", CONFIG.format(state=tmp_path / "state"))


def statuses(tmp_path: Path) -> list[tuple[int, str, str]]:
    state = State(tmp_path / "state")
    try:
        return list(state.conn.execute("SELECT seq, destination, status FROM outbox ORDER BY seq"))
    finally:
        state.close()


def test_requeues_one_destination_in_order(tmp_path: Path) -> None:
    config = dead_state(tmp_path)
    result = logwatch("retry", "-c", str(config), "hook")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hook: 3 dead alerts queued again (oldest first)"
    assert statuses(tmp_path) == [(1, "hook", "pending"), (2, "hook", "pending"),
                                  (3, "hook", "delivered"), (4, "hook", "pending"),
                                  (5, "other", "dead")]
    state = State(tmp_path / "state")
    try:
        assert [r.alert.title for r in outbox.pending(state.conn, "hook", 10)] == [
            "event 1", "event 2", "event 4"]
    finally:
        state.close()


def test_every_destination_by_default(tmp_path: Path) -> None:
    config = dead_state(tmp_path)
    result = logwatch("retry", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "hook: 3 dead alerts queued again" in result.stdout
    assert "other: 1 dead alert queued again" in result.stdout
    assert {s for _, _, s in statuses(tmp_path)} == {"pending", "delivered"}


def test_unknown_destination_and_no_state_are_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", CONFIG.format(state=tmp_path / "state"))
    missing = logwatch("retry", "-c", str(config), "hook")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no state in" in missing.stderr
    dead_state(tmp_path)
    unknown = logwatch("retry", "-c", str(config), "oncal")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (f'logwatch: no destination "oncal" in {config} '
                                      "(destinations: hook, other)")
