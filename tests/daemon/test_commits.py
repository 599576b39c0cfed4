"""When the main loop commits: at once for an alert that can go now, within a bound otherwise.

A commit costs more than reading a few lines, and an alert waits for none but its own: lines
that decide nothing, and alerts for a destination that cannot send yet, are committed with
the next commit that matters, or COMMIT_WITHIN after they were read. Real files, a real
state database, the console destination (always free to send).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch.config import load_config
from logwatch.daemon.sd_notify import Notifier
from logwatch.daemon.service import COMMIT_WITHIN, Service, Waker
from logwatch.delivery import outbox
from logwatch.models import line_alert_id
from logwatch.sources.files import FileSource
from logwatch.state import State, get_value
from tests.daemon.test_batching import CONFIG
from tests.fakeapi import make_alert
from tests.helpers import Daemon, wait_for, write
from tests.sources.conftest import make_settings


def saved_offset(state: State) -> int:
    """Where the committed checkpoint of source "app" stands in its file."""
    saved = get_value(state.conn, "checkpoint", "app")
    return sum(int(f.get("offset", 0)) for f in saved.get("files", []))


def append(log: Path, text: str) -> int:
    """Append ``text`` to ``log``; the file's size after."""
    with log.open("a") as out:
        out.write(text)
    return log.stat().st_size


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", log=write(tmp_path / "app.log", ""), batch_wait="50ms"))


@pytest.fixture
def service(config: Path) -> Iterator[Service]:
    svc = Service(load_config(config))
    svc.startup()
    yield svc
    if not svc.should_exit:
        svc.shutdown()


def test_lines_without_alerts_wait_for_the_next_alert(service: Service, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "noise 1\nnoise 2\n")
    read_at = time.monotonic()
    service.pump()
    assert saved_offset(service.state) == 0  # read, not committed yet
    now = time.monotonic()
    assert read_at < service._commit_due(now) <= now + COMMIT_WITHIN
    size = append(log, "event 7\n")
    service.pump()
    assert saved_offset(service.state) == size  # the alert's commit took the noise along
    assert sum(outbox.counts(service.state.conn)["term"].values()) == 1


