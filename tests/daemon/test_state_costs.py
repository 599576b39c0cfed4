"""The state's costs: page caches (the main thread's sized for a catch-up, the senders'
small, so that a burst does not grow every connection's) and checkpoints off the main loop."""

from __future__ import annotations

import threading
from pathlib import Path

from logwatch.state import (
    CACHE_KIB,
    DB_NAME,
    THREAD_CACHE_KIB,
    Checkpointer,
    State,
    get_values,
    put_value,
)
from tests.helpers import wait_for


def cache_kib(state: State) -> int:
    (size,) = state.conn.execute("PRAGMA cache_size").fetchone()
    return -int(size)


def test_the_opening_thread_gets_the_big_cache_other_threads_a_small_one(
        tmp_path: Path) -> None:
    state = State(tmp_path)
    seen: list[int] = []

    def sender() -> None:
        seen.append(cache_kib(state))
        state.close()

    thread = threading.Thread(target=sender)
    thread.start()
    thread.join()
    assert cache_kib(state) == CACHE_KIB
    assert seen == [THREAD_CACHE_KIB]
    assert THREAD_CACHE_KIB < CACHE_KIB
    state.close()


def test_a_checkpointer_copies_the_wal_back_from_its_own_thread(tmp_path: Path) -> None:
    """The commits' connection does no checkpoint (no fsync in the main loop's commit); the
    checkpointer's thread copies what was committed into the database file."""
    state = State(tmp_path)
    checkpointer = Checkpointer(state, every=0.05)
    (pages,) = state.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == 0
    db = tmp_path / DB_NAME
    before = db.stat().st_size
    with state.transaction() as conn:
        for n in range(3000):
            put_value(conn, "test", f"key-{n}", "x" * 200)
    wait_for(lambda: db.stat().st_size > before + 500_000, 10, message="the WAL copied back")
    checkpointer.stop()
    state.close()
    reopened = State(tmp_path)
    with reopened.transaction() as conn:
        assert len(get_values(conn, "test")) == 3000
    reopened.close()
