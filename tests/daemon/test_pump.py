"""The main loop's reading: a backlog is read at once, a busy writer is not chased line by line.

Narrow unit tests: a real Service on a real state database, with a scripted source in
place of the file source, so that what each read returns is known.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import load_config
from logwatch.daemon.service import STATUS_EVERY, TICK_EVERY, TRANSACTION_TIME, Service
from logwatch.models import Chunk
from logwatch.state import encode, get_value
from tests.daemon.test_batching import CONFIG
from tests.helpers import write


class Scripted:
    """A source whose reads return what ``script`` says: True, a chunk of lines; False, none."""

    name = "app"

    def __init__(self, script: Iterator[bool], *, news: bool = True) -> None:
        self.script = script
        self.reads = 0
        self.offset = 0
        #: what pending() says (it cannot know what the script holds)
        self.news = news

    def pending(self, *, queued: bool = True) -> bool:
        return self.news

    def read(self, max_bytes: int = 0) -> list[Chunk]:
        self.reads += 1
        if not next(self.script):
            return []
        data = b"".join(b"event %d\n" % (self.offset + n) for n in range(10))
        chunk = Chunk(self.name, "scripted", data, "scripted", self.offset)
        self.offset += len(data)
        return [chunk]

    def checkpoint(self) -> dict[str, Any]:
        return {"kind": "scripted", "offset": self.offset}

    def checkpoint_text(self) -> str:
        return encode(self.checkpoint())

    def close(self) -> None:
        pass


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    config = write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", log=write(tmp_path / "app.log", ""), batch_wait="50ms"))
    svc = Service(load_config(config))
    svc.startup()
    yield svc
    svc.shutdown()


def use(service: Service, source: Scripted) -> Scripted:
    for old in service.sources:
        old.close()
    service.sources = [source]  # type: ignore[list-item]  # the protocol's parts it uses
    return source


def saved_offset(service: Service) -> int:
    with service.state.transaction() as conn:
        return int(get_value(conn, "checkpoint", "app")["offset"])


def test_a_backlog_is_read_until_the_source_runs_dry(service: Service) -> None:
    source = use(service, Scripted(iter([True] * 5 + [False] + [True] * 100)))
    service.pump()
    assert source.reads == 6
    assert saved_offset(service) == source.offset


def test_lines_written_after_the_source_ran_dry_wait_for_the_next_wake_up(
        service: Service) -> None:
    """Once a read found nothing, pump returns: what the writer adds next is gathered by
    the main loop for batch_wait and read in one go, not chased a read and a commit at a
    time."""
    source = use(service, Scripted(iter([True, False, True, False])))
    service.pump()
    assert source.reads == 2
    service.pump()  # the next wake-up reads them
    assert source.reads == 4
    assert saved_offset(service) == source.offset


def test_a_source_with_nothing_pending_is_not_read(service: Service) -> None:
    """A wake-up for another source (or the periodic one) reads no file of this one."""
    source = use(service, Scripted(iter([True]), news=False))
    service.pump()
    assert source.reads == 0


def test_a_source_that_never_runs_dry_is_committed_every_transaction_time(
        service: Service) -> None:
    """A writer faster than us: each transaction ends after TRANSACTION_TIME, committed,
    so that its first lines' alerts can go out; the next one starts at once."""
    source = use(service, Scripted(iter(lambda: True, None)))
    started = time.monotonic()
    assert service._process(source) == "more"  # type: ignore[arg-type]
    took = time.monotonic() - started
    assert TRANSACTION_TIME <= took < TRANSACTION_TIME + 2.0
    assert saved_offset(service) == source.offset > 0


def test_overdue_status_lines_wake_the_loop_when_the_tick_can_save_them(
        service: Service) -> None:
    """The ``logwatch status`` lines are saved by tick(), run at most every TICK_EVERY: the
    loop sleeps until then, not 0 s (which made it spin until the tick, ~300 loops/s at
    20 writes/s)."""
    service.policy.status_stale = True
    service._last_status = time.monotonic() - 10 * STATUS_EVERY  # overdue
    service._last_tick = time.monotonic()  # just ticked: the next tick saves them
    assert service._sleep_time() > 0
    service._last_tick -= TICK_EVERY  # the tick is due: wake for it now
    assert service._sleep_time() <= 0
