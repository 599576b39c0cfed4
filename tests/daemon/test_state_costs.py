"""The state's costs: page caches (the main thread's sized for a catch-up, the senders'
small, so that a burst does not grow every connection's), checkpoints off the main loop,
one JSON encoder for every stored value."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logwatch.state
from logwatch.state import (
    CACHE_KIB,
    CHECKPOINT_PAGES,
    DB_NAME,
    THREAD_CACHE_KIB,
    Checkpointer,
    State,
    encode,
    get_values,
    next_checkpoint,
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


def test_checkpoints_come_as_often_as_the_wal_fills() -> None:
    """A WAL that filled a checkpoint's worth of pages in the last wait is checkpointed
    after the time that takes again; a slower one after the longest wait, a faster one after
    the shortest; a WAL with nothing in it (or none: -1) after the longest."""
    assert next_checkpoint(CHECKPOINT_PAGES, 2.0, 1.0, 5.0) == 2.0
    assert next_checkpoint(CHECKPOINT_PAGES // 2, 2.0, 1.0, 5.0) == 4.0
    assert next_checkpoint(CHECKPOINT_PAGES // 10, 2.0, 1.0, 5.0) == 5.0
    assert next_checkpoint(CHECKPOINT_PAGES * 10, 2.0, 1.0, 5.0) == 1.0
    assert next_checkpoint(0, 1.0, 1.0, 5.0) == 5.0
    assert next_checkpoint(-1, 1.0, 1.0, 5.0) == 5.0


def test_a_busy_wal_is_checkpointed_sooner_than_every(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that fill the WAL faster than CHECKPOINT_PAGES per ``every`` are copied back
    within ``soonest``, again and again, not once per ``every``."""
    monkeypatch.setattr(logwatch.state, "CHECKPOINT_PAGES", 1)
    state = State(tmp_path)
    checkpointer = Checkpointer(state, every=3600.0, soonest=0.05)
    db = tmp_path / DB_NAME
    try:
        for round_ in range(3):
            before = db.stat().st_size
            with state.transaction() as conn:
                for n in range(1000):
                    put_value(conn, "test", f"key-{round_}-{n}", "x" * 200)
            wait_for(lambda before=before: db.stat().st_size > before + 100_000, 10,
                     message=f"round {round_}'s pages copied back")
    finally:
        checkpointer.stop()
        state.close()


#: what the state stores: JSON trees of every kind of leaf, odd floats and text included
_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.integers(min_value=2**63, max_value=2**70))
_TREES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=_TREES)
def test_the_shared_encoder_writes_what_a_new_one_writes(value: Any) -> None:
    """One C encoder kept for every value (not one built per call) gives the same text."""
    expected = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode(value)
    assert encode(value) == expected
    assert encode(value) == expected  # nothing kept from the call before