def test_a_gather_commits_what_is_due_then_sleeps_once(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """An alert staged for a free sender is due now: batch_wait's gathering commits it at
    once, then sleeps to its end. (It once compared its clock reading with a later one, so
    "due now" was always a microsecond ahead: it slept that microsecond and asked again,
    thousands of times, and committed nothing until the wait was over.)"""
    alert = make_alert(1, to=("term",))
    service._staged.alerts.append(alert)
    service._staged.add(service.sources[0], [alert])
    sleeps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    service._gather(time.monotonic())
    assert not service._staged.sources  # committed
    assert sum(outbox.counts(service.state.conn)["term"].values()) == 1
    assert len(sleeps) == 1


def run_loop(service: Service, monkeypatch: pytest.MonkeyPatch,
             woken: Callable[[int], bool]) -> list[tuple[str, float]]:
    """Run the main loop, recording its steps: ("pump", when it began), ("gather", since),
    ("wait", timeout). The ``n``-th wait returns ``woken(n)`` at once; the loop stops at
    the wait after which it finds ``service.should_exit`` set."""
    steps: list[tuple[str, float]] = []
    pump, gather = service.pump, service._gather

    def pumped() -> bool:
        steps.append(("pump", time.monotonic()))
        return pump()

    def gathered(since: float) -> None:
        steps.append(("gather", since))
        gather(since)

    def waited(timeout: float, fds: object = ()) -> bool:
        steps.append(("wait", timeout))
        return woken(sum(what == "wait" for what, _ in steps))

    monkeypatch.setattr(service, "pump", pumped)
    monkeypatch.setattr(service, "_gather", gathered)
    monkeypatch.setattr(service.waker, "wait", waited)
    service.main_loop()
    return steps


def test_after_a_read_the_loop_gathers_without_waiting_to_be_woken(
        service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines read: more are likely coming, so the loop gathers from the start of that read
    (one wake-up a batch); a read that finds nothing sends it to sleep until woken."""
    append(tmp_path / "app.log", "event 1\n")

    def woken(n: int) -> bool:
        service.should_exit = True
        return False

    steps = run_loop(service, monkeypatch, woken)
    assert [what for what, _ in steps] == ["pump", "gather", "pump", "wait"]
    assert steps[1][1] <= steps[0][1]  # it gathers from when that read began


def test_the_first_lines_after_a_quiet_spell_are_read_at_once(
        service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wake-up after a read that found nothing (nothing came for batch_wait) reads at
    once: a lone line on a quiet server is not held for batch_wait. What follows it is
    gathered."""
    def woken(n: int) -> bool:
        if n == 1:
            append(tmp_path / "app.log", "event 1\n")  # what woke the loop
        else:
            service.should_exit = True
        return True

    steps = run_loop(service, monkeypatch, woken)
    assert [what for what, _ in steps] == ["pump", "wait", "pump", "gather", "pump", "wait"]
    assert sum(outbox.counts(service.state.conn)["term"].values()) == 1


def test_a_gather_leaves_out_the_time_a_read_takes(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line's alert is committed about batch_wait after it came however long reads take:
    the gathering is shorter by the reads' average time, down to GATHER_LEAST of it."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(time, "monotonic", lambda: sum(slept))  # sleeping moves the clock
    wait = service.config.settings.batch_wait
    for pump_time, expected in ((0.0, wait), (wait / 5, wait * 4 / 5), (wait, wait / 2)):
        slept.clear()
        service._pump_time = pump_time
        service._gather(0.0)
        assert sum(slept) == pytest.approx(expected)


def test_a_stop_commits_what_was_read(service: Service, config: Path, tmp_path: Path) -> None:
    size = append(tmp_path / "app.log", "noise 1\nnoise 2\n")
    service.pump()
    service.shutdown()
    state = State(tmp_path / "state")
    try:
        assert saved_offset(state) == size  # not read again at the next start
    finally:
        state.close()


def test_lines_without_alerts_are_committed_within_the_bound(config: Path, tmp_path: Path) -> None:
    """The daemon commits them by itself, with nothing else happening."""
    with Daemon(config) as daemon:
        daemon.wait_stderr("sends to term")
        size = append(tmp_path / "app.log", "noise 1\nnoise 2\n")
        state = State(tmp_path / "state", readonly=True)
        try:
            wait_for(lambda: saved_offset(state) == size, 10 * COMMIT_WITHIN,
                     message="the checkpoint committed")
        finally:
            state.close()


def test_a_wake_after_the_loop_closed_writes_nowhere() -> None:
    """A sender whose request outlived the drain says it is free after shutdown closed the
    self-pipe: the descriptor number may belong to another file by then."""
    waker = Waker()
    waker.close()
    read_end, write_end = os.pipe()  # the lowest free numbers: the waker's, most likely
    try:
        os.set_blocking(read_end, False)
        waker.wake()
        with pytest.raises(BlockingIOError):
            os.read(read_end, 1)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_an_alert_id_is_its_line_key_as_every_reader_makes_it(service: Service,
                                                               tmp_path: Path) -> None:
    """The daemon writes a file line's key out itself (a call less per hit): it must be
    ``Chunk.line_key``'s, which the replays and the ids saved by earlier runs use."""
    log = tmp_path / "app.log"
    for text in ("noise\nevent 1\nnoise\nevent 2\n", "event 3\nnoise\nevent 4\n"):
        append(log, text)  # the second read starts past the file's start
        service.pump()
        service._commit_staged()
    rows = service.state.conn.execute("SELECT alert_id FROM outbox ORDER BY seq").fetchall()
    reader = FileSource("app", (str(log),), make_settings(tmp_path, start_at="beginning"),
                        lambda: None)
    reader.open(None)
    try:
        chunk, = reader.read(1 << 20)
    finally:
        reader.close()
    starts = [m.start() for m in re.finditer(rb"^event", chunk.data, re.MULTILINE)]
    assert [r[0] for r in rows] == [line_alert_id("alert", "numbered", chunk.line_key(s))
                                    for s in starts]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # one place of the index


def test_outside_systemd_no_status_line_is_made(service: Service,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The status line counts the outbox's pending rows (a query per destination): without a
    systemd to send it to, the main loop's keepalive makes none; under one, once a second."""
    made: list[str] = []

    def status_line() -> str:
        made.append("line")
        return "line"

    monkeypatch.setattr(service, "_status_line", status_line)
    monkeypatch.setattr(service, "_last_ping", -1e9)
    monkeypatch.setattr(service, "notifier", Notifier(address=None))  # whatever NOTIFY_SOCKET is
    assert not service.notifier.enabled
    service._keepalive()
    assert made == []

    sent: list[str] = []

    class Systemd:
        enabled = True
        status = staticmethod(sent.append)

        def watchdog(self) -> None:
            sent.append("WATCHDOG")

    monkeypatch.setattr(service, "notifier", Systemd())
    service._keepalive()
    service._keepalive()  # within the second: not again
    assert made == ["line"]
    assert sent == ["WATCHDOG", "line"]
